"""The work of one forward pass (prefill or one decode step), per block kind.

All attention blocks of a model are identical, and so are all proj and all ffn blocks, so
one :class:`StepWork` holds one :class:`BlockCost` per kind, the bytes of the hidden state
sent into each layer, and the LM head's cost on the controller.
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

    def cost(self, kind: str) -> BlockCost:
        return getattr(self, kind)


def step_work(cost: CostModel, model: ModelSpec, phase: str, seq_len: int,
              generated: int) -> StepWork:
    """The work of the pass that brings the sequence to ``seq_len`` positions.

    For ``prefill`` ``seq_len`` is the prompt length; for ``decode`` it is the number of
    positions attended by the new token (prompt + tokens so far, itself included).
    """
    if phase == PREFILL:
        kinds = [cost.prefill_cost(model, kind, seq_len) for kind in ("attn", "proj", "ffn")]
        if any(k is None for k in kinds):
            raise ValueError(f"cost preset {cost.name!r} has no prefill pass")
        input_bytes = cost.prefill_input_bytes(model, seq_len)
    elif phase == DECODE:
        kinds = [cost.step_cost(model, kind, seq_len, generated) for kind in ("attn", "proj", "ffn")]
        input_bytes = cost.input_bytes(model, seq_len)
    else:
        raise ValueError(f"unknown phase {phase!r}; expected {PREFILL!r} or {DECODE!r}")
    return StepWork(phase, seq_len, generated, *kinds, input_bytes=input_bytes,
                    output_bytes=cost.input_bytes(model, seq_len),
                    lm_head=cost.lm_head_cost(model, seq_len))
