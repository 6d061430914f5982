"""Lumos5G per-run traces (SIGCOMM'21 5G artifact): ``time  Mbit/s`` per line.

TAB- (5G files, time from 1.0) or space-separated (4G files, integer time from 0), one
sample per second. True zeros are outages (or handovers) and are kept as 0 bit/s.

The layout is the same as Pensieve's and so is the reading; detection calls a file
lumos5g when its times are whole seconds 1 s apart starting at 1 or written as integers
(see :mod:`testbed.traces.sniff`); ``format: lumos5g`` or ``format: pensieve`` forces it.
"""

from __future__ import annotations

from pathlib import Path

from testbed.traces.columns import read_time_rate
from testbed.traces.formats.base import TraceFormat, register
from testbed.traces.series import Series
from testbed.traces.sniff import column_format
from testbed.units import rate_unit_factor


def detect(first_lines: list[str], path: Path) -> bool:
    return column_format(first_lines, path) == "lumos5g"


def read(path: Path) -> Series:
    """Times in s, rates in Mbit/s -> bit/s; zeros kept."""
    return read_time_rate(path, "lumos5g", time_unit_s=1.0,
                          rate_unit_bps=rate_unit_factor("Mbit/s"),
                          units="time (s) and throughput (Mbit/s)")


register(TraceFormat("lumos5g", detect, read, {}, "time (s) and Mbit/s per line, 1 s apart"))
