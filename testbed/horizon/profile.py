"""A rate known over the whole future, and when a given amount of work is through.

A :class:`RateProfile` is a piecewise-constant rate (bit/s of a route, or progress per
second of a job on a device) built lazily from two functions of time: the rate holding
at ``t`` and the next time it changes. Work started at ``t0`` at that varying rate is
through when the rate's integral from ``t0`` reaches the amount, so the end is a
non-decreasing function of the start (FIFO: starting later never ends sooner), which is
what makes the horizon optimum's shortest path exact (:mod:`testbed.horizon.optimum`).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable

import numpy as np

from testbed.sim.compute import STALLED_AFTER_S

#: Nothing is followed beyond this time (s): work not through by then never ends (inf).
HORIZON_LIMIT_S = 1e7


class RateProfile:
    """``rate_at(t)`` (units per s, finite, >= 0) changing at ``next_change(t)`` (inf: never
    again)."""

    def __init__(self, rate_at: Callable[[float], float],
                 next_change: Callable[[float], float]):
        self._rate_at, self._next_change = rate_at, next_change
        self.times = [0.0]                  # segment starts (s)
        self.rates = [float(rate_at(0.0))]  # rate of each segment
        self.cum = [0.0]                    # integral of the rate up to each start
        self._next = float(next_change(0.0))
        self._arrays: tuple | None = None
        self._zero_since = 0.0 if self.rates[0] == 0 else None   # start of the last 0 run

    def _grow(self) -> bool:
        """Add the next segment; False when the rate never changes again, or has been 0
        for :data:`~testbed.sim.compute.STALLED_AFTER_S` (a looping trace that is 0
        throughout would otherwise be followed to the limit)."""
        t = self._next
        if not t < HORIZON_LIMIT_S:
            return False
        if self._zero_since is not None and t - self._zero_since > STALLED_AFTER_S:
            self._next = math.inf          # stalled: the last rate (0) holds for ever
            return False
        self.cum.append(self.cum[-1] + self.rates[-1] * (t - self.times[-1]))
        self.times.append(t)
        self.rates.append(float(self._rate_at(t)))
        if self.rates[-1] != 0:
            self._zero_since = None
        elif self._zero_since is None:
            self._zero_since = t
        self._next = float(self._next_change(t))
        if self._next <= t:
            raise ValueError(f"the rate's next change {self._next!r} s is not after {t!r} s")
        return True

    def integral(self, t_s: float) -> float:
        """The rate's integral from 0 to ``t_s``."""
        while self._next <= t_s and self._grow():
            pass
        i = bisect.bisect_right(self.times, t_s) - 1
        return self.cum[i] + self.rates[i] * (t_s - self.times[i])

    def end_s(self, start_s: float, amount: float) -> float:
        """When ``amount`` of work started at ``start_s`` is through (s; inf: never)."""
        if amount <= 0:
            return start_s
        times, rates, cum = self.times, self.rates, self.cum
        goal = self.integral(start_s) + amount
        i = bisect.bisect_right(times, start_s) - 1
        t, done = start_s, goal - amount
        while True:
            if i + 1 == len(times) and not self._grow():   # the last rate holds for ever
                return t + (goal - done) / rates[i] if rates[i] > 0 else math.inf
            if cum[i + 1] >= goal:    # (a rate of 0 here: rounding put the goal at done)
                return t + (goal - done) / rates[i] if rates[i] > 0 else t
            t, done, i = times[i + 1], cum[i + 1], i + 1

    def ends_s(self, start_s: float, amounts: np.ndarray) -> np.ndarray:
        """:meth:`end_s` for each of ``amounts`` started together at ``start_s``."""
        amounts = np.asarray(amounts, dtype=float)
        if amounts.size == 0:
            return amounts.copy()
        self.end_s(start_s, float(amounts.max()))    # follow the rate far enough
        if self._arrays is None or len(self._arrays[0]) != len(self.times):
            self._arrays = (np.asarray(self.times), np.asarray(self.rates),
                            np.asarray(self.cum))
        times, rates, cum = self._arrays
        first = bisect.bisect_right(self.times, start_s) - 1
        before = self.integral(start_s)
        goal = before + amounts
        # the segment where each goal is reached: the last start with less done than it
        i = np.maximum(np.searchsorted(cum, goal, side="left") - 1, first)
        base = np.where(i == first, start_s, times[i])
        done = np.where(i == first, before, cum[i])
        rate = rates[i]
        with np.errstate(divide="ignore", invalid="ignore"):
            end = np.where(rate > 0, base + (goal - done) / rate,
                           np.where(goal <= done, base, math.inf))
        return np.where(amounts > 0, end, start_s)
