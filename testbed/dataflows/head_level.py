"""``head_level``: the paper's dataflow, attention block by attention block.

Per layer the hidden state goes from where the previous layer left it (the controller for
layer 0) to every device hosting an attention block of the layer; each device runs its
attention blocks one after another and sends their outputs to the proj device; proj runs
and sends its output to the ffn device; ffn runs. After the last layer the hidden state
returns to the controller for the LM head. A transfer within one device is free.

Shards (a model with ``proj_shards`` / ``ffn_shards`` > 1) follow the same pattern with
partial sums: proj shard ``j`` takes the outputs of the attention blocks of its head range
(row-parallel W_o) and every ffn host receives the partial output of every proj host; the
next layer's attention hosts (or the controller) receive the partial output of every ffn
host and add them. Shards on one device run as one computation and send one message.

``per_block=True`` is the reference form: one computation and one output message per
attention block (the totals are the same; a test checks the times are too).
"""

from __future__ import annotations

from collections.abc import Sequence

from testbed.dataflows.base import DATAFLOWS, Dataflow
from testbed.errors import bad_value
from testbed.plan.graph import GraphBuilder, GraphTemplate
from testbed.plan.placement import Placement


@DATAFLOWS.register("head_level")
class HeadLevel(Dataflow):
    """The paper's attention-head-level pattern (the default)."""

    name = "head_level"

    def __init__(self, per_block: bool = False):
        super().__init__()
        if not isinstance(per_block, bool):
            raise bad_value(per_block, "true or false", field="per_block")
        self.per_block = per_block

    @property
    def options(self) -> dict:
        return {"per_block": True} if self.per_block else {}

    def build(self, placement: Placement, controller: str) -> GraphTemplate:
        model = placement.model
        g = GraphBuilder(self.name, controller)
        groups, n_proj = model.attn_blocks_per_layer, model.proj_shards
        # the layer's input: (device holding it, task that produced it); one full hidden
        # state from the controller, then the partial sums of the ffn hosts
        producers: Sequence[tuple[str, int | None]] = [(controller, None)]
        for layer in placement.layers:
            index = layer.layer
            proj_hosts = layer.proj_hosts
            # attention: per host, the inputs, its blocks, its outputs to the proj hosts
            at_proj: dict[str, list] = {device: [] for device, _ in proj_hosts}
            for device, n in layer.attn_hosts:
                arrived = [g.transfer(src, device, "input", (("hidden", 1),), done, layer=index)
                           for src, done in producers]
                arrived = [a if a is not None else done
                           for a, (_, done) in zip(arrived, producers)]
                mine = [k for k, d in enumerate(layer.attn_devices) if d == device]
                if self.per_block:
                    done = [g.compute(device, "attn", (("attn", 1),), arrived, layer=index)
                            for _ in range(n)]
                else:
                    done = [g.compute(device, "attn", (("attn", n),), arrived, layer=index,
                                      blocks=n)]
                for target, _ in proj_hosts:
                    wanted = [k for k in mine
                              if layer.proj_devices[k * n_proj // groups] == target]
                    if not wanted:
                        continue
                    pieces = len(wanted) if self.per_block else 1
                    for _ in range(pieces):
                        sent = g.transfer(device, target, "attn_out",
                                          (("attn.out", len(wanted) / pieces),), done,
                                          layer=index)
                        at_proj[target].append(sent if sent is not None else done)
                g.hold(device, "attn", n)
            # proj: per host, its shards once its attention outputs are in
            projected = []
            for device, k in proj_hosts:
                projected.append((device, g.compute(device, "proj", (("proj", k),),
                                                    at_proj[device], layer=index, blocks=k)))
                g.hold(device, "proj", k)
            # ffn: per host, the partial outputs of every proj host, then its shards
            produced = []
            for device, k in layer.ffn_hosts:
                arrived = [g.transfer(src, device, "proj_out", (("proj.out", 1),), done,
                                      layer=index) for src, done in projected]
                arrived = [a if a is not None else done
                           for a, (_, done) in zip(arrived, projected)]
                produced.append((device, g.compute(device, "ffn", (("ffn", k),), arrived,
                                                   layer=index, blocks=k)))
                g.hold(device, "ffn", k)
            producers = produced
        back = [g.transfer(src, controller, "output", (("output", 1),), done,
                           layer=model.n_layers) for src, done in producers]
        back = [b if b is not None else done for b, (_, done) in zip(back, producers)]
        g.compute(controller, "lm_head", (("lm_head", 1),), back, layer=model.n_layers)
        return g.finish()
