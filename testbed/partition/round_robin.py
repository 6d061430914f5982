"""``round_robin``: blocks dealt to the candidate devices in turn, skipping full ones."""

from __future__ import annotations

from testbed.partition.base import PARTITIONERS, Infeasible, MemoryBook, Partitioner
from testbed.plan.observation import Observation
from testbed.plan.placement import Placement


@PARTITIONERS.register("round_robin")
class RoundRobin(Partitioner):
    """Block ``i`` goes to the next candidate (in device order) that still has room."""

    name = "round_robin"

    def decide(self, obs: Observation) -> Placement:
        book = MemoryBook(obs)
        devices = list(obs.candidates)
        if not devices:
            raise Infeasible("no device is up to host blocks")
        turn, assignment = 0, []
        for block in obs.blocks:
            for step in range(len(devices)):
                device = devices[(turn + step) % len(devices)]
                if book.fits(device, block):
                    break
            else:
                raise Infeasible(f"no device has room for block {block.id} "
                                 f"({book.need(block) / 2**20:.1f} MiB)")
            book.take(device, block)
            assignment.append(device)
            turn = (turn + step + 1) % len(devices)
        return Placement(obs.model, assignment)
