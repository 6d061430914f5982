"""``single_device``: every block on the one device that runs the step fastest and fits."""

from __future__ import annotations

from testbed.model.blocks import blocks_of
from testbed.partition.base import PARTITIONERS, Infeasible, MemoryBook, Partitioner
from testbed.plan.delay import estimate_token_delay_s
from testbed.plan.observation import Observation
from testbed.plan.placement import Placement


@PARTITIONERS.register("single_device")
class SingleDevice(Partitioner):
    """Whole model on one device; keeps its device while it still fits and is up."""

    name = "single_device"

    def decide(self, obs: Observation) -> Placement:
        book = MemoryBook(obs)
        need = book.total_need()
        fitting = [d for d in obs.candidates if book.free[d] >= need]
        if not fitting:
            best = max(obs.candidates, key=lambda d: book.free[d], default=None)
            raise Infeasible(f"no device can hold all of {obs.model.name} "
                             f"({need / 2**30:.2f} GiB); the largest free memory is "
                             f"{(book.free[best] if best else 0) / 2**30:.2f} GiB on {best}")
        if obs.placement is not None:
            current = set(obs.placement.devices)
            if len(current) == 1 and current <= set(fitting):
                return obs.placement
        n = len(blocks_of(obs.model))
        return min((Placement(obs.model, [d] * n) for d in fitting),
                   key=lambda p: estimate_token_delay_s(obs, p))
