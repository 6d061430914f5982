"""Named numeric formats (dtypes) and their storage size.

A tensor class (weights, K/V cache, activations, embeddings) is stored in one named dtype.
Plain formats store each element alone; block-quantised formats (ggml's ``q8_0``,
``q4_0``, k-quants, ...) store blocks of ``block_elements`` values with their scales in
``block_bytes`` bytes, so their size per element includes the scales: ``q4_0`` is 18
bytes per 32 weights (0.5625 B), ``q8_0`` 34 bytes per 32 values (1.0625 B).

Sources: the block layouts of ggml (``ggml/src/ggml-common.h``: ``block_q4_0`` = fp16
scale + 16 bytes of nibbles, ``block_q8_0`` = fp16 scale + 32 int8, k-quants over
super-blocks of 256) and distributed-llama v0.1.0 ``src/quants.hpp`` (``BlockQ40``,
``BlockQ80``: the same layouts).
"""

from __future__ import annotations

from dataclasses import dataclass

from testbed.errors import ConfigError, close_matches


@dataclass(frozen=True)
class Dtype:
    """A storage format: ``block_bytes`` bytes hold ``block_elements`` values."""

    name: str
    block_elements: int
    block_bytes: int
    description: str

    @property
    def bytes_per_element(self) -> float:
        """Average bytes per stored value, block scales included."""
        return self.block_bytes / self.block_elements

    def size_bytes(self, elements: float) -> float:
        """Bytes taken by ``elements`` values (fractional blocks counted pro rata)."""
        return elements * self.block_bytes / self.block_elements


_TABLE = (
    Dtype("f32", 1, 4, "IEEE 754 single precision"),
    Dtype("f16", 1, 2, "IEEE 754 half precision"),
    Dtype("bf16", 1, 2, "bfloat16"),
    Dtype("fp8", 1, 1, "8-bit float (E4M3 / E5M2)"),
    Dtype("int8", 1, 1, "8-bit integer, per-tensor or per-channel scale kept apart"),
    Dtype("int4", 2, 1, "4-bit integer, two per byte, scales kept apart"),
    Dtype("q8_0", 32, 34, "ggml: 32 int8 + one fp16 scale"),
    Dtype("q8_1", 32, 36, "ggml: 32 int8 + fp16 scale and fp16 sum"),
    Dtype("q5_0", 32, 22, "ggml: 32 5-bit + one fp16 scale"),
    Dtype("q5_1", 32, 24, "ggml: 32 5-bit + fp16 scale and fp16 minimum"),
    Dtype("q4_0", 32, 18, "ggml: 32 4-bit + one fp16 scale"),
    Dtype("q4_1", 32, 20, "ggml: 32 4-bit + fp16 scale and fp16 minimum"),
    Dtype("q6_k", 256, 210, "ggml k-quant: 6.5625 bits per weight"),
    Dtype("q5_k", 256, 176, "ggml k-quant: 5.5 bits per weight"),
    Dtype("q4_k", 256, 144, "ggml k-quant: 4.5 bits per weight"),
    Dtype("q3_k", 256, 110, "ggml k-quant: 3.4375 bits per weight"),
    Dtype("q2_k", 256, 84, "ggml k-quant: 2.625 bits per weight"),
)

DTYPES: dict[str, Dtype] = {d.name: d for d in _TABLE}
"""Every known dtype by name."""


def get_dtype(name: object, *, field: str | None = None) -> Dtype:
    """The dtype called ``name`` (e.g. ``"q4_0"``); a one-line error lists the known ones."""
    if isinstance(name, str) and name.strip().lower() in DTYPES:
        return DTYPES[name.strip().lower()]
    raise ConfigError(f"got {name!r}; {close_matches(str(name), DTYPES)}expected a dtype: "
                      + ", ".join(DTYPES), field=field, value=name,
                      expected="a dtype name")
