"""The shape of a decoder-only Transformer: layers, widths, heads, FFN kind, element sizes.

A :class:`ModelSpec` is immutable, hashable and validated on construction. Sizes are counts
(layers, heads, elements); ``bytes_per_*`` are bytes per stored element (2.0 for fp16/bf16).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from testbed.errors import ConfigError, bad_value

FFN_MATRICES = {"gelu-mlp": 2, "swiglu": 3}
"""FFN kind -> number of d_model x ffn_dim weight matrices (up/down, or gate/up/down)."""

_COUNT_FIELDS = ("n_layers", "d_model", "n_heads", "n_kv_heads", "head_dim", "ffn_dim",
                 "vocab_size", "max_position")
_BYTES_FIELDS = ("bytes_per_weight", "bytes_per_kv", "bytes_per_activation")


def _is_positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _is_positive_number(value: object) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)


@dataclass(frozen=True)
class ModelSpec:
    """One model's architecture; counts are dimensionless, ``bytes_per_*`` in bytes."""

    name: str
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    ffn_dim: int
    ffn_kind: str
    vocab_size: int
    max_position: int
    bytes_per_weight: float = 2.0
    bytes_per_kv: float = 2.0
    bytes_per_activation: float = 2.0
    params_billion: float | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip():
            raise bad_value(self.name, "a non-empty model name", field="name")
        for name in _COUNT_FIELDS:
            value = getattr(self, name)
            if not _is_positive_int(value):
                raise bad_value(value, "a positive integer", field=name)
        if self.n_heads % self.n_kv_heads:
            raise bad_value(self.n_kv_heads, f"a divisor of n_heads={self.n_heads}",
                            field="n_kv_heads")
        if self.ffn_kind not in FFN_MATRICES:
            raise bad_value(self.ffn_kind, "one of " + ", ".join(sorted(FFN_MATRICES)),
                            field="ffn_kind")
        for name in _BYTES_FIELDS:
            value = getattr(self, name)
            if not _is_positive_number(value):
                raise bad_value(value, "a positive number of bytes per element", field=name)
            object.__setattr__(self, name, float(value))
        if self.params_billion is not None:
            if not _is_positive_number(self.params_billion):
                raise bad_value(self.params_billion, "a positive number or nothing",
                                field="params_billion")
            object.__setattr__(self, "params_billion", float(self.params_billion))

    @property
    def group_size(self) -> int:
        """Query heads sharing one K/V head (1 for plain multi-head attention)."""
        return self.n_heads // self.n_kv_heads

    @property
    def ffn_matrices(self) -> int:
        """Weight matrices in the FFN: 2 for gelu-mlp, 3 for swiglu."""
        return FFN_MATRICES[self.ffn_kind]

    @property
    def attn_blocks_per_layer(self) -> int:
        """Attention blocks per layer: one per K/V head (its query group and its cache)."""
        return self.n_kv_heads

    @property
    def is_gqa(self) -> bool:
        """True for grouped-query or multi-query attention (fewer K/V heads than heads)."""
        return self.n_kv_heads < self.n_heads

    def with_overrides(self, **fields: object) -> "ModelSpec":
        """A validated copy with some fields replaced, e.g. ``bytes_per_weight=0.5``."""
        known = {f.name for f in dataclasses.fields(self)}
        for name in fields:
            if name not in known:
                raise ConfigError(f"got unknown model field {name!r}; expected one of "
                                  + ", ".join(f.name for f in dataclasses.fields(self)),
                                  field=name, value=name)
        return dataclasses.replace(self, **fields)
