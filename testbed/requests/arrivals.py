"""Synthetic requests: Poisson arrivals and seeded length distributions.

A length distribution declares its analytic mean (before clipping to ``[low, high]``), so
tests can compare the empirical mean with it, as Ciw's distributions do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from testbed.requests.spec import RequestSpec

DISTRIBUTIONS = ("constant", "uniform", "lognormal")


@dataclass(frozen=True)
class LengthDist:
    """Token counts: ``constant`` (``value``), ``uniform`` integers in ``[low, high]``,
    or ``lognormal`` with mean ``value`` and shape ``sigma`` (of the underlying normal),
    rounded and clipped to ``[low, high]``."""

    kind: str = "constant"
    value: float = 128.0
    sigma: float = 0.0
    low: int = 1
    high: int = 1 << 20

    def __post_init__(self):
        if self.kind not in DISTRIBUTIONS:
            raise ValueError(f"distribution {self.kind!r}; expected one of {DISTRIBUTIONS}")
        if not 1 <= self.low <= self.high:
            raise ValueError(f"bounds [{self.low}, {self.high}]; expected 1 <= low <= high")

    @property
    def mean(self) -> float:
        """The analytic mean (tokens), clipping aside."""
        if self.kind == "uniform":
            return (self.low + self.high) / 2.0
        return float(self.value)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` lengths (integers >= 1)."""
        if self.kind == "constant":
            values = np.full(n, round(self.value), dtype=float)
        elif self.kind == "uniform":
            values = rng.integers(self.low, self.high + 1, size=n).astype(float)
        else:
            mu = math.log(self.value) - self.sigma ** 2 / 2.0   # so that the mean is value
            values = np.rint(rng.lognormal(mu, self.sigma, size=n))
        return np.clip(values, self.low, self.high).astype(int)


def poisson_requests(rate_per_s: float, count: int, prompt: LengthDist, output: LengthDist,
                     rng: np.random.Generator, *, start_s: float = 0.0) -> list[RequestSpec]:
    """``count`` requests arriving as a Poisson process of ``rate_per_s`` (exponential
    gaps, the first after one gap from ``start_s``) with lengths drawn from ``prompt``
    and ``output``."""
    if not (rate_per_s > 0 and math.isfinite(rate_per_s)):
        raise ValueError(f"rate {rate_per_s!r} /s; expected a positive number")
    gaps = rng.exponential(1.0 / rate_per_s, size=count)
    arrivals = start_s + np.cumsum(gaps)
    prompts, outputs = prompt.draw(rng, count), output.draw(rng, count)
    return [RequestSpec(i, float(t), int(p), int(o))
            for i, (t, p, o) in enumerate(zip(arrivals, prompts, outputs))]
