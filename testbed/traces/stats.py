"""Summary statistics of a capacity trace, time-weighted over the trace as replayed.

Each value holds from its time until the next sample; the last one until the trace's
duration (:func:`~testbed.traces.series.trace_duration_s`; one period when it loops). A
first point after 0 s holds from 0 s, as in replay. Percentiles are time-weighted: ``p5``
is the smallest rate r such that the capacity is <= r for at least 5 % of the time.
"""

from __future__ import annotations

import numpy as np

from testbed.traces.series import Series, trace_duration_s

PERCENTILES = (5, 50, 95)


def hold_times_s(series: Series) -> np.ndarray:
    """How long (s) each value holds within ``[0, duration)``; all ones for a trace of zero
    duration (a constant), so that weighted means fall back to plain ones."""
    times = np.asarray(series.times_s, dtype=float)
    duration = trace_duration_s(series)
    if duration <= times[-1]:
        return np.ones_like(times)
    starts = times.copy()
    starts[0] = 0.0
    return np.diff(np.append(starts, duration))


def weighted_percentile(values: np.ndarray, weights: np.ndarray, percent: float) -> float:
    """The smallest value v with at least ``percent`` % of the weight at or below v."""
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    target = percent / 100.0 * cumulative[-1]
    index = int(np.searchsorted(cumulative, target * (1 - 1e-12), side="left"))
    return float(values[order][min(index, len(values) - 1)])


def trace_stats(series: Series) -> dict:
    """``duration_s``, ``samples``, ``mean_bps`` (time-weighted), ``plain_mean_bps`` (mean
    of the sample values), ``p5_bps``, ``p50_bps``, ``p95_bps``, ``min_bps``, ``max_bps``,
    ``outage_s`` (time at 0 bit/s)."""
    values = np.asarray(series.values, dtype=float)
    weights = hold_times_s(series)
    duration = trace_duration_s(series)
    stats = {
        "duration_s": float(duration),
        "samples": int(len(values)),
        "mean_bps": float(np.dot(values, weights) / weights.sum()),
        "plain_mean_bps": float(values.mean()),
    }
    for percent in PERCENTILES:
        stats[f"p{percent}_bps"] = weighted_percentile(values, weights, percent)
    stats["min_bps"] = float(values.min())
    stats["max_bps"] = float(values.max())
    outage = float(weights[values == 0].sum()) if duration > series.times_s[-1] else 0.0
    stats["outage_s"] = outage
    return stats
