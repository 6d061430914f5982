"""Writing a capacity trace to a file: the project's CSV format or a SimGrid profile.

- CSV (:mod:`testbed.traces.formats.plain_csv`): ``time_s,bandwidth_<unit>`` rows and a
  last row with an empty rate at the trace's duration; numbers are written exactly
  (shortest round-trip form), so reading the file back gives the same Series (a loop
  flag is not kept: give ``loop: true`` when replaying).
- SimGrid (:mod:`testbed.traces.formats.simgrid`): a ``#`` comment naming SimGrid, then
  ``date value`` lines in s and B/s, and ``LOOPAFTER`` when the trace loops. SimGrid has
  no end marker, so a trace that does not loop is read back with the default duration
  (last time + last interval).
"""

from __future__ import annotations

from typing import TextIO

from testbed.traces.series import Series, trace_duration_s
from testbed.units import BITS_PER_BYTE, rate_unit_factor

CSV_UNITS = ("bps", "kbps", "Mbps", "Gbps")


def _number(value: float) -> str:
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def write_csv(series: Series, out: TextIO, *, unit: str = "bps") -> None:
    """``series`` as CSV with rates in ``unit`` (one of bps, kbps, Mbps, Gbps)."""
    if unit not in CSV_UNITS:
        raise ValueError(f"unit must be one of {', '.join(CSV_UNITS)}, got {unit!r}")
    factor = rate_unit_factor(unit)
    out.write(f"# bandwidth trace: {series.provenance or 'testbed'}\n")
    out.write("# a last row without a rate marks the end of the trace\n")
    out.write(f"time_s,bandwidth_{unit}\n")
    for t, v in zip(series.times_s, series.values):
        out.write(f"{_number(t)},{_number(v / factor)}\n")
    duration = trace_duration_s(series)
    if duration > series.times_s[-1]:
        out.write(f"{_number(duration)},\n")


def write_simgrid(series: Series, out: TextIO) -> None:
    """``series`` as a SimGrid link bandwidth profile (dates in s, bandwidths in B/s)."""
    out.write(f"# SimGrid bandwidth profile (date s, bandwidth B/s) from "
              f"{series.provenance or 'testbed'}\n")
    for t, v in zip(series.times_s, series.values):
        out.write(f"{_number(t)} {_number(v / BITS_PER_BYTE)}\n")
    if series.loop_period_s is not None:
        out.write(f"LOOPAFTER {_number(series.loop_period_s - series.times_s[-1])}\n")


WRITERS = {"csv": write_csv, "simgrid": write_simgrid}
