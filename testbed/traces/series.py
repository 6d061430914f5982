"""A piecewise-constant series over simulated time: link capacity, device availability.

``Series(times_s, values)``: value ``values[i]`` holds from ``times_s[i]`` until
``times_s[i+1]``; before ``times_s[0]`` the first value holds; after the last point the
last value holds, unless ``loop_period_s`` is set, in which case the pattern over
``[0, loop_period_s)`` repeats forever. The unit of the values is the user's (bit/s for a
link capacity, a fraction in [0, 1] for device availability) and is stated by ``unit``.

``duration_s`` (optional) is how long the recorded trace lasts: the end of its last
sample. It changes nothing in replay (the last value still holds after it); it is what
statistics, looping and scaling refer to. :func:`trace_duration_s` gives it with a
default when unset: the loop period if looping, else the last time plus the last sample
interval (for a single point: its time, usually 0 s).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from testbed.errors import ConfigError


@dataclass(frozen=True)
class Series:
    """Piecewise-constant values over time (s). Immutable; cheap lookups by bisection."""

    times_s: tuple[float, ...]
    values: tuple[float, ...]
    loop_period_s: float | None = None
    unit: str = ""
    provenance: str = ""
    duration_s: float | None = None

    def __post_init__(self):
        times = tuple(map(float, self.times_s))
        values = tuple(map(float, self.values))
        object.__setattr__(self, "times_s", times)
        object.__setattr__(self, "values", values)
        if not times or len(times) != len(values):
            raise ConfigError("a series needs as many values as times, and at least one point",
                              source=self.provenance or None, value=(len(times), len(values)))
        for i in _first_bad_point(times, values):
            t, v = times[i], values[i]
            if not math.isfinite(t) or t < 0:
                raise ConfigError(f"point {i}: got time {t!r}; expected a finite time >= 0 s",
                                  source=self.provenance or None, value=t)
            if not math.isfinite(v) or v < 0:
                raise ConfigError(f"point {i}: got value {v!r}; expected a finite value >= 0",
                                  source=self.provenance or None, value=v)
            if i and t <= times[i - 1]:
                raise ConfigError(f"point {i}: got time {t!r} after {times[i - 1]!r}; "
                                  "expected strictly increasing times",
                                  source=self.provenance or None, value=t)
        if self.loop_period_s is not None and not (self.loop_period_s > times[-1]):
            raise ConfigError(f"got loop period {self.loop_period_s!r} s; expected a period "
                              f"longer than the last point at {times[-1]!r} s",
                              source=self.provenance or None, value=self.loop_period_s)
        if self.duration_s is not None:
            duration = self.duration_s
            if not (isinstance(duration, (int, float)) and math.isfinite(duration)
                    and duration > times[-1]):
                raise ConfigError(f"got duration {duration!r} s; expected a duration longer "
                                  f"than the last point at {times[-1]!r} s",
                                  source=self.provenance or None, value=duration)
            period = self.loop_period_s
            if period is not None and abs(duration - period) > 1e-9 * max(1.0, period):
                raise ConfigError(f"got duration {duration!r} s with loop period {period!r} s; "
                                  "expected the two to be equal",
                                  source=self.provenance or None, value=duration)
            object.__setattr__(self, "duration_s", float(duration))

    @classmethod
    def constant(cls, value: float, unit: str = "", provenance: str = "") -> "Series":
        return cls((0.0,), (value,), None, unit, provenance)

    @property
    def is_constant(self) -> bool:
        return len(set(self.values)) == 1

    def _segment(self, t_s: float) -> tuple[float, int]:
        """(start of the current loop period, index of the point holding at ``t_s``; -1
        before the first point). A time within a relative 1e-9 of a breakpoint counts as
        on it, so that float rounding of ``k * period`` never lands just before one."""
        base, local = 0.0, t_s
        period = self.loop_period_s
        tol = 1e-9 * max(1.0, abs(t_s) if period is None else period)
        if period is not None:
            base = math.floor(t_s / period) * period
            local = t_s - base
            if local > period - tol:
                base, local = base + period, 0.0
        return base, bisect.bisect_right(self.times_s, local + tol) - 1

    def value_at(self, t_s: float) -> float:
        """The value holding at time ``t_s`` (s)."""
        _, i = self._segment(t_s)
        return self.values[max(i, 0)]

    def next_change_s(self, t_s: float) -> float:
        """The first breakpoint after ``t_s`` (s); ``inf`` when there is none."""
        base, i = self._segment(t_s)
        if i + 1 < len(self.times_s):
            return base + self.times_s[i + 1]
        if self.loop_period_s is None:
            return math.inf
        return base + self.loop_period_s

    def mean(self, duration_s: float | None = None) -> float:
        """Time-weighted mean over ``[0, duration_s)`` (default: one period, else ``duration_s``
        when set, else up to the last point)."""
        if duration_s is None:
            duration_s = self.loop_period_s or self.duration_s or self.times_s[-1]
            if duration_s == 0:
                return self.values[0]
        total, t = 0.0, 0.0
        while t < duration_s:
            nxt = min(self.next_change_s(t), duration_s)
            total += self.value_at(t) * (nxt - t)
            t = nxt
        return total / duration_s

    def scaled(self, factor: float) -> "Series":
        return Series(self.times_s, tuple(v * factor for v in self.values), self.loop_period_s,
                      self.unit, self.provenance, self.duration_s)


def trace_duration_s(series: Series) -> float:
    """How long ``series`` lasts as a trace (s): its loop period, else its ``duration_s``,
    else its last time plus its last sample interval (for a single point: its time)."""
    if series.loop_period_s is not None:
        return series.loop_period_s
    if series.duration_s is not None:
        return series.duration_s
    times = series.times_s
    if len(times) < 2:
        return times[-1]
    return times[-1] + (times[-1] - times[-2])


def _first_bad_point(times: tuple[float, ...], values: tuple[float, ...]) -> list[int]:
    """The index of the first point with a bad time or value or out of order, if any (the
    checks vectorised: series replayed from long traces have 10^5 points and more)."""
    t = np.asarray(times)
    v = np.asarray(values)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(t) | (t < 0) | ~np.isfinite(v) | (v < 0)
        bad[1:] |= ~(t[1:] > t[:-1])
    return [int(np.argmax(bad))] if bad.any() else []
