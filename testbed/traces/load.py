"""Loading a trace file: detect its format from its first lines, read it with that reader.

``load_trace(path)`` returns a :class:`~testbed.traces.series.Series` of capacities in bit/s
over time in s from the first sample, holding the last value after the end (see
:func:`~testbed.traces.series.trace_duration_s` for the duration).
"""

from __future__ import annotations

from pathlib import Path

from testbed.errors import ConfigError
from testbed.traces.formats import TRACE_FORMATS
from testbed.traces.lines import DETECT_LINES, head
from testbed.traces.series import Series


def detect_format(path: str | Path) -> str:
    """The name of the one format whose detector claims ``path`` (first ~50 lines)."""
    path = Path(path)
    first = head(path, DETECT_LINES)
    if all(line.startswith(("#", "%")) for line in first):
        raise ConfigError("got no data (an empty file, or only blank and comment lines); "
                          "expected a bandwidth trace", source=str(path), field="line 1")
    matches = [name for name in TRACE_FORMATS if TRACE_FORMATS.get(name).detect(first, path)]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(TRACE_FORMATS.names())
    if matches:
        raise ConfigError(f"cannot tell the trace format: it looks like {' and '.join(matches)}; "
                          f"expected one; give the format (one of {known})", source=str(path))
    raise ConfigError(f"cannot tell the trace format from its first lines; expected one of "
                      f"{known} (give the format to choose)", source=str(path))


def load_trace(path: str | Path, format: str | None = None, **options) -> Series:
    """The trace in ``path`` as capacities in bit/s; ``format`` None = detect it; ``options``
    go to the reader (e.g. ``window="100 ms"`` for mahimahi, ``gaps="zero"`` for oboe)."""
    path = Path(path)
    name = format if format is not None else detect_format(path)
    reader = TRACE_FORMATS.get(name, source=str(path), field="format")
    return reader.load(path, **options)
