"""Oboe traces (Conviva video sessions): ``t_ms  kbit/s`` per line, space-separated, in line
pairs: (chunk start, rate) then (chunk end, the same rate). The rate is the chunk's
average throughput; between one chunk's end and the next chunk's start there is no data.

Gaps, option ``gaps``:

- ``hold`` (default): the chunk's rate holds across the gap until the next chunk starts
  (every line taken as a point; this is the README's "held" figure);
- ``next``: the next chunk's rate starts at the previous chunk's end;
- ``interpolate``: the gap takes the mean of the two chunks' rates (a linear ramp between
  them, kept piecewise-constant with the same mean);
- ``zero``: the gap is an outage (0 bit/s).

Times are made relative to the first chunk's start; the trace lasts until the last
chunk's end. Each chunk must end after it starts and the next must not start before it
ends.
"""

from __future__ import annotations

from pathlib import Path

from testbed.traces.formats.base import TraceFormat, choice_option, register, series
from testbed.traces.lines import line_error, read_lines, two_numbers
from testbed.traces.series import Series
from testbed.traces.sniff import column_format
from testbed.units import rate_unit_factor

GAP_RULES = ("hold", "next", "interpolate", "zero")
KBPS = rate_unit_factor("kbit/s")


def detect(first_lines: list[str], path: Path) -> bool:
    return column_format(first_lines, path) == "oboe"


def _points(path: Path) -> list[tuple[int, float, float]]:
    """(line number, time in ms, rate in bit/s) per line."""
    points = []
    for line in read_lines(path):
        t_ms, kbps = two_numbers(path, line, "time in ms", "bandwidth in kbit/s",
                                 "time (ms) and bandwidth (kbit/s)")
        points.append((line.number, t_ms, kbps * KBPS))
    return points


def read(path: Path, *, gaps: object = "hold") -> Series:
    """Chunk rates -> capacity (bit/s), gaps filled by ``gaps``."""
    rule = choice_option("gaps", gaps, GAP_RULES)
    points = _points(path)
    if len(points) % 2:
        raise line_error(path, points[-1][0], "got a chunk start without its end line; "
                                              "expected lines in pairs (chunk start, chunk end)")
    chunks: list[tuple[float, float, float]] = []  # (start ms, end ms, rate bit/s)
    for k in range(0, len(points), 2):
        (_, start, rate), (number_end, end, rate_end) = points[k], points[k + 1]
        if rate_end != rate:
            raise line_error(path, number_end, f"got end rate {rate_end / KBPS:g} kbit/s after "
                                               f"start rate {rate / KBPS:g} kbit/s; expected the "
                                               "chunk's end line to repeat its rate")
        if end <= start:
            raise line_error(path, number_end, f"got chunk end {end:g} ms not after its "
                                               f"start {start:g} ms; expected end > start")
        if chunks and start < chunks[-1][1]:
            raise line_error(path, points[k][0], f"got chunk start {start:g} ms before the "
                                                 f"previous chunk's end {chunks[-1][1]:g} ms; "
                                                 "expected chunks in time order")
        chunks.append((start, end, rate))
    origin = chunks[0][0]
    times: list[float] = []
    values: list[float] = []
    for i, (start, end, rate) in enumerate(chunks):
        if not (times and rule == "next" and values[-1] == rate):
            times.append((start - origin) / 1000.0)
            values.append(rate)
        if i + 1 == len(chunks) or chunks[i + 1][0] == end:
            continue
        following = chunks[i + 1][2]
        gap_rate = {"hold": rate, "next": following, "interpolate": (rate + following) / 2,
                    "zero": 0.0}[rule]
        if gap_rate != rate:
            times.append((end - origin) / 1000.0)
            values.append(gap_rate)
    return series(path, "oboe", times, values, duration_s=(chunks[-1][1] - origin) / 1000.0)


register(TraceFormat("oboe", detect, read,
                     {"gaps": f"between chunks: {', '.join(GAP_RULES)} (default 'hold')"},
                     "chunk start/end line pairs, ms and kbit/s"))
