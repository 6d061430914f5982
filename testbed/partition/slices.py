"""``slices``: every layer cut evenly over an ordered list of devices (tensor parallelism).

Device ``j`` of ``N`` holds the attention blocks of the ``j``-th share of each layer's heads
and the proj and ffn shards that fall to it (shard ``s`` of ``S`` goes to device
``s * N // S``): the placement Megatron-style tensor parallelism and distributed-llama use,
decided once and kept. ``devices`` lists them in order; a device that cannot hold its slice
(as the dataflow places it) makes the decision infeasible. Without ``devices`` it takes
every candidate in the topology's order, the controller first when it may host blocks
(distributed-llama's root is slice 0), and if their slices do not fit, the fewest devices
with the most memory whose slices do. With ``proj_shards = ffn_shards = N`` each of N
devices holds exactly one shard of each.
"""

from __future__ import annotations

from testbed.model.blocks import ATTN, FFN, PROJ
from testbed.errors import ConfigError
from testbed.partition.base import PARTITIONERS, Infeasible, Partitioner
from testbed.plan.observation import Observation
from testbed.plan.placement import Placement


@PARTITIONERS.register("slices")
class Slices(Partitioner):
    """Each layer split evenly, in order, over ``devices``."""

    name = "slices"

    def __init__(self, seed=None, devices: list[str] | None = None):
        super().__init__(seed)
        if devices is not None and (not isinstance(devices, list) or not devices or
                                    not all(isinstance(d, str) for d in devices) or
                                    len(set(devices)) != len(devices)):
            raise ConfigError(f"got {devices!r}; expected a list of distinct device names",
                              field="devices", value=devices)
        self.devices = devices

    def decide(self, obs: Observation) -> Placement:
        if obs.placement is not None and set(obs.placement.devices) <= set(obs.candidates):
            return obs.placement
        if self.devices is None:
            return self._widest_that_fits(obs)
        devices = self.devices
        unknown = [d for d in devices if d not in obs.candidates]
        if unknown:
            known = {d.name for d in obs.devices}
            if any(d not in known for d in unknown):
                raise ConfigError(f"got device(s) {', '.join(unknown)}; expected devices of "
                                  f"the topology: {', '.join(sorted(known))}", field="devices",
                                  value=unknown)
            raise Infeasible(f"slices: {', '.join(unknown)} cannot host blocks now "
                             "(down, or the controller while controller.hosts_blocks is false)")
        placement = _split(obs, devices)
        short = _overfull(obs, placement)
        if short:
            device, held, room = short
            raise Infeasible(f"slices: {device} would hold {held / 2**30:.2f} GiB of "
                             f"{obs.model.name}'s slice, but has {room / 2**30:.2f} GiB free "
                             "for blocks")
        return placement

    def _widest_that_fits(self, obs: Observation) -> Placement:
        devices = sorted(obs.candidates, key=lambda d: d != obs.controller)
        if not devices:
            raise Infeasible("slices: no device is up to host blocks")
        placement = _split(obs, devices)
        if not _overfull(obs, placement):
            return placement
        roomy = sorted(devices, key=lambda d: -obs.device(d).block_memory_bytes)
        for k in range(len(roomy) - 1, 0, -1):
            chosen = [d for d in devices if d in roomy[:k]]     # keep the topology's order
            placement = _split(obs, chosen)
            if not _overfull(obs, placement):
                return placement
        overfull = _overfull(obs, _split(obs, roomy[:1]))
        assert overfull is not None   # the loop (or, for one device, the first try) saw it
        device, held, room = overfull
        raise Infeasible(f"slices: no set of devices has the memory for an even split of "
                         f"{obs.model.name}; alone, {device} would hold {held / 2**30:.2f} GiB "
                         f"and has {room / 2**30:.2f} GiB free for blocks")


def _split(obs: Observation, devices: list[str]) -> Placement:
    n, model = len(devices), obs.model
    count = {ATTN: model.attn_blocks_per_layer, PROJ: model.proj_shards,
             FFN: model.ffn_shards}
    return Placement(model, [devices[b.index * n // count[b.kind]] for b in obs.blocks])


def _overfull(obs: Observation, placement: Placement) -> tuple[str, float, float] | None:
    """(device, bytes it would hold, bytes it has) for the first device that cannot hold
    its slice, or None."""
    for device, held in obs.memory_by_device(placement).items():
        room = obs.device(device).block_memory_bytes
        if held > room:
            return device, held, room
    return None
