"""Plain CSV traces, the project's own format: a header naming each column's unit, then one
row per sample.

    # optional comment lines
    time_s,bandwidth_Mbps
    0,12.5
    1.5,0
    3,9.75
    4,

The first column is the time; its unit comes from its name (``time_s``, ``t_ms``,
``time [s]``, ``time (min)``). The rate column is the ``column`` option, else the first
other column whose name carries a rate unit (``bandwidth_Mbps``, ``bw_bps``,
``rate [kbit/s]``); units are read by :mod:`testbed.units`, and an all-lowercase unit
means bits (``mbps`` = Mbit/s; write ``MBps`` for bytes). A header without units is an
error. Times must increase; rates must be >= 0 (0 = outage). A last row with an empty rate
marks the end of the trace (its duration); without it the trace lasts until the last time
plus the last interval. Times are made relative to the first sample.
"""

from __future__ import annotations

import re
from pathlib import Path

from testbed.errors import ConfigError
from testbed.traces.formats.base import TraceFormat, TraceOptionError, register, series
from testbed.traces.lines import Line, is_number, line_error, number, read_lines
from testbed.traces.series import Series
from testbed.units import rate_unit_factor, time_unit_factor

_BRACKETED = re.compile(r"^(.*?)\s*[\[(]\s*(.+?)\s*[\])]$")
EXAMPLE = "time_s,bandwidth_Mbps"


def _cells(text: str) -> list[str]:
    return [cell.strip().strip('"').strip() for cell in text.split(",")]


def column_unit(name: str) -> str | None:
    """The unit a column name carries: ``bw_Mbps`` -> ``Mbps``, ``t [ms]`` -> ``ms``."""
    match = _BRACKETED.match(name)
    if match:
        return match.group(2)
    if "_" in name:
        return name.rsplit("_", 1)[1]
    return None


def _rate_factor(name: str) -> float | None:
    unit = column_unit(name)
    try:
        return rate_unit_factor(unit, lowercase_bits=True) if unit else None
    except ConfigError:
        return None


def _time_like(name: str) -> bool:
    """A first column that names a time (with or without its unit)."""
    if re.match(r"(?i)^(t|time|times|timestamp|ts|date|elapsed)\b", name.replace("_", " ")):
        return True
    unit = column_unit(name)
    if not unit:
        return False
    try:
        return time_unit_factor(unit) > 0
    except ConfigError:
        return False


def detect(first_lines: list[str], path: Path) -> bool:
    """A comma-separated first line that starts with a time column (or only numbers, so
    that the missing header is reported), and is not a UCC 5G log."""
    header = next((line for line in first_lines if not line.startswith("#")), "")
    if "," not in header:
        return False
    names = _cells(header)
    if "Timestamp" in names and ("DL_bitrate" in names or "UL_bitrate" in names):
        return False
    return _time_like(names[0]) or all(is_number(name) for name in names)


def _header(path: Path, line: Line, column: object) -> tuple[int, float, int, float]:
    """(time column, s per unit, rate column, bit/s per unit) from the header line."""
    names = _cells(line.text)
    if all(is_number(name) for name in names):
        raise line_error(path, line.number, f"got {line.text!r} where the header should be; "
                                            f"expected a header naming units, such as {EXAMPLE}")
    if len(names) < 2:
        raise line_error(path, line.number, f"got header {line.text!r}; expected at least two "
                                            f"columns, time and rate, such as {EXAMPLE}")
    unit = column_unit(names[0])
    try:
        time_factor = time_unit_factor(unit) if unit else None
    except ConfigError:
        time_factor = None
    if time_factor is None:
        raise line_error(path, line.number, f"got time column {names[0]!r} without a time unit; "
                                            "expected a name such as time_s, t_ms or 'time [s]'")
    if column is not None:
        if column not in names[1:]:
            raise TraceOptionError(f"got {column!r}; expected one of the columns "
                                   f"{', '.join(names[1:])}", field="column", value=column)
        index = names.index(column)
        factor = _rate_factor(column)
        if factor is None:
            raise line_error(path, line.number, f"got column {column!r} without a rate unit; "
                                                "expected a name such as bandwidth_Mbps")
        return 0, time_factor, index, factor
    for index, name in enumerate(names[1:], start=1):
        factor = _rate_factor(name)
        if factor is not None:
            return 0, time_factor, index, factor
    raise line_error(path, line.number, f"got header {line.text!r} with no rate unit in any "
                                        f"column name; expected e.g. {EXAMPLE} or time_s,bw_bps")


def read(path: Path, *, column: object = None) -> Series:
    """Header-named units -> capacity (bit/s)."""
    lines = read_lines(path)
    i_time, time_factor, i_rate, rate_factor = _header(path, lines[0], column)
    width = len(_cells(lines[0].text))
    times: list[float] = []
    values: list[float] = []
    end = None
    rows = lines[1:]
    if not rows:
        raise line_error(path, lines[0].number, "got a header and no rows; expected samples")
    for k, line in enumerate(rows):
        cells = _cells(line.text)
        if len(cells) != width:
            raise line_error(path, line.number, f"got {len(cells)} cells; expected {width} as in "
                                                "the header")
        t = number(path, line, cells[i_time], "a time") * time_factor
        if times and t <= times[-1]:
            raise line_error(path, line.number, f"got time {cells[i_time]!r} not after the "
                                                "previous row's; expected increasing times")
        if cells[i_rate] == "":
            if k + 1 < len(rows) or not times:
                raise line_error(path, line.number, "got an empty rate; expected a number >= 0 "
                                                    "(only a last row after samples may leave "
                                                    "it empty, to mark the end)")
            end = t
            continue
        rate = number(path, line, cells[i_rate], "a rate >= 0")
        if rate < 0:
            raise line_error(path, line.number, f"got negative rate {cells[i_rate]!r}; "
                                                "expected a rate >= 0")
        times.append(t)
        values.append(rate * rate_factor)
    start = times[0]
    return series(path, "csv", [t - start for t in times], values,
                  duration_s=None if end is None else end - start)


register(TraceFormat("csv", detect, read,
                     {"column": "name of the rate column (default: the first with a rate unit)"},
                     f"CSV with a header naming units, e.g. {EXAMPLE}"))
