"""Bandwidth and availability traces: piecewise-constant series, readers, generators."""

from testbed.traces.series import Series

__all__ = ["Series"]
