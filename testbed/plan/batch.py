"""The work of one iteration of a batch: several requests in one forward pass.

Continuous batching (Orca, vLLM) runs one forward pass per iteration over every active
request: a request still reading its prompt contributes a prefill chunk (``length``
positions after the ``start`` it has already cached), one that is generating contributes
one decode position. In that pass a device's job for a block reads the block's weights
once and, per request, its K/V cache and its FLOP; activations and messages carry every
position of the pass. :func:`batch_work` builds that pass as one :class:`StepWork`, so
the dataflows, the task graph and every backend run a batch exactly as they run a single
sequence. A batch of one item is the single sequence's own work, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from testbed.model.cost import BlockCost, CostModel
from testbed.model.spec import ModelSpec
from testbed.plan.work import DECODE, PREFILL, StepWork, step_work

MIXED = "mixed"
_KINDS = ("attn", "proj", "ffn", "attn.qkv", "attn.core")
_FIELDS = ("flops", "bytes_read", "weight_bytes", "kv_bytes", "activation_bytes",
           "output_bytes", "kv_reserved_bytes")


@dataclass(frozen=True)
class PassItem:
    """One request's part of a pass: ``length`` positions after ``start`` cached ones.

    A decode item has ``length`` 1 and ``start`` = prompt + tokens generated before it;
    a prefill item (``prefill`` true) reads prompt positions ``start+1 .. start+length``.
    """

    start: int
    length: int = 1
    prefill: bool = False

    @property
    def seq_len(self) -> int:
        """Positions in the request's K/V cache after the pass."""
        return self.start + self.length


def item_work(cost: CostModel, model: ModelSpec, item: PassItem) -> StepWork:
    """The work of one item alone (what a single sequence would run)."""
    if not item.prefill:
        return step_work(cost, model, DECODE, item.seq_len, 0)
    whole = step_work(cost, model, PREFILL, item.seq_len, 0)
    if item.start == 0:
        return whole
    # a later chunk: attention over every cached position, FLOP and activations of its
    # own positions only (the difference of two causal prefills)
    done = step_work(cost, model, PREFILL, item.start, 0)
    parts = {kind: _chunk(whole.cost(kind), done.cost(kind)) for kind in _KINDS}
    return StepWork(PREFILL, item.seq_len, 0, parts["attn"], parts["proj"], parts["ffn"],
                    input_bytes=whole.input_bytes - done.input_bytes,
                    output_bytes=whole.output_bytes, lm_head=whole.lm_head,
                    attn_qkv=parts["attn.qkv"], attn_core=parts["attn.core"],
                    positions=item.length, bytes_per_activation=whole.bytes_per_activation)


def _chunk(whole: BlockCost, done: BlockCost) -> BlockCost:
    return BlockCost(flops=whole.flops - done.flops, bytes_read=whole.bytes_read,
                     weight_bytes=whole.weight_bytes, kv_bytes=whole.kv_bytes,
                     activation_bytes=whole.activation_bytes - done.activation_bytes,
                     output_bytes=whole.output_bytes - done.output_bytes,
                     kv_reserved_bytes=whole.kv_reserved_bytes)


def combine(costs: Sequence[BlockCost]) -> BlockCost:
    """One block's job for several requests: weights held and read once; FLOP, K/V cache,
    activations and output summed (bytes, FLOP)."""
    if len(costs) == 1:
        return costs[0]
    shared = max(min(c.bytes_read, c.weight_bytes) for c in costs)
    total = {f: sum(getattr(c, f) for c in costs) for f in _FIELDS}
    total["weight_bytes"] = max(c.weight_bytes for c in costs)
    total["bytes_read"] = shared + sum(c.bytes_read - min(c.bytes_read, c.weight_bytes)
                                       for c in costs)
    return BlockCost(**total)


def batch_work(cost: CostModel, model: ModelSpec, items: Sequence[PassItem]) -> StepWork:
    """The pass over ``items`` (one per request in the batch) as one :class:`StepWork`.

    ``phase`` is ``prefill`` or ``decode`` when every item is, else ``mixed``;
    ``seq_len`` is the positions cached over all requests after the pass (what the K/V
    caches hold); ``positions`` the positions computed.
    """
    if not items:
        raise ValueError("a pass needs at least one request")
    works = [item_work(cost, model, item) for item in items]
    if len(works) == 1:
        return works[0]
    phases = {w.phase for w in works}
    return StepWork(
        phases.pop() if len(phases) == 1 else MIXED,
        seq_len=sum(w.seq_len for w in works), generated=0,
        attn=combine([w.attn for w in works]), proj=combine([w.proj for w in works]),
        ffn=combine([w.ffn for w in works]),
        input_bytes=sum(w.input_bytes for w in works),
        output_bytes=sum(w.output_bytes for w in works),
        lm_head=combine([w.lm_head for w in works]),
        attn_qkv=combine([w.attn_qkv for w in works]),
        attn_core=combine([w.attn_core for w in works]),
        positions=sum(w.positions for w in works),
        bytes_per_activation=works[0].bytes_per_activation)
