"""``greedy``: first fit, each block on the first candidate (in device order) with room."""

from __future__ import annotations

from testbed.partition.base import PARTITIONERS, Infeasible, MemoryBook, Partitioner
from testbed.plan.observation import Observation
from testbed.plan.placement import Placement


@PARTITIONERS.register("greedy")
class Greedy(Partitioner):
    """Blocks in token-flow order, each to the first candidate whose free memory (bytes,
    at the end of the decision interval) still holds it; re-decided at every decision."""

    name = "greedy"

    def decide(self, obs: Observation) -> Placement:
        book = MemoryBook(obs)
        if not obs.candidates:
            raise Infeasible("no device is up to host blocks")
        assignment = []
        for block in obs.blocks:
            device = next((d for d in obs.candidates if book.fits(d, block)), None)
            if device is None:
                raise Infeasible(f"no device has room for block {block.id} "
                                 f"({book.need(block) / 2**20:.1f} MiB)")
            book.take(device, block)
            assignment.append(device)
        return Placement(obs.model, assignment)
