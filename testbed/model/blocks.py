"""The units of placement: per layer, one attention block per K/V head, the output
projection (proj) and the FFN, each whole or cut into shards.

A block's id is ``L{layer}.attn{index}``, ``L{layer}.proj`` / ``L{layer}.ffn`` when the model
keeps them whole, or ``L{layer}.proj{shard}`` / ``L{layer}.ffn{shard}`` when its
``proj_shards`` / ``ffn_shards`` cut them (tensor parallelism's slices). Blocks sort by
layer, then attention blocks (by index) before proj shards before ffn shards: the order in
which a token flows through a layer. Shard 0 keeps the plain name (``L0.ffn``, also read as
``L0.ffn0``), so a model's ids do not change when it is cut.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from enum import StrEnum

from testbed.errors import ConfigError, bad_value
from testbed.model.spec import ModelSpec


class BlockKind(StrEnum):
    """What a block computes; a ``str`` too, so that ``"attn"`` in a file or a table is
    the same kind."""

    ATTN = "attn"    # one K/V group: its query heads and their K/V cache
    PROJ = "proj"    # the attention output projection (or a shard of it)
    FFN = "ffn"      # the feed-forward network (or a shard of it)


KINDS = tuple(BlockKind)
"""Block kinds in the order a token visits them within a layer."""
ATTN, PROJ, FFN = KINDS
"""The kinds as plain names: as fast to read as a string in hot loops (an enum member's
attribute lookup costs about 0.1 us on Python 3.11)."""

_RANK = {kind: rank for rank, kind in enumerate(KINDS)}
_ID = re.compile(r"L(\d+)\.(attn|proj|ffn)(\d*)")
_ID_EXPECTED = "a block id such as 'L0.attn3', 'L0.proj', 'L0.ffn' or 'L0.ffn2' (a shard)"


@dataclass(frozen=True, order=True)
class Block:
    """One block: its layer (from 0), kind and index (the K/V head for attention, the
    shard for proj and ffn)."""

    layer: int
    _rank: int = field(init=False, repr=False, default=0)  # sorts attn < proj < ffn
    kind: BlockKind
    index: int = 0

    def __post_init__(self) -> None:
        if self.kind not in _RANK:
            raise bad_value(self.kind, "one of " + ", ".join(KINDS), field="kind")
        if type(self.kind) is not BlockKind:         # "attn" given: the kind it names
            object.__setattr__(self, "kind", BlockKind(self.kind))
        for name in ("layer", "index"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise bad_value(value, "an integer >= 0", field=name)
        object.__setattr__(self, "_rank", _RANK[self.kind])

    @property
    def id(self) -> str:
        """Stable name, e.g. ``L3.attn5``, ``L3.proj``, ``L3.ffn``; shards other than the
        first carry their index (``L3.ffn2``)."""
        if self.kind is ATTN or self.index:
            return f"L{self.layer}.{self.kind}{self.index}"
        return f"L{self.layer}.{self.kind}"

    def __str__(self) -> str:
        return self.id


@functools.lru_cache(maxsize=None)
def blocks_of(model: ModelSpec) -> tuple[Block, ...]:
    """All blocks of ``model`` in token-flow order (layer by layer: attn0.., proj shards,
    ffn shards)."""
    blocks: list[Block] = []
    for layer in range(model.n_layers):
        blocks.extend(Block(layer, ATTN, i) for i in range(model.attn_blocks_per_layer))
        blocks.extend(Block(layer, PROJ, i) for i in range(model.proj_shards))
        blocks.extend(Block(layer, FFN, i) for i in range(model.ffn_shards))
    return tuple(blocks)


def parse_block_id(text: str) -> Block:
    """The block named by ``text`` (the inverse of :attr:`Block.id`; ``L0.ffn0`` is shard
    0, the same block as ``L0.ffn``)."""
    match = _ID.fullmatch(text) if isinstance(text, str) else None
    if match is None or (match.group(2) == "attn" and not match.group(3)):
        raise ConfigError(f"got {text!r}; expected {_ID_EXPECTED}", value=text,
                          expected=_ID_EXPECTED)
    layer, kind, index = match.groups()
    return Block(int(layer), BlockKind(kind), int(index or 0))
