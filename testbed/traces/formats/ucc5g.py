"""UCC "Beyond Throughput" 5G dataset (G-NetTrack logs): CSV with a header; ``Timestamp``
(``YYYY.MM.DD_HH.MM.SS``, 1 s resolution, local clock) and ``DL_bitrate`` / ``UL_bitrate``
in kbit/s, plus radio and GPS columns that are ignored.

Options: ``direction`` ``dl`` (default) or ``ul``; ``aggregate``, how rows become time:

- ``window`` (default): each row is a one-second measurement window (G-NetTrack logs about
  once a second), laid end to end in file order, so the trace lasts one second per row and
  its time-weighted mean is the dataset's per-row mean. The logger's clock jitters -- a
  second with two rows is usually next to one with none (205 repeated and 289 skipped
  seconds in the 1,741 rows of ``B_2020.01.16_09.56.56.csv``) -- and holding each row until
  the next timestamp would give the rows before a skipped second double weight (a mean of
  42.5 Mbit/s there against 40.0 per row). The trace drifts from the wall clock by the
  skipped seconds (84 s over 30 min in that file);
- ``spread``: keep the timestamps; the k rows of one second are placed k-th of a second
  apart (s, s + 1/k, ...), and a skipped second holds the previous row;
- ``mean``: one sample per logged second, the mean of its rows;
- ``max``: one sample per logged second, the largest of its rows (rows logged while
  throughput tracking pauses report near-zero rates).

Times are relative to the first row. With the timestamp rules the trace lasts until the
end of the last logged second (its timestamp + 1 s). Detection: a header with a
``Timestamp`` column and a ``DL_bitrate`` or ``UL_bitrate`` column.
"""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

from testbed.traces.formats.base import TraceFormat, choice_option, register, series
from testbed.traces.lines import line_error, number, read_lines
from testbed.traces.series import Series
from testbed.units import rate_unit_factor

TIME_COLUMN = "Timestamp"
TIME_FORMAT = "%Y.%m.%d_%H.%M.%S"
COLUMNS = {"dl": "DL_bitrate", "ul": "UL_bitrate"}
AGGREGATES = ("window", "spread", "mean", "max")
KBPS = rate_unit_factor("kbit/s")


def _cells(text: str) -> list[str]:
    return [cell.strip() for cell in next(csv.reader([text]))]


def detect(first_lines: list[str], path: Path) -> bool:
    header = next((line for line in first_lines if not line.startswith("#")), "")
    names = _cells(header) if "," in header else []
    return TIME_COLUMN in names and any(name in names for name in COLUMNS.values())


def read(path: Path, *, direction: object = "dl", aggregate: object = "window") -> Series:
    """kbit/s per row -> capacity (bit/s) over time."""
    column = COLUMNS[choice_option("direction", direction, tuple(COLUMNS))]
    rule = choice_option("aggregate", aggregate, AGGREGATES)
    lines = read_lines(path)
    header = _cells(lines[0].text)
    for name in (TIME_COLUMN, column):
        if name not in header:
            raise line_error(path, lines[0].number, f"got a header without a {name!r} column; "
                                                    f"expected a UCC 5G CSV header with "
                                                    f"{TIME_COLUMN} and {column}")
    i_time, i_rate = header.index(TIME_COLUMN), header.index(column)
    seconds: list[float] = []   # one entry per distinct timestamp
    groups: list[list[float]] = []
    origin = None
    for line in lines[1:]:
        cells = _cells(line.text)
        if len(cells) != len(header):
            raise line_error(path, line.number, f"got {len(cells)} cells; expected "
                                                f"{len(header)} as in the header")
        try:
            stamp = datetime.strptime(cells[i_time], TIME_FORMAT)
        except ValueError:
            raise line_error(path, line.number, f"got {TIME_COLUMN} {cells[i_time]!r}; "
                                                "expected YYYY.MM.DD_HH.MM.SS") from None
        origin = origin or stamp
        t = (stamp - origin).total_seconds()
        kbps = number(path, line, cells[i_rate], f"{column} in kbit/s (a number >= 0)")
        if kbps < 0:
            raise line_error(path, line.number, f"got negative {column} {cells[i_rate]!r}; "
                                                "expected a rate in kbit/s >= 0")
        if seconds and t < seconds[-1]:
            raise line_error(path, line.number, f"got {TIME_COLUMN} {cells[i_time]!r} before "
                                                "the previous row's; expected non-decreasing "
                                                "times")
        if seconds and t == seconds[-1]:
            groups[-1].append(kbps * KBPS)
        else:
            seconds.append(t)
            groups.append([kbps * KBPS])
    if not seconds:
        raise line_error(path, lines[0].number, "got a header and no rows; expected rows of "
                                                "samples")
    values: list[float]
    if rule == "window":
        values = [rate for rates in groups for rate in rates]
        return series(path, "ucc5g", [float(i) for i in range(len(values))], values,
                      duration_s=float(len(values)))
    times: list[float] = []
    values = []
    for t, rates in zip(seconds, groups):
        if rule == "spread":
            times.extend(t + k / len(rates) for k in range(len(rates)))
            values.extend(rates)
        else:
            times.append(t)
            values.append(sum(rates) / len(rates) if rule == "mean" else max(rates))
    return series(path, "ucc5g", times, values, duration_s=seconds[-1] + 1.0)


register(TraceFormat("ucc5g", detect, read,
                     {"direction": "dl (default) or ul",
                      "aggregate": f"rows sharing a timestamp: {', '.join(AGGREGATES)} "
                                   "(default 'window': each row one second)"},
                     "G-NetTrack CSV, Timestamp and DL_bitrate/UL_bitrate in kbit/s"))
