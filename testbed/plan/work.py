"""The work of one forward pass (prefill or one decode step), per block kind.

All attention blocks of a model are identical, and so are all proj and all ffn blocks (or
shards), so one :class:`StepWork` holds one :class:`BlockCost` per kind (and per part of an
attention block), the bytes of the hidden state sent into each layer, and the LM head's cost
on the controller. Dataflows size every other message from it (:meth:`StepWork.activation_bytes`).
"""

from __future__ import annotations

from dataclasses import dataclass

from testbed.model.cost import BlockCost, CostModel
from testbed.model.spec import ModelSpec

PREFILL = "prefill"
DECODE = "decode"


@dataclass(frozen=True)
class StepWork:
    """One forward pass: ``seq_len`` positions attended after it, ``generated`` so far."""

    phase: str
    seq_len: int
    generated: int
    attn: BlockCost
    proj: BlockCost
    ffn: BlockCost
    input_bytes: float          # hidden state into each layer's attention devices (bytes)
    output_bytes: float         # last position's hidden state back to the controller (bytes)
    lm_head: BlockCost          # embedding + LM head on the controller
    attn_qkv: BlockCost | None = None    # an attention block's Q/K/V projections
    attn_core: BlockCost | None = None   # its scores and weighted sum over the K/V cache
    positions: int = 1          # sequence positions computed by this pass
    bytes_per_activation: float = 2.0

    def cost(self, kind: str) -> BlockCost:
        """The cost of one block (or part) of ``kind``: attn, attn.qkv, attn.core, proj,
        ffn, lm_head."""
        return getattr(self, _ATTRIBUTE.get(kind, kind))

    def activation_bytes(self, elements_per_position: float) -> float:
        """Bytes of a message carrying ``elements_per_position`` activations for each
        position this pass computes (in the model's activation dtype)."""
        return elements_per_position * self.positions * self.bytes_per_activation


_ATTRIBUTE = {"attn.qkv": "attn_qkv", "attn.core": "attn_core"}


def step_work(cost: CostModel, model: ModelSpec, phase: str, seq_len: int,
              generated: int) -> StepWork:
    """The work of the pass that brings the sequence to ``seq_len`` positions.

    For ``prefill`` ``seq_len`` is the prompt length; for ``decode`` it is the number of
    positions attended by the new token (prompt + tokens so far, itself included).
    """
    names = ("attn", "proj", "ffn", "attn.qkv", "attn.core")
    kinds: list[BlockCost]
    if phase == PREFILL:
        prefill = [cost.prefill_cost(model, kind, seq_len) for kind in names]
        kinds = [k for k in prefill if k is not None]
        if len(kinds) != len(prefill):
            raise ValueError(f"cost preset {cost.name!r} has no prefill pass")
        input_bytes = cost.prefill_input_bytes(model, seq_len)
    elif phase == DECODE:
        kinds = [cost.step_cost(model, kind, seq_len, generated) for kind in names]
        input_bytes = cost.input_bytes(model, seq_len)
    else:
        raise ValueError(f"unknown phase {phase!r}; expected {PREFILL!r} or {DECODE!r}")
    attn, proj, ffn, attn_qkv, attn_core = kinds
    return StepWork(phase, seq_len, generated, attn, proj, ffn, input_bytes=input_bytes,
                    output_bytes=cost.input_bytes(model, seq_len),
                    lm_head=cost.lm_head_cost(model, seq_len), attn_qkv=attn_qkv,
                    attn_core=attn_core, positions=cost.positions(phase, seq_len),
                    bytes_per_activation=model.bytes_per_activation)
