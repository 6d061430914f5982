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

import functools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

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


def _combined(parts: np.ndarray) -> list[BlockCost]:
    """``parts[request, kind, field]`` summed over requests, weights counted once."""
    total = parts.sum(axis=0)
    weights, read = parts[:, :, _WEIGHT], parts[:, :, _READ]
    shared = np.minimum(read, weights)
    total[:, _READ] = shared.max(axis=0) + (read - shared).sum(axis=0)
    total[:, _WEIGHT] = weights.max(axis=0)
    return [BlockCost(*map(float, row)) for row in total]


_WEIGHT, _READ = _FIELDS.index("weight_bytes"), _FIELDS.index("bytes_read")
_PARTS = ("attn", "proj", "ffn", "attn.qkv", "attn.core", "lm_head")


@functools.lru_cache(maxsize=1 << 14)
def _item(cost: CostModel, model: ModelSpec, item: PassItem) -> tuple[StepWork, np.ndarray,
                                                                      np.ndarray]:
    """An item's work, its costs as ``[kind, field]`` and its ``(input, output) bytes``."""
    work = item_work(cost, model, item)
    table = np.array([[getattr(work.cost(k), f) for f in _FIELDS] for k in _PARTS])
    return work, table, np.array([work.input_bytes, work.output_bytes])


def batch_work(cost: CostModel, model: ModelSpec, items: Sequence[PassItem]) -> StepWork:
    """The pass over ``items`` (one per request in the batch) as one :class:`StepWork`.

    ``phase`` is ``prefill`` or ``decode`` when every item is, else ``mixed``;
    ``seq_len`` is the positions cached over all requests after the pass (what the K/V
    caches hold); ``positions`` the positions computed.
    """
    if not items:
        raise ValueError("a pass needs at least one request")
    if len(items) == 1:
        return _item(cost, model, items[0])[0]
    entries = [_item(cost, model, item) for item in items]
    parts = _combined(np.stack([e[1] for e in entries]))
    input_bytes, output_bytes = np.sum([e[2] for e in entries], axis=0)
    phases = {PREFILL if item.prefill else DECODE for item in items}
    first = entries[0][0]
    return StepWork(
        phases.pop() if len(phases) == 1 else MIXED,
        seq_len=sum(item.seq_len for item in items), generated=0,
        attn=parts[0], proj=parts[1], ffn=parts[2],
        input_bytes=float(input_bytes), output_bytes=float(output_bytes),
        lm_head=parts[5], attn_qkv=parts[3], attn_core=parts[4],
        positions=sum(e[0].positions for e in entries),
        bytes_per_activation=first.bytes_per_activation)
