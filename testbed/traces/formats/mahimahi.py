"""Mahimahi link traces: one integer per line, a time in ms since the trace start; each line
is one delivery opportunity for a 1500-byte packet (a repeated time: several packets).

Capacity over windows of ``window`` (default ``"1 s"``, the sampling of the other real
traces, so that traces from different datasets compare): a window's rate is its packets
x 1500 B x 8 / its length. The trace lasts ``T`` = the last timestamp (Mahimahi's own
loop period), so the mean is exactly packets x 1500 x 8 / T. Windows start at 0 ms (the
format's time origin, not shifted); there are ``T / window`` of them, rounded (at least 1), all
``window`` long except the last, which ends at ``T`` and so is between half and one and a
half windows long (no spike from a sliver of a window). Packets at exactly ``T`` count in
the last window.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from testbed.traces.formats.base import TraceFormat, register, series, time_option
from testbed.traces.lines import line_error, read_lines
from testbed.traces.series import Series
from testbed.traces.sniff import column_format
from testbed.units import BITS_PER_BYTE

PACKET_BYTES = 1500
DEFAULT_WINDOW = "1 s"


def detect(first_lines: list[str], path: Path) -> bool:
    return column_format(first_lines, path) == "mahimahi"


def read(path: Path, *, window: object = DEFAULT_WINDOW) -> Series:
    """Packet opportunities -> capacity (bit/s) per window."""
    window_s = time_option("window", window)
    stamps_ms: list[int] = []
    lines = read_lines(path)
    for line in lines:
        text = line.text
        if not text.isdigit():
            raise line_error(path, line.number, f"got {text!r}; expected one integer time in ms "
                                                ">= 0 per line (a packet delivery opportunity)")
        ms = int(text)
        if stamps_ms and ms < stamps_ms[-1]:
            raise line_error(path, line.number, f"got {ms} ms after {stamps_ms[-1]} ms; "
                                                "expected non-decreasing times")
        stamps_ms.append(ms)
    end_s = stamps_ms[-1] / 1000.0
    if end_s <= 0:
        raise line_error(path, lines[-1].number,
                         "got a trace that ends at 0 ms; expected the last time (the trace's "
                         "period) to be > 0 ms")
    count = max(1, math.floor(end_s / window_s + 0.5))  # round half up
    starts = np.arange(count) * window_s
    widths = np.diff(np.append(starts, end_s))
    # window of each packet; the 1e-9 keeps a packet exactly on an edge in the later window
    position = np.asarray(stamps_ms) / (window_s * 1000.0) + 1e-9
    index = np.minimum(np.floor(position).astype(int), count - 1)
    packets = np.bincount(index, minlength=count)
    rates = packets * PACKET_BYTES * BITS_PER_BYTE / widths
    return series(path, "mahimahi", starts.tolist(), rates.tolist(), duration_s=end_s)


register(TraceFormat("mahimahi", detect, read,
                     {"window": f"averaging window, a time (default {DEFAULT_WINDOW!r})"},
                     "one ms timestamp per 1500-byte delivery opportunity"))
