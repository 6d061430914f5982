"""``tensor_parallel``: Megatron-style head and column/row shards with collectives.

Per layer (Shoeybi et al., "Megatron-LM", 2019, §3): every device of the layer holds the
full hidden state; each attention host computes its heads (attention blocks) and the proj
shards of those heads (W_o split by rows) give partial sums of the output, which an
**all-reduce** over the proj hosts adds up; each ffn host then runs its shard (W_up/W_gate
by columns, W_down by rows) on the full input, and a second all-reduce over the ffn hosts
gives the layer's output on all of them. Devices that need the hidden state and did not
take part in the all-reduce (the next layer's other hosts, the controller at the end)
receive it from the first participant.

Attention outputs whose proj shard sits elsewhere (a placement that does not align heads
with proj shards) are sent there first, as ``head_level`` does. The collective algorithm is
an option: ``ring`` (default), ``tree`` or ``star`` (:mod:`.collectives`); the hidden state
enters layer 0 from the controller by the same algorithm's broadcast.
"""

from __future__ import annotations

from testbed.dataflows.base import DATAFLOWS, Dataflow
from testbed.dataflows.collectives import all_reduce, broadcast, check_algorithm
from testbed.plan.graph import GraphBuilder, GraphTemplate
from testbed.plan.placement import Placement

HIDDEN = (("hidden", 1),)


@DATAFLOWS.register("tensor_parallel")
class TensorParallel(Dataflow):
    """Head and proj/ffn shards per device, all-reduce after attention and after FFN."""

    name = "tensor_parallel"

    def __init__(self, collective: str = "ring"):
        super().__init__()
        self.collective = check_algorithm(collective)

    @property
    def options(self) -> dict:
        return {"collective": self.collective}

    def build(self, placement: Placement, controller: str) -> GraphTemplate:
        model = placement.model
        g = GraphBuilder(self.name, controller)
        groups, n_proj = model.attn_blocks_per_layer, model.proj_shards
        holders: dict[str, object] = {controller: None}   # device -> task giving it the input
        for layer in placement.layers:
            index = layer.layer
            self._deliver(g, holders, [d for d, _ in layer.attn_hosts], index)
            proj_hosts = layer.proj_hosts
            at_proj: dict[str, list] = {device: [] for device, _ in proj_hosts}
            for device, n in layer.attn_hosts:
                done = g.compute(device, "attn", (("attn", n),), holders[device], layer=index,
                                 blocks=n)
                g.hold(device, "attn", n)
                mine = [k for k, d in enumerate(layer.attn_devices) if d == device]
                for target, _ in proj_hosts:
                    wanted = [k for k in mine
                              if layer.proj_devices[k * n_proj // groups] == target]
                    if wanted:
                        sent = g.transfer(device, target, "attn_out",
                                          (("attn.out", len(wanted)),), done, layer=index)
                        at_proj[target].append(sent if sent is not None else done)
            proj_devices = [d for d, _ in proj_hosts]
            partial = []
            for device, k in proj_hosts:
                partial.append(g.compute(device, "proj", (("proj", k),), at_proj[device],
                                         layer=index, blocks=k))
                g.hold(device, "proj", k)
            summed = all_reduce(g, self.collective, proj_devices, partial, HIDDEN, layer=index)
            holders = dict(zip(proj_devices, summed))
            ffn_devices = [d for d, _ in layer.ffn_hosts]
            self._deliver(g, holders, ffn_devices, index)
            partial = []
            for device, k in layer.ffn_hosts:
                partial.append(g.compute(device, "ffn", (("ffn", k),), holders[device],
                                         layer=index, blocks=k))
                g.hold(device, "ffn", k)
            summed = all_reduce(g, self.collective, ffn_devices, partial, HIDDEN, layer=index)
            holders = dict(zip(ffn_devices, summed))
        end = model.n_layers
        if controller not in holders:
            first = next(iter(holders))
            holders[controller] = g.transfer(first, controller, "output", (("output", 1),),
                                             holders[first], layer=end)
        g.compute(controller, "lm_head", (("lm_head", 1),), holders[controller], layer=end)
        return g.finish()

    def _deliver(self, g: GraphBuilder, holders: dict, devices: list[str], layer: int) -> None:
        """Make every device of ``devices`` hold the hidden state: from the first current
        holder, by the collective's broadcast over those that lack it."""
        missing = [d for d in devices if d not in holders]
        if not missing:
            return
        first = next(iter(holders))
        received = broadcast(g, self.collective, [first] + missing, holders[first], HIDDEN,
                             layer=layer, kind="input")
        for device, task in zip(missing, received[1:]):
            holders[device] = task
