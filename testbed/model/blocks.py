"""The units of placement: per layer, one attention block per K/V head, one proj, one ffn.

A block's id is ``L{layer}.attn{index}``, ``L{layer}.proj`` or ``L{layer}.ffn``. Blocks sort
by layer, then attention blocks (by index) before proj before ffn: the order in which a
token flows through a layer.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from testbed.errors import ConfigError, bad_value
from testbed.model.spec import ModelSpec

KINDS = ("attn", "proj", "ffn")
"""Block kinds in the order a token visits them within a layer."""

_RANK = {kind: rank for rank, kind in enumerate(KINDS)}
_ID = re.compile(r"L(\d+)\.(?:attn(\d+)|(proj)|(ffn))")
_ID_EXPECTED = "a block id such as 'L0.attn3', 'L0.proj' or 'L0.ffn'"


@dataclass(frozen=True, order=True)
class Block:
    """One block: its layer (from 0), kind and index (the K/V head, for attention)."""

    layer: int
    _rank: int = field(init=False, repr=False, default=0)  # sorts attn < proj < ffn
    kind: str
    index: int = 0

    def __post_init__(self):
        if self.kind not in _RANK:
            raise bad_value(self.kind, "one of " + ", ".join(KINDS), field="kind")
        for name in ("layer", "index"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise bad_value(value, "an integer >= 0", field=name)
        if self.kind != "attn" and self.index != 0:
            raise bad_value(self.index, f"0 for a {self.kind} block", field="index")
        object.__setattr__(self, "_rank", _RANK[self.kind])

    @property
    def id(self) -> str:
        """Stable name, e.g. ``L3.attn5``, ``L3.proj``, ``L3.ffn``."""
        if self.kind == "attn":
            return f"L{self.layer}.attn{self.index}"
        return f"L{self.layer}.{self.kind}"

    def __str__(self) -> str:
        return self.id


@functools.lru_cache(maxsize=None)
def blocks_of(model: ModelSpec) -> tuple[Block, ...]:
    """All blocks of ``model`` in token-flow order (layer by layer: attn0.., proj, ffn)."""
    blocks = []
    for layer in range(model.n_layers):
        blocks.extend(Block(layer, "attn", i) for i in range(model.attn_blocks_per_layer))
        blocks.append(Block(layer, "proj"))
        blocks.append(Block(layer, "ffn"))
    return tuple(blocks)


def parse_block_id(text: str) -> Block:
    """The block named by ``text`` (the inverse of :attr:`Block.id`)."""
    match = _ID.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ConfigError(f"got {text!r}; expected {_ID_EXPECTED}", value=text,
                          expected=_ID_EXPECTED)
    layer, index, proj, ffn = match.groups()
    if index is not None:
        return Block(int(layer), "attn", int(index))
    return Block(int(layer), proj or ffn)
