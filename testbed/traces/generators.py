"""Seeded synthetic capacity traces, registered by name in ``TRACE_GENERATORS``.

Each generator is called as ``generate(duration_s, step_s, rng, **params)`` (SI units:
rates in bit/s, times in s; ``rng`` an ``np.random.Generator``) and returns a Series in
bit/s on ``[0, duration_s)`` whose samples are ``step_s`` apart (the last one cut at the
duration), holding its last value after the end. ``expected_mean_bps(duration_s,
**params)`` is its analytic (stationary) mean (only ``steps`` needs the duration).
``params`` gives the config spelling and kind of each parameter: config key ``good`` of
kind ``rate`` is the keyword ``good_bps``, ``mean_good`` of kind ``time`` is
``mean_good_s``.

- ``constant(rate)``;
- ``steps(schedule)``: ``[(time_s, rate_bps), ...]`` from 0 s, each rate holding until
  the next time;
- ``gilbert_elliott(good, bad, mean_good, mean_bad)``: a two-state Markov chain stepped
  every ``step_s``, leaving a state with probability ``step / mean sojourn`` per step (so
  sojourns are geometric with exactly those means); the first state is drawn from the
  stationary law, so the mean is ``(good mean_good + bad mean_bad) / (mean_good +
  mean_bad)`` from t = 0;
- ``lognormal_jitter(mean, sigma)``: independent values ``mean exp(sigma Z - sigma^2/2)``
  per step (log-normal with that mean; ``sigma`` is the std of the log);
- ``random_walk(low, high, sigma, start)``: ``x + sigma Z`` per step, reflected into
  ``[low, high]``; ``start`` (default: drawn uniformly, the stationary law) so the mean
  is ``(low + high) / 2``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from testbed.registry import Registry
from testbed.traces.series import Series

REQUIRED = object()  # marks a parameter without a default


@dataclass(frozen=True)
class TraceGenerator:
    """A generator: ``generate``, its analytic mean and its parameters (kind, default)."""

    name: str
    generate: Callable[..., Series]
    expected_mean_bps: Callable[..., float]
    params: Mapping[str, tuple[str, object]]  # config key -> (kind, default or REQUIRED)
    random: bool = True

    def __call__(self, duration_s: float, step_s: float, rng: np.random.Generator | None,
                 **params) -> Series:
        return self.generate(duration_s, step_s, rng, **params)


TRACE_GENERATORS: Registry[TraceGenerator] = Registry("trace generator")
SUFFIX = {"rate": "_bps", "time": "_s", "number": "", "schedule": ""}


def keyword(name: str, kind: str) -> str:
    """The Python keyword of config parameter ``name`` of ``kind`` (``good`` -> ``good_bps``)."""
    return name + SUFFIX[kind]


def _steps(duration_s: float, step_s: float) -> np.ndarray:
    """Sample start times k * step_s within [0, duration_s)."""
    if not (math.isfinite(duration_s) and duration_s > 0):
        raise ValueError(f"duration_s must be > 0, got {duration_s!r}")
    if not (math.isfinite(step_s) and step_s > 0):
        raise ValueError(f"step_s must be > 0, got {step_s!r}")
    count = max(1, math.ceil(duration_s / step_s - 1e-9))
    return np.arange(count) * step_s


def _series(name: str, times, values, duration_s: float) -> Series:
    return Series(tuple(np.asarray(times, dtype=float).tolist()),
                  tuple(np.asarray(values, dtype=float).tolist()), None, "bit/s",
                  f"generator {name}", duration_s)


def _positive(name: str, value: float, allow_zero: bool = True) -> None:
    ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")


# ----- constant -------------------------------------------------------------------------------

def constant(duration_s: float, step_s: float, rng: np.random.Generator | None, *,
             rate_bps: float) -> Series:
    """``rate_bps`` throughout (one sample)."""
    _positive("rate_bps", rate_bps)
    _steps(duration_s, step_s)
    return _series("constant", [0.0], [rate_bps], duration_s)


TRACE_GENERATORS.register("constant")(TraceGenerator(
    "constant", constant, lambda duration_s=None, *, rate_bps: rate_bps,
    {"rate": ("rate", REQUIRED)},
    random=False))


# ----- steps ----------------------------------------------------------------------------------

def _check_schedule(schedule, duration_s: float) -> list[tuple[float, float]]:
    points = [(float(t), float(r)) for t, r in schedule]
    if not points or points[0][0] != 0:
        raise ValueError("schedule must start at time 0 s")
    for (t0, _), (t1, _) in zip(points, points[1:]):
        if t1 <= t0:
            raise ValueError(f"schedule times must increase, got {t1!r} after {t0!r}")
    if points[-1][0] >= duration_s:
        raise ValueError(f"schedule time {points[-1][0]!r} s is not before the duration "
                         f"{duration_s!r} s")
    for _, rate in points:
        _positive("schedule rate", rate)
    return points


def steps(duration_s: float, step_s: float, rng: np.random.Generator | None, *,
          schedule) -> Series:
    """The rates of ``schedule`` [(time_s, rate_bps)], each from its time to the next."""
    _steps(duration_s, step_s)
    points = _check_schedule(schedule, duration_s)
    return _series("steps", [t for t, _ in points], [r for _, r in points], duration_s)


def steps_mean(duration_s: float, *, schedule) -> float:
    """Time-weighted mean of ``schedule`` over [0, duration_s)."""
    points = _check_schedule(schedule, duration_s)
    ends = [t for t, _ in points[1:]] + [duration_s]
    return sum(r * (end - t) for (t, r), end in zip(points, ends)) / duration_s


TRACE_GENERATORS.register("steps")(TraceGenerator(
    "steps", steps, steps_mean, {"schedule": ("schedule", REQUIRED)}, random=False))


# ----- Gilbert-Elliott ------------------------------------------------------------------------

def gilbert_elliott(duration_s: float, step_s: float, rng: np.random.Generator, *,
                    good_bps: float, bad_bps: float, mean_good_s: float,
                    mean_bad_s: float) -> Series:
    """Good/bad two-state Markov chain; one sample per state change."""
    times = _steps(duration_s, step_s)
    for name, value in (("good_bps", good_bps), ("bad_bps", bad_bps)):
        _positive(name, value)
    for name, value in (("mean_good_s", mean_good_s), ("mean_bad_s", mean_bad_s)):
        if not (math.isfinite(value) and value >= step_s):
            raise ValueError(f"{name} must be >= step_s ({step_s!r} s), got {value!r}")
    leave = {True: step_s / mean_good_s, False: step_s / mean_bad_s}
    good = bool(rng.random() < mean_good_s / (mean_good_s + mean_bad_s))
    count = len(times)
    change_steps, states = [], []
    k = 0
    while k < count:
        change_steps.append(k)
        states.append(good)
        k += int(rng.geometric(leave[good]))  # steps spent in this state, mean 1/p
        good = not good
    rates = [good_bps if state else bad_bps for state in states]
    return _series("gilbert_elliott", times[change_steps], rates, duration_s)


def gilbert_elliott_mean(duration_s: float | None = None, *, good_bps: float,
                         bad_bps: float, mean_good_s: float, mean_bad_s: float) -> float:
    """Stationary mean: rates weighted by the mean sojourn times."""
    return (good_bps * mean_good_s + bad_bps * mean_bad_s) / (mean_good_s + mean_bad_s)


TRACE_GENERATORS.register("gilbert_elliott")(TraceGenerator(
    "gilbert_elliott", gilbert_elliott, gilbert_elliott_mean,
    {"good": ("rate", REQUIRED), "bad": ("rate", REQUIRED), "mean_good": ("time", REQUIRED),
     "mean_bad": ("time", REQUIRED)}))


# ----- log-normal jitter ----------------------------------------------------------------------

def lognormal_jitter(duration_s: float, step_s: float, rng: np.random.Generator, *,
                     mean_bps: float, sigma: float) -> Series:
    """Independent log-normal values with mean ``mean_bps``, one per step."""
    times = _steps(duration_s, step_s)
    _positive("mean_bps", mean_bps)
    _positive("sigma", sigma)
    values = mean_bps * np.exp(sigma * rng.standard_normal(len(times)) - sigma**2 / 2)
    return _series("lognormal_jitter", times, values, duration_s)


TRACE_GENERATORS.register("lognormal_jitter")(TraceGenerator(
    "lognormal_jitter", lognormal_jitter, lambda duration_s=None, *, mean_bps, sigma: mean_bps,
    {"mean": ("rate", REQUIRED), "sigma": ("number", REQUIRED)}))


# ----- bounded random walk --------------------------------------------------------------------

def _reflect(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """``x`` folded into [low, high] by reflection at both ends."""
    width = high - low
    y = np.mod(x - low, 2 * width)
    return low + np.where(y > width, 2 * width - y, y)


def random_walk(duration_s: float, step_s: float, rng: np.random.Generator, *,
                low_bps: float, high_bps: float, sigma_bps: float,
                start_bps: float | None = None) -> Series:
    """Gaussian steps of std ``sigma_bps`` per ``step_s``, reflected into [low, high].

    A free walk folded into the interval has the same law as the walk reflected at each
    step (the steps are symmetric), so the whole path is drawn at once.
    """
    times = _steps(duration_s, step_s)
    _positive("low_bps", low_bps)
    if not (math.isfinite(high_bps) and high_bps > low_bps):
        raise ValueError(f"high_bps must be > low_bps ({low_bps!r}), got {high_bps!r}")
    _positive("sigma_bps", sigma_bps)
    if start_bps is None:
        start_bps = rng.uniform(low_bps, high_bps)
    elif not low_bps <= start_bps <= high_bps:
        raise ValueError(f"start_bps must lie in [low_bps, high_bps], got {start_bps!r}")
    increments = sigma_bps * rng.standard_normal(len(times))
    increments[0] = 0.0
    values = _reflect(start_bps + np.cumsum(increments), low_bps, high_bps)
    return _series("random_walk", times, values, duration_s)


TRACE_GENERATORS.register("random_walk")(TraceGenerator(
    "random_walk", random_walk,
    lambda duration_s=None, *, low_bps, high_bps, sigma_bps, start_bps=None:
    (low_bps + high_bps) / 2,
    {"low": ("rate", REQUIRED), "high": ("rate", REQUIRED), "sigma": ("rate", REQUIRED),
     "start": ("rate", None)}))
