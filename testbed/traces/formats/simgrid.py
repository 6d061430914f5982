"""SimGrid link bandwidth profiles (``bandwidth_file``): ``date value`` lines, dates in s,
values absolute bandwidths in **bytes/s** (SimGrid's convention for link profiles; option
``unit``, default ``"B/s"``, says otherwise, e.g. ``"bit/s"``).

``#`` and ``%`` lines are comments. ``LOOPAFTER d`` makes the profile repeat: the next
iteration's events come ``d`` s after the last event plus their own dates, so the period is
last date + ``d``. ``PERIODICITY p`` (older files) sets the period to ``p`` directly.
Stochastic profiles (``STOCHASTIC``, ``NORM``/``UNIF``/``EXP`` laws) are refused. Dates
must not decrease; two events at the same date: the later line wins, as in SimGrid.

Times are made relative to the first date (SimGrid keeps the platform's nominal bandwidth
before it; here the first value holds from 0), which does not change the period. Without
a loop the trace lasts until the last date plus the last interval and then holds.
"""

from __future__ import annotations

from pathlib import Path

from testbed.traces.formats.base import TraceFormat, rate_unit_option, register, series
from testbed.traces.lines import line_error, number, read_lines, two_numbers
from testbed.traces.series import Series
from testbed.traces.sniff import column_format

DEFAULT_UNIT = "B/s"


def detect(first_lines: list[str], path: Path) -> bool:
    return column_format(first_lines, path) == "simgrid"


def read(path: Path, *, unit: object = DEFAULT_UNIT) -> Series:
    """Dated bandwidths -> capacity (bit/s), looping when the file says so."""
    factor = rate_unit_option("unit", unit)
    dates: list[float] = []
    values: list[float] = []
    loop_after = period = None
    for line in read_lines(path, comments="#%"):
        tokens = line.text.split()
        keyword = tokens[0].upper()
        if keyword in ("LOOPAFTER", "PERIODICITY"):
            if len(tokens) != 2:
                raise line_error(path, line.number, f"got {line.text!r}; expected "
                                                    f"'{tokens[0]} <seconds>'")
            seconds = number(path, line, tokens[1], f"a time in s after {tokens[0]}")
            if seconds < 0 or (keyword == "PERIODICITY" and seconds == 0):
                bound = "a time in s >= 0" if keyword == "LOOPAFTER" else "a period in s > 0"
                raise line_error(path, line.number, f"got {line.text!r}; expected {bound}")
            if loop_after is not None or period is not None:
                raise line_error(path, line.number, "got a second LOOPAFTER/PERIODICITY line; "
                                                    "expected at most one")
            if keyword == "LOOPAFTER":
                loop_after = seconds
            else:
                period = seconds
            continue
        if keyword.startswith("STOCHASTIC") or keyword in ("DET", "NORM", "NORMAL", "GAUSS",
                                                           "GAUSSIAN", "EXP", "EXPONENTIAL",
                                                           "UNIF", "UNIFORM"):
            raise line_error(path, line.number, f"got {line.text!r}; stochastic SimGrid "
                                                "profiles are not supported; expected "
                                                "'date value' lines")
        date, value = two_numbers(path, line, "date in s", "bandwidth",
                                  "'date value' (s and bandwidth)")
        if dates and date < dates[-1]:
            raise line_error(path, line.number, f"got date {tokens[0]!r} before the previous "
                                                "event's; expected non-decreasing dates")
        if dates and date == dates[-1]:
            values[-1] = value * factor  # same date: the later event wins
            continue
        dates.append(date)
        values.append(value * factor)
        last_number = line.number
    if not dates:
        raise line_error(path, 1, "got no 'date value' lines; expected a bandwidth profile")
    first, last = dates[0], dates[-1]
    loop = None
    if period is not None:
        if period < last:
            raise line_error(path, last_number, f"got PERIODICITY {period:g} s before the last "
                                                f"event at {last:g} s; expected a period "
                                                "covering every event")
        loop = period
    elif loop_after is not None:
        loop = last + loop_after
    if loop is not None and loop <= last - first:
        raise line_error(path, last_number, "got a loop that restarts at the last event "
                                            "(it would last 0 s); expected LOOPAFTER > 0")
    return series(path, "simgrid", [d - first for d in dates], values, loop_period_s=loop)


register(TraceFormat("simgrid", detect, read,
                     {"unit": f"unit of the values (default {DEFAULT_UNIT!r}, SimGrid's)"},
                     "SimGrid bandwidth profile: date (s) and bandwidth (B/s), LOOPAFTER"))
