"""Bandwidth and availability traces: piecewise-constant series, readers, generators.

- :class:`Series` and :func:`trace_duration_s` (:mod:`.series`);
- readers by format name in ``TRACE_FORMATS`` (:mod:`.formats`), :func:`load_trace` and
  :func:`detect_format` (:mod:`.load`);
- seeded synthetic traces in ``TRACE_GENERATORS`` (:mod:`.generators`);
- :func:`replay` (offset, scaling, looping, floor; :mod:`.replay`);
- :func:`trace_stats` (:mod:`.stats`);
- ``testbed.traces.config.trace_from_config`` for scenario entries (not imported here: it
  depends on :mod:`testbed.cluster`, which depends on this package).
"""

from testbed.traces.series import Series, trace_duration_s  # noqa: I001  (first: no cycles)
from testbed.traces.formats import TRACE_FORMATS
from testbed.traces.generators import TRACE_GENERATORS
from testbed.traces.load import detect_format, load_trace
from testbed.traces.replay import replay
from testbed.traces.stats import trace_stats

__all__ = ["Series", "trace_duration_s", "TRACE_FORMATS", "TRACE_GENERATORS", "detect_format",
           "load_trace", "replay", "trace_stats"]
