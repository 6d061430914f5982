"""Replay options applied to a capacity trace, giving the Series a link replays.

In this order:

1. ``offset_s``: start that far into the trace. Looping traces are rotated (the part
   before the offset comes after the end, the period unchanged); otherwise the trace is
   cut and must last longer than the offset.
2. ``loop``: True repeats the trace with period = its duration; False holds the last value
   after the end; None (default) keeps what the trace does (a SimGrid ``LOOPAFTER`` file
   loops, every other reader holds).
3. ``scale`` (a factor) or ``scale_to_mean_bps`` (the factor that makes the time-weighted
   mean over one duration exactly that), then ``clip_min_bps`` (a floor). With both a
   target mean and a floor, the factor is solved so that the floored trace has the target
   mean. With no floor (or 0) outages stay at 0 bit/s; the engine pauses flows there.
"""

from __future__ import annotations

import bisect
import math

import numpy as np

from testbed.errors import ConfigError
from testbed.traces.series import Series, trace_duration_s
from testbed.traces.stats import hold_times_s
from testbed.units import format_bitrate, format_time


def _error(message: str, series: Series, field: str) -> ConfigError:
    return ConfigError(message, source=series.provenance or None, field=field)


def _shift(series: Series, offset_s: float, duration_s: float, loop: bool):
    """(times, values) starting ``offset_s`` into the trace (rotated when ``loop``)."""
    times = [0.0, *series.times_s[1:]]
    values = list(series.values)
    if offset_s == 0 or duration_s == 0:
        return times, values
    i = bisect.bisect_right(times, offset_s) - 1
    new_times = [0.0] + [t - offset_s for t in times[i + 1:]]
    new_values = [values[i]] + values[i + 1:]
    if loop:
        for t, v in zip(times[:i + 1], values[:i + 1]):
            shifted = t + duration_s - offset_s
            if shifted < duration_s * (1 - 1e-12) and shifted > new_times[-1]:
                new_times.append(shifted)
                new_values.append(v)
    return new_times, new_values


def scale_for_mean(values: np.ndarray, weights: np.ndarray, target: float,
                   floor: float = 0.0) -> float:
    """The factor k with time-weighted mean of max(k * values, floor) = ``target``.

    The mean is piecewise linear and non-decreasing in k; this finds the piece holding the
    target: with the j largest values above the floor, k = (target W - floor W_rest) / S_j.
    """
    total = float(weights.sum())
    order = np.argsort(-values, kind="stable")
    v, w = values[order], weights[order]
    above = np.cumsum(w * v)
    weight_above = np.cumsum(w)
    for j in range(len(v)):
        if v[j] <= 0:
            break
        k = (target * total - floor * (total - weight_above[j])) / above[j]
        low_ok = k * v[j] >= floor * (1 - 1e-12)
        high_ok = j + 1 == len(v) or k * v[j + 1] <= floor * (1 + 1e-12)
        if low_ok and high_ok:
            return float(k)
    raise ValueError("no factor gives that mean")


def replay(series: Series, *, offset_s: float = 0.0, scale: float | None = None,
           scale_to_mean_bps: float | None = None, loop: bool | None = None,
           clip_min_bps: float | None = None) -> Series:
    """``series`` as a link replays it, with the options above (SI units)."""
    duration = trace_duration_s(series)
    looping = series.loop_period_s is not None if loop is None else bool(loop)
    if not (math.isfinite(offset_s) and offset_s >= 0):
        raise _error(f"got offset {offset_s!r} s; expected a time >= 0", series, "offset")
    if looping and duration <= 0:
        raise _error("got a trace of zero duration; expected a trace with a duration to loop",
                     series, "loop")
    if scale is not None and scale_to_mean_bps is not None:
        raise _error("got both scale and scale_to_mean; expected at most one", series, "scale")
    if looping and duration > 0:
        offset = offset_s % duration
        if offset > duration * (1 - 1e-12):
            offset = 0.0
    else:
        offset = offset_s
        if duration > 0 and offset >= duration:
            raise _error(f"got offset {format_time(offset_s)} at or past the end of the trace "
                         f"({format_time(duration)}); expected a smaller offset or loop: true",
                         series, "offset")
    new_duration = duration if looping else max(duration - offset, 0.0)
    times, values = _shift(series, offset, duration, looping)
    shifted = Series(times, values, new_duration if looping else None, series.unit,
                     series.provenance, new_duration if new_duration > times[-1] else None)
    raw = np.asarray(shifted.values)
    floor = clip_min_bps or 0.0
    if not (math.isfinite(floor) and floor >= 0):
        raise _error(f"got clip_min {clip_min_bps!r} bit/s; expected a rate >= 0", series,
                     "clip_min")
    factor = 1.0
    if scale is not None:
        if not (math.isfinite(scale) and scale > 0):
            raise _error(f"got scale {scale!r}; expected a factor > 0", series, "scale")
        factor = scale
    elif scale_to_mean_bps is not None:
        target = scale_to_mean_bps
        if not (math.isfinite(target) and target > 0):
            raise _error(f"got scale_to_mean {target!r} bit/s; expected a rate > 0", series,
                         "scale_to_mean")
        if target < floor:
            raise _error(f"got scale_to_mean {format_bitrate(target)} below clip_min "
                         f"{format_bitrate(floor)}; expected a mean >= the floor", series,
                         "scale_to_mean")
        if not (raw > 0).any():
            raise _error("got a trace that is 0 bit/s throughout; expected some capacity to "
                         "scale to a mean", series, "scale_to_mean")
        factor = scale_for_mean(raw, hold_times_s(shifted), target, floor)
    notes = []
    if offset:
        notes.append(f"offset {format_time(offset)}")
    if factor != 1.0:
        notes.append(f"x{factor:.6g}")
    if floor:
        notes.append(f"floor {format_bitrate(floor)}")
    if looping:
        notes.append("loop")
    provenance = series.provenance + (f" [{', '.join(notes)}]" if notes else "")
    return Series(shifted.times_s, np.maximum(raw * factor, floor).tolist(),
                  shifted.loop_period_s, series.unit, provenance, shifted.duration_s)
