"""One seed, split per component with ``numpy.random.SeedSequence``.

A component's stream depends only on the run seed and the component's name, never on
how many other components exist or in what order they were created, so adding a
partitioner or a trace does not shift anybody else's draws, in any process.
"""

from __future__ import annotations

import zlib

import numpy as np


def component_seed(seed: int, *names: str) -> np.random.SeedSequence:
    """The seed sequence of the component called ``names`` (e.g. ``"partitioner", "greedy"``)."""
    key = tuple(zlib.crc32(name.encode("utf-8")) for name in names)
    return np.random.SeedSequence(entropy=seed, spawn_key=key)


def component_rng(seed: int, *names: str) -> np.random.Generator:
    return np.random.default_rng(component_seed(seed, *names))
