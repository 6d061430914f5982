"""``root_sync``: distributed-llama v0.1.0's dataflow, every sync through the root.

Read from its source (github.com/b4rtaz/distributed-llama at tag v0.1.0,
``src/transformer-tasks.cpp`` and ``src/transformer.cpp``). N devices each hold one
*slice*: a 1/N share of the rows of every weight matrix (Q, K, V, W_o, W_1, W_3, W_2). The
root (slice 0, the node started with ``inference``: here the controller) also holds the
norms, the token embeddings, the LM head and the K/V caches of **all** heads, and runs the
attention itself. Per layer the root synchronises 8 times (``inferenceTasks``):

1. ``syncRmsAtt``: root -> each worker: the normalised hidden state (D values);
2. each slice computes its rows of Q, K and V (``qkv``); ``syncQkv``: each worker -> root:
   its q, k and v slices (three reads: D/N + 2 kvD/N values);
3. the root runs multi-head attention over its caches (``multiheadAtt``);
   ``syncMultiheadAtt``: root -> each worker: the attention output (D values);
4. each slice computes its rows of W_o (``att``); ``syncAtt``: worker -> root (D/N);
5. the root adds the residual and normalises; ``syncRmfFfn``: root -> each worker (D);
6. each slice computes its rows of W_1 and W_3 and the SwiGLU (``ffn``); ``syncFfnA``:
   worker -> root: its slice of the hidden layer (F/N);
7. ``syncFfnB``: root -> each worker: the other N-1 slices of the hidden layer, one message
   each (the all-gather goes through the root);
8. each slice computes its rows of W_2 (``ffn2``); ``syncFfn2``: worker -> root (D/N);
   the root adds the residual.

After the last layer the root runs the LM head. Every message is in the activation dtype
(its ``--buffer-float-type``, Q80 in the published runs). With Llama 2 7B this gives per
token at the root 590 kB sent / 522 kB received at 2 devices, 2046 / 784 at 4, 5094 / 914
at 8 (kB = 1024 B), the figures its README publishes (tested).

In placement terms: the model is cut into ``proj_shards = ffn_shards = N`` shards; slice
``j`` is the device of proj shard ``j`` and must also hold ffn shard ``j`` and the
attention blocks of its head range (their Q/K/V rows: an attention block that moves takes
only its weights along; its cache stays on the root). The root's norms, residual adds,
RoPE and (de)quantisation are a few thousand operations per layer and are not modelled.
"""

from __future__ import annotations

from testbed.model.blocks import ATTN
from testbed.dataflows.base import DATAFLOWS, Dataflow, require
from testbed.plan.graph import GraphBuilder, GraphTemplate
from testbed.plan.placement import Placement


@DATAFLOWS.register("root_sync")
class RootSync(Dataflow):
    """distributed-llama v0.1.0: sliced matmuls on every device, all syncs via the root."""

    name = "root_sync"

    def moving_part(self, kind: str) -> str:
        return "attn.qkv" if kind == ATTN else kind

    def slices(self, placement: Placement, controller: str) -> list[str]:
        """The device of each slice (slice 0: the root), checked against the pattern."""
        model = placement.model
        n = model.proj_shards
        require(model.ffn_shards == n,
                f"root_sync cuts proj and ffn into one shard per device; got proj_shards="
                f"{n} and ffn_shards={model.ffn_shards}")
        groups = model.attn_blocks_per_layer
        require(groups % n == 0, f"root_sync needs the {groups} attention blocks of a layer "
                                 f"to split evenly over {n} slices")
        first = placement.layers[0]
        slices = list(first.proj_devices)
        require(len(set(slices)) == n,
                f"root_sync needs each slice on its own device; proj shards are on "
                f"{', '.join(slices)}")
        require(slices[0] == controller,
                f"root_sync runs slice 0 on the root, the controller {controller!r}; "
                f"proj shard 0 is on {slices[0]!r}")
        per = groups // n
        for layer in placement.layers:
            require(list(layer.proj_devices) == slices and list(layer.ffn_devices) == slices,
                    f"root_sync needs the same slices in every layer; layer {layer.layer} "
                    "differs")
            expected = tuple(d for d in slices for _ in range(per))
            require(layer.attn_devices == expected,
                    f"root_sync puts the attention blocks of slice j's head range on slice j's "
                    f"device; layer {layer.layer} does not")
        return slices

    def build(self, placement: Placement, controller: str) -> GraphTemplate:
        model = placement.model
        slices = self.slices(placement, controller)
        n = len(slices)
        root, workers = slices[0], slices[1:]
        per = model.attn_blocks_per_layer // n
        d_model = model.n_heads * model.head_dim       # the attention output's width (xb)
        width, hidden = model.d_model, model.ffn_dim
        k = model.ffn_matrices
        g = GraphBuilder(self.name, controller)

        def to_workers(kind, elements, deps, layer, messages=1):
            return [g.transfer(root, w, kind, (("act", elements),), deps, layer=layer,
                               messages=messages) for w in workers]

        def to_root(kind, recipe, deps, layer, messages=1):
            return [g.transfer(w, root, kind, recipe, deps[j + 1], layer=layer,
                               messages=messages) for j, w in enumerate(workers)]

        def on_slices(kind, recipe, deps, layer, blocks=1):
            return [g.compute(device, kind, recipe, deps[j], layer=layer, blocks=blocks)
                    for j, device in enumerate(slices)]

        ready = None                                   # the root's hidden state
        for layer in range(model.n_layers):
            sent = to_workers("sync_xb", width, ready, layer)                     # 1
            qkv = on_slices("attn.qkv", (("attn.qkv", per),), [ready] + sent, layer, per)
            got = to_root("sync_qkv", (("attn.qkv.out", per),), qkv, layer, messages=3)
            core = g.compute(root, "attn.core", (("attn.core", model.attn_blocks_per_layer),),
                             g.after(qkv[0], got), layer=layer,                   # 3
                             blocks=model.attn_blocks_per_layer)
            sent = to_workers("sync_att", d_model, core, layer)
            proj = on_slices("proj", (("proj", 1),), [core] + sent, layer)        # 4
            got = to_root("sync_proj", (("act", width / n),), proj, layer)
            residual = g.after(proj[0], got)
            sent = to_workers("sync_ffn_in", width, residual, layer)              # 5
            up = on_slices("ffn.up", (("ffn", (k - 1) / k),), [residual] + sent, layer)  # 6
            got = to_root("sync_ffn_a", (("act", hidden / n),), up, layer)
            gathered = g.after(up[0], got)
            sent = to_workers("sync_ffn_b", hidden / n * (n - 1), gathered, layer,   # 7
                              messages=n - 1)
            down = on_slices("ffn.down", (("ffn", 1 / k),), [gathered] + sent, layer)  # 8
            got = to_root("sync_ffn2", (("act", width / n),), down, layer)
            ready = g.compute(root, "merge", (("none", 1),), g.after(down[0], got),
                              layer=layer, blocks=0)
        g.compute(root, "lm_head", (("lm_head", 1),), ready, layer=model.n_layers)
        groups = model.attn_blocks_per_layer * model.n_layers
        g.hold(root, "attn.core", groups)
        for device in slices:
            g.hold(device, "attn.qkv", per * model.n_layers)
            g.hold(device, "proj", model.n_layers)
            g.hold(device, "ffn", model.n_layers)
        return g.finish()
