"""``static``: the first decision of a base partitioner (``resource_aware``), then frozen.

Later decisions return the current placement unchanged, even when the K/V caches outgrow a
device's memory (the engine records that as out-of-memory); the one exception is a device
hosting blocks that is no longer a candidate (down): then the base partitioner re-decides
from the current state, and that placement is frozen in turn.
"""

from __future__ import annotations

from testbed.errors import ConfigError
from testbed.partition.base import PARTITIONERS, Partitioner
from testbed.plan.observation import Observation
from testbed.plan.placement import Placement


@PARTITIONERS.register("static")
class Static(Partitioner):
    """Options: ``base`` (a registered partitioner name) and ``base_options`` (its options)."""

    name = "static"

    def __init__(self, seed=None, base: str = "resource_aware",
                 base_options: dict | None = None):
        super().__init__(seed)
        if base == self.name:
            raise ConfigError("got 'static' as its own base; expected another partitioner",
                              field="base", value=base)
        if base_options is not None and not isinstance(base_options, dict):
            raise ConfigError(f"got {base_options!r}; expected a mapping of options",
                              field="base_options", value=base_options)
        try:
            self.base = PARTITIONERS.get(base, field="base")(seed=seed, **(base_options or {}))
        except TypeError as error:
            raise ConfigError(f"bad base_options for {base!r}: {error}",
                              field="base_options", value=base_options) from None

    def decide(self, obs: Observation) -> Placement:
        if obs.placement is not None and set(obs.placement.devices) <= set(obs.candidates):
            return obs.placement
        return self.base.decide(obs)
