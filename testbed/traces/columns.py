"""Reading ``time rate`` lines (two whitespace-separated numbers), shared by the Pensieve
and Lumos5G readers.

Times must increase strictly; rates must be >= 0 (0 is an outage and is kept). An optional
first line that is not numeric is a header and is skipped. Times are made relative to the
first sample; the trace lasts until the last time plus the last sample interval.
"""

from __future__ import annotations

from pathlib import Path

from testbed.traces.formats.base import series
from testbed.traces.lines import is_number, line_error, read_lines, two_numbers
from testbed.traces.series import Series


def read_time_rate(path: Path, fmt: str, *, time_unit_s: float, rate_unit_bps: float,
                   units: str) -> Series:
    """A two-column file as a Series in bit/s; ``units`` names the columns in errors
    (e.g. ``"time (s) and throughput (Mbit/s)"``)."""
    lines = read_lines(path)
    if not all(is_number(token) for token in lines[0].text.split()):
        lines = lines[1:]  # header
        if not lines:
            raise line_error(path, 1, f"got only a header; expected lines of {units}")
    times: list[float] = []
    values: list[float] = []
    for line in lines:
        t, v = two_numbers(path, line, "time", "rate", units)
        if times and t * time_unit_s <= times[-1]:
            raise line_error(path, line.number, f"got time {line.text.split()[0]!r} not after "
                                                "the previous line's; expected increasing times")
        times.append(t * time_unit_s)
        values.append(v * rate_unit_bps)
    start = times[0]
    return series(path, fmt, [t - start for t in times], values)
