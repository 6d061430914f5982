"""Pensieve "cooked" traces (FCC broadband, Norway HSDPA 3G): ``time_s  Mbit/s`` per line.

Whitespace-separated (the files use TAB), no header, sample spacing may be uneven (the
Norway traces are ~1.01 s apart). Zeros are kept as outages. Detection: see
:mod:`testbed.traces.sniff` (any two-number file that is not Oboe- or Lumos5G-like).
"""

from __future__ import annotations

from pathlib import Path

from testbed.traces.columns import read_time_rate
from testbed.traces.formats.base import TraceFormat, register
from testbed.traces.series import Series
from testbed.traces.sniff import column_format
from testbed.units import rate_unit_factor


def detect(first_lines: list[str], path: Path) -> bool:
    return column_format(first_lines, path) == "pensieve"


def read(path: Path) -> Series:
    """Times in s, rates in Mbit/s -> bit/s."""
    return read_time_rate(path, "pensieve", time_unit_s=1.0,
                          rate_unit_bps=rate_unit_factor("Mbit/s"),
                          units="time (s) and throughput (Mbit/s)")


register(TraceFormat("pensieve", detect, read, {}, "time (s) and Mbit/s per line"))
