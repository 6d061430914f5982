"""``layer_pipeline``: each device runs a contiguous range of whole layers (EdgeShard,
Galaxy's pipeline stages, llama.cpp RPC).

The hidden state enters the first stage from the controller; a stage runs all its layers
one after another (one computation: the sum of its blocks' rooflines) and passes the hidden
state on to the next stage; after the last stage it returns to the controller for the LM
head. A placement fits when every layer sits wholly on one device (its attention blocks,
proj and ffn); a device may hold several ranges.
"""

from __future__ import annotations

from testbed.dataflows.base import DATAFLOWS, Dataflow, require
from testbed.plan.graph import GraphBuilder, GraphTemplate
from testbed.plan.placement import Placement


@DATAFLOWS.register("layer_pipeline")
class LayerPipeline(Dataflow):
    """Whole layers per device; one computation per run of consecutive layers."""

    name = "layer_pipeline"

    def build(self, placement: Placement, controller: str) -> GraphTemplate:
        model = placement.model
        stages: list[tuple[str, int, int]] = []        # (device, first layer, layers)
        for layer in placement.layers:
            devices = layer.devices
            require(len(devices) == 1,
                    f"layer_pipeline runs whole layers on one device; layer {layer.layer} "
                    f"is split over {', '.join(devices)} (use head_level or tensor_parallel)")
            if stages and stages[-1][0] == devices[0]:
                device, first, count = stages[-1]
                stages[-1] = (device, first, count + 1)
            else:
                stages.append((devices[0], layer.layer, 1))
        g = GraphBuilder(self.name, controller)
        per_layer = (("attn", model.attn_blocks_per_layer), ("proj", model.proj_shards),
                     ("ffn", model.ffn_shards))
        src, done = controller, None
        for device, first, count in stages:
            arrived = g.transfer(src, device, "input", (("hidden", 1),), done, layer=first)
            recipe = tuple((term, n * count) for term, n in per_layer)
            done = g.compute(device, "stage", recipe, g.after(arrived, done), layer=first,
                             blocks=model.blocks_per_layer * count)
            for term, n in per_layer:
                g.hold(device, term, n * count)
            src = device
        back = g.transfer(src, controller, "output", (("output", 1),), done,
                          layer=model.n_layers)
        g.compute(controller, "lm_head", (("lm_head", 1),), g.after(back, done),
                  layer=model.n_layers)
        return g.finish()
