"""``brute_force``: every block-to-device assignment tried, the cheapest kept.

The reference against which the ``exact`` solver is checked, and the paper's "optimal"
(which enumerated all assignments at every step). Only for tiny instances: the number of
assignments is ``len(candidates) ** len(blocks)``; above ``max_assignments`` it refuses.
Ties go to the first assignment in enumeration order (device order, block order).
"""

from __future__ import annotations

import itertools

from testbed.errors import ConfigError
from testbed.partition.base import PARTITIONERS, Infeasible, Partitioner
from testbed.plan.delay import decision_cost_s
from testbed.plan.observation import Observation
from testbed.plan.placement import Placement


def feasible_memory(obs: Observation, devices: tuple[str, ...]) -> bool:
    """Whether the blocks fit each device's memory (``obs.memory_bytes`` per block)."""
    used: dict[str, float] = {}
    for block, device in zip(obs.blocks, devices):
        used[device] = used.get(device, 0.0) + obs.memory_bytes(block)
    return all(used[d] <= obs.device(d).block_memory_bytes for d in used)


@PARTITIONERS.register("brute_force")
class BruteForce(Partitioner):
    """The minimum of ``decision_cost_s`` over all assignments (tiny instances only)."""

    name = "brute_force"

    def __init__(self, seed=None, include_migration: bool = True,
                 max_assignments: int = 200_000):
        super().__init__(seed)
        self.include_migration = include_migration
        self.max_assignments = max_assignments

    def decide(self, obs: Observation) -> Placement:
        candidates = obs.candidates
        count = len(candidates) ** len(obs.blocks)
        if count > self.max_assignments:
            raise ConfigError(f"brute force would try {count} assignments; expected at most "
                              f"{self.max_assignments} (use the exact solver)",
                              field="partitioners", value=count)
        best, best_cost = None, float("inf")
        for devices in itertools.product(candidates, repeat=len(obs.blocks)):
            if not feasible_memory(obs, devices):
                continue
            placement = Placement(obs.model, devices)
            cost = decision_cost_s(obs, placement, include_migration=self.include_migration)
            if cost < best_cost:
                best, best_cost = placement, cost
        if best is None:
            raise Infeasible(f"no assignment of {len(obs.blocks)} blocks to "
                             f"{len(candidates)} devices fits in memory")
        return best
