"""The shape of a decoder-only Transformer: layers, widths, heads, FFN kind, precision.

A :class:`ModelSpec` is immutable, hashable and validated on construction. Sizes are counts
(layers, heads, elements). Precision is a named dtype per tensor class
(:mod:`testbed.model.dtypes`): ``weight_dtype``, ``kv_dtype``, ``activation_dtype`` (what
travels between devices) and ``embedding_dtype`` (the token embedding table; the weight
dtype unless given); ``bytes_per_*`` are derived from them (bytes per stored element,
block scales included).

Two fields describe how the model is *deployed* rather than its architecture:

- ``proj_shards`` / ``ffn_shards``: each layer's output projection and FFN are cut into
  this many equal shards, each a block that can be placed on its own device (tensor
  parallelism's column/row slices); 1 (default) keeps them whole;
- ``kv_prealloc_tokens``: the K/V cache is allocated for this many positions up front (as
  runtimes that preallocate the maximum context do), which decides what fits in memory;
  None (default) holds only the positions in use.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from testbed.errors import ConfigError, bad_value
from testbed.model.dtypes import DTYPES, get_dtype

FFN_MATRICES = {"gelu-mlp": 2, "swiglu": 3}
"""FFN kind -> number of d_model x ffn_dim weight matrices (up/down, or gate/up/down)."""

_COUNT_FIELDS = ("n_layers", "d_model", "n_heads", "n_kv_heads", "head_dim", "ffn_dim",
                 "vocab_size", "max_position")
_DTYPE_FIELDS = ("weight_dtype", "kv_dtype", "activation_dtype")
_DERIVED = {"bytes_per_weight": "weight_dtype", "bytes_per_kv": "kv_dtype",
            "bytes_per_activation": "activation_dtype"}


def _is_positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _is_positive_number(value: object) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)


@dataclass(frozen=True)
class ModelSpec:
    """One model's architecture and precision; counts are dimensionless."""

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
    weight_dtype: str = "f16"
    kv_dtype: str = "f16"
    activation_dtype: str = "f16"
    params_billion: float | None = None
    embedding_dtype: str | None = None
    proj_shards: int = 1
    ffn_shards: int = 1
    kv_prealloc_tokens: int | None = None

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
        for name in _DTYPE_FIELDS + (("embedding_dtype",) if self.embedding_dtype is not None
                                     else ()):
            object.__setattr__(self, name, get_dtype(getattr(self, name), field=name).name)
        for name, width, what in (("proj_shards", self.d_model, "d_model"),
                                  ("ffn_shards", self.ffn_dim, "ffn_dim")):
            value = getattr(self, name)
            if not _is_positive_int(value) or width % value:
                raise bad_value(value, f"a positive divisor of {what}={width}", field=name)
        if self.kv_prealloc_tokens is not None and not _is_positive_int(self.kv_prealloc_tokens):
            raise bad_value(self.kv_prealloc_tokens, "a positive integer or nothing",
                            field="kv_prealloc_tokens")
        if self.params_billion is not None:
            if not _is_positive_number(self.params_billion):
                raise bad_value(self.params_billion, "a positive number or nothing",
                                field="params_billion")
            object.__setattr__(self, "params_billion", float(self.params_billion))

    @property
    def bytes_per_weight(self) -> float:
        """Bytes per stored weight (scales of block formats included)."""
        return DTYPES[self.weight_dtype].bytes_per_element

    @property
    def bytes_per_kv(self) -> float:
        """Bytes per stored K/V cache element."""
        return DTYPES[self.kv_dtype].bytes_per_element

    @property
    def bytes_per_activation(self) -> float:
        """Bytes per activation sent between devices (the transfer buffer's dtype)."""
        return DTYPES[self.activation_dtype].bytes_per_element

    @property
    def bytes_per_embedding(self) -> float:
        """Bytes per element of the token embedding table."""
        return DTYPES[self.embedding_dtype or self.weight_dtype].bytes_per_element

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
    def blocks_per_layer(self) -> int:
        """Placeable blocks per layer: attention blocks, proj shards and ffn shards."""
        return self.n_kv_heads + self.proj_shards + self.ffn_shards

    @property
    def is_gqa(self) -> bool:
        """True for grouped-query or multi-query attention (fewer K/V heads than heads)."""
        return self.n_kv_heads < self.n_heads

    def with_overrides(self, **fields: Any) -> "ModelSpec":
        """A validated copy with some fields replaced, e.g. ``weight_dtype="q4_0"``."""
        known = {f.name for f in dataclasses.fields(self)}
        for name in fields:
            if name in _DERIVED:
                raise ConfigError(f"got {name!r}, which follows from the dtype; set "
                                  f"{_DERIVED[name]} instead (e.g. q4_0, q8_0, f16)",
                                  field=name, value=name)
            if name not in known:
                raise ConfigError(f"got unknown model field {name!r}; expected one of "
                                  + ", ".join(f.name for f in dataclasses.fields(self)),
                                  field=name, value=name)
        return dataclasses.replace(self, **fields)
