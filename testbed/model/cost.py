"""What one block costs per token: FLOP, bytes read, memory held, bytes sent on.

A :class:`CostModel` turns a :class:`ModelSpec`, a block kind ("attn", "proj", "ffn") and the
sequence length into a :class:`BlockCost`. All attention blocks of a model are identical, and
so are all shards of a proj or an ffn, so costs are asked per kind, not per block: the cost
of ``"proj"`` / ``"ffn"`` is one shard's (the whole block when the model keeps it whole). An
attention block is also asked for in its two parts, for dataflows that run them apart:
``"attn.qkv"`` (its Q/K/V projections: the weights) and ``"attn.core"`` (scores and weighted
sum over its K/V cache). Two presets are registered in ``COST_PRESETS``:

- ``decode`` (default): a K/V-cached decode step, the roofline workload of DESIGN.md §3;
- ``paper``: the seed authors' prototype formulas (PAPER.md), for like-for-like comparison.
"""

from __future__ import annotations

import abc
import functools
import inspect
from dataclasses import dataclass

from testbed.errors import ConfigError, bad_value
from testbed.model.spec import ModelSpec
from testbed.registry import Registry

__all__ = ["BlockCost", "CostModel", "DecodeCost", "PaperCost", "COST_PRESETS",
           "get_cost_model", "kv_bytes_per_token", "total_weight_bytes"]

_KINDS_EXPECTED = "one of attn, attn.qkv, attn.core, proj, ffn"
KINDS = ("attn", "attn.qkv", "attn.core", "proj", "ffn")


@dataclass(frozen=True)
class BlockCost:
    """Cost of one block for one pass. FLOP in FLOP, everything else in bytes.

    ``flops``: arithmetic work. ``bytes_read``: bytes moved from memory (the memory side of
    the roofline). ``weight_bytes``, ``kv_bytes`` (cache held after the pass, the positions
    in use) and ``activation_bytes`` (working activations): memory held.
    ``kv_reserved_bytes``: cache memory allocated beyond the positions in use (a
    preallocated cache), held but never sent. ``output_bytes``: what the block sends to the
    next block.
    """

    flops: float
    bytes_read: float
    weight_bytes: float
    kv_bytes: float
    activation_bytes: float
    output_bytes: float
    kv_reserved_bytes: float = 0.0

    @property
    def memory_bytes(self) -> float:
        """Memory held on the device: weights + K/V cache (reserved part included) +
        activations (bytes)."""
        return self.weight_bytes + self.kv_bytes + self.kv_reserved_bytes + \
            self.activation_bytes

    @property
    def state_bytes(self) -> float:
        """What moving the block sends, weights aside: its K/V rows in use and its
        activations (bytes)."""
        return self.kv_bytes + self.activation_bytes

    def scaled(self, factor: float) -> "BlockCost":
        """This cost for ``factor`` times the work (a shard is ``1 / shards`` of a block)."""
        if factor == 1:
            return self
        return BlockCost(*(factor * getattr(self, f) for f in _FIELDS))


ZERO_COST = BlockCost(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
_FIELDS = ("flops", "bytes_read", "weight_bytes", "kv_bytes", "activation_bytes",
           "output_bytes", "kv_reserved_bytes")


def _check_length(value: int, name: str, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise bad_value(value, f"an integer >= {minimum}", field=name)


class CostModel(abc.ABC):
    """Per-block cost formulas; one subclass per preset, registered in ``COST_PRESETS``."""

    name: str = ""

    @abc.abstractmethod
    def step_cost(self, model: ModelSpec, kind: str, seq_len: int, generated: int) -> BlockCost:
        """One decode step of one block of ``kind``; ``seq_len`` positions including the
        token being processed, ``generated`` tokens generated so far. ``kv_bytes`` is the
        cache held after the step."""

    @abc.abstractmethod
    def prefill_cost(self, model: ModelSpec, kind: str, prompt_len: int) -> BlockCost | None:
        """All ``prompt_len`` prompt tokens of one block at once; None if no prefill."""

    @abc.abstractmethod
    def input_bytes(self, model: ModelSpec, seq_len: int) -> float:
        """Bytes of hidden state sent into a layer, to each device hosting its attention."""

    @abc.abstractmethod
    def prefill_input_bytes(self, model: ModelSpec, prompt_len: int) -> float:
        """Bytes of hidden state sent into a layer during the prefill pass."""

    @abc.abstractmethod
    def lm_head_cost(self, model: ModelSpec, seq_len: int) -> BlockCost:
        """Embedding lookup + LM head on the controller for one decode step."""

    @abc.abstractmethod
    def positions(self, phase: str, seq_len: int) -> int:
        """Sequence positions one pass computes (its activations per hidden state)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


COST_PRESETS: Registry[type[CostModel]] = Registry("cost preset")


# --- decode: K/V-cached decode roofline (DESIGN.md §3) ------------------------------------

def _reserved_kv(model: ModelSpec, seq_len: int) -> float:
    """Cache bytes one attention block holds beyond ``seq_len`` positions (preallocated)."""
    if model.kv_prealloc_tokens is None or model.kv_prealloc_tokens <= seq_len:
        return 0.0
    return 2.0 * (model.kv_prealloc_tokens - seq_len) * model.head_dim * model.bytes_per_kv


def _shard(model: ModelSpec, kind: str) -> float:
    return 1.0 / (model.proj_shards if kind == "proj" else model.ffn_shards)


@functools.lru_cache(maxsize=1 << 16)
def _decode_step(model: ModelSpec, kind: str, seq_len: int) -> BlockCost:
    d, hd, q = model.d_model, model.head_dim, model.group_size
    b_w, b_kv, b_a = model.bytes_per_weight, model.bytes_per_kv, model.bytes_per_activation
    if kind == "attn.qkv":
        weights = d * hd * (q + 2) * b_w            # W_q for q heads, W_k, W_v
        return BlockCost(flops=float(2 * d * hd * (q + 2)), bytes_read=weights,
                         weight_bytes=weights, kv_bytes=0.0, activation_bytes=d * b_a,
                         output_bytes=(q + 2) * hd * b_a)
    if kind == "attn.core":
        kv = 2 * seq_len * hd * b_kv                # K and V rows of all positions
        return BlockCost(flops=float(4 * seq_len * hd * q), bytes_read=kv, weight_bytes=0.0,
                         kv_bytes=kv, activation_bytes=q * hd * b_a, output_bytes=q * hd * b_a,
                         kv_reserved_bytes=_reserved_kv(model, seq_len))
    if kind == "attn":
        qkv, core = _decode_step(model, "attn.qkv", seq_len), \
            _decode_step(model, "attn.core", seq_len)
        return BlockCost(flops=qkv.flops + core.flops, bytes_read=qkv.bytes_read + core.bytes_read,
                         weight_bytes=qkv.weight_bytes, kv_bytes=core.kv_bytes,
                         activation_bytes=qkv.activation_bytes + core.activation_bytes,
                         output_bytes=core.output_bytes,
                         kv_reserved_bytes=core.kv_reserved_bytes)
    if kind == "proj":
        width = model.n_heads * hd                  # concatenated head outputs
        weights = width * d * b_w
        return BlockCost(flops=float(2 * width * d), bytes_read=weights, weight_bytes=weights,
                         kv_bytes=0.0, activation_bytes=(width + d) * b_a,
                         output_bytes=d * b_a).scaled(_shard(model, kind))
    if kind == "ffn":
        k, f = model.ffn_matrices, model.ffn_dim
        weights = k * d * f * b_w
        return BlockCost(flops=float(2 * k * d * f), bytes_read=weights, weight_bytes=weights,
                         kv_bytes=0.0, activation_bytes=(2 * d + f) * b_a,
                         output_bytes=d * b_a).scaled(_shard(model, kind))
    raise bad_value(kind, _KINDS_EXPECTED, field="kind")


@COST_PRESETS.register("decode")
class DecodeCost(CostModel):
    """K/V-cached decode: each step reads all weights and the block's whole K/V cache.

    Per step of one attention block with ``q`` query heads sharing one K/V head:
    FLOP ``2*D*hd*(q+2) + 4*L*hd*q``; weights ``D*hd*(q+2)`` elements; cache ``2*L*hd``
    elements; output ``q*hd`` activations. Its parts: ``attn.qkv`` (the projections: the
    first FLOP term, the weights, output ``(q+2)*hd``) and ``attn.core`` (the second term,
    the cache). proj: ``2*(H*hd)*D`` FLOP, ``(H*hd)*D`` weights. ffn: ``2*k*D*F`` FLOP,
    ``k*D*F`` weights (k = 2 or 3); activations held ``2*D + F`` (input, hidden, output).
    A shard of proj or ffn costs its share of all but the output (``D`` partial sums).
    Biases, norms and the residual adds are not modelled.
    """

    name = "decode"

    def step_cost(self, model: ModelSpec, kind: str, seq_len: int, generated: int) -> BlockCost:
        if seq_len < 1:
            _check_length(seq_len, "seq_len", 1)
        return _decode_step(model, kind, seq_len)

    def prefill_cost(self, model: ModelSpec, kind: str, prompt_len: int) -> BlockCost:
        """Causal prefill of ``prompt_len`` tokens: FLOP = sum of the per-token decode FLOP
        over positions 1..P; weights are read once; the cache of P positions is written."""
        _check_length(prompt_len, "prompt_len", 1)
        return _decode_prefill(model, kind, prompt_len)

    def input_bytes(self, model: ModelSpec, seq_len: int) -> float:
        """One hidden state: ``D`` activations (bytes)."""
        return model.d_model * model.bytes_per_activation

    def positions(self, phase: str, seq_len: int) -> int:
        """One decode step computes one position; prefill all ``seq_len`` of the prompt."""
        return seq_len if phase == "prefill" else 1

    def prefill_input_bytes(self, model: ModelSpec, prompt_len: int) -> float:
        """``P`` hidden states: ``P*D`` activations (bytes)."""
        return prompt_len * model.d_model * model.bytes_per_activation

    def lm_head_cost(self, model: ModelSpec, seq_len: int) -> BlockCost:
        """LM head matvec (``2*D*V`` FLOP, reads ``V*D`` weights). ``weight_bytes`` also
        counts the embedding table as a second ``V*D`` matrix in ``embedding_dtype``: tied
        embeddings are not modelled. The embedding lookup reads one row, which is
        neglected."""
        d, v = model.d_model, model.vocab_size
        head = v * d * model.bytes_per_weight
        table = v * d * model.bytes_per_embedding
        return BlockCost(flops=float(2 * d * v), bytes_read=head, weight_bytes=head + table,
                         kv_bytes=0.0, activation_bytes=(d + v) * model.bytes_per_activation,
                         output_bytes=0.0)


@functools.lru_cache(maxsize=1 << 12)
def _decode_prefill(model: ModelSpec, kind: str, p: int) -> BlockCost:
    """Causal prefill of ``p`` tokens (see :meth:`DecodeCost.prefill_cost`)."""
    one = _decode_step(model, kind, 1)
    if kind in ("attn", "attn.core"):
        hd, q = model.head_dim, model.group_size
        kv = 2 * p * hd * model.bytes_per_kv
        flops = 4 * hd * q * p * (p + 1) / 2
        if kind == "attn":
            flops += p * 2 * model.d_model * hd * (q + 2)
        return BlockCost(flops=float(flops), bytes_read=one.weight_bytes + kv,
                         weight_bytes=one.weight_bytes, kv_bytes=kv,
                         activation_bytes=p * one.activation_bytes,
                         output_bytes=p * one.output_bytes,
                         kv_reserved_bytes=_reserved_kv(model, p))
    return BlockCost(flops=p * one.flops, bytes_read=one.weight_bytes,
                     weight_bytes=one.weight_bytes, kv_bytes=0.0,
                     activation_bytes=p * one.activation_bytes,
                     output_bytes=p * one.output_bytes)


# --- paper: the seed authors' prototype formulas (PAPER.md) -------------------------------

@functools.lru_cache(maxsize=1 << 16)
def _paper_step(model: ModelSpec, kind: str, seq_len: int, generated: int,
                ffn_flop_factor: float) -> BlockCost:
    big_d, d, q, n = model.d_model, model.head_dim, model.group_size, seq_len
    b_w, b_kv, b_a = model.bytes_per_weight, model.bytes_per_kv, model.bytes_per_activation
    if kind == "attn":
        return BlockCost(flops=float((q + 2) * n * big_d * d + q * n * n * d),
                         bytes_read=0.0, weight_bytes=(q + 2) * big_d * d * b_w,
                         kv_bytes=generated * big_d * b_kv,
                         activation_bytes=(q + 2) * n * d * b_a, output_bytes=q * n * d * b_a)
    if kind == "attn.qkv":
        return BlockCost(flops=float((q + 2) * n * big_d * d), bytes_read=0.0,
                         weight_bytes=(q + 2) * big_d * d * b_w, kv_bytes=0.0,
                         activation_bytes=(q + 2) * n * d * b_a,
                         output_bytes=(q + 2) * n * d * b_a)
    if kind == "attn.core":
        return BlockCost(flops=float(q * n * n * d), bytes_read=0.0, weight_bytes=0.0,
                         kv_bytes=generated * big_d * b_kv, activation_bytes=0.0,
                         output_bytes=q * n * d * b_a)
    if kind == "proj":
        return BlockCost(flops=float(n * big_d * big_d), bytes_read=0.0, weight_bytes=0.0,
                         kv_bytes=0.0, activation_bytes=n * big_d * b_a,
                         output_bytes=n * big_d * b_a).scaled(_shard(model, kind))
    if kind == "ffn":
        return BlockCost(flops=ffn_flop_factor * n * big_d * big_d, bytes_read=0.0,
                         weight_bytes=0.0, kv_bytes=0.0, activation_bytes=4 * n * big_d * b_a,
                         output_bytes=n * big_d * b_a).scaled(_shard(model, kind))
    raise bad_value(kind, _KINDS_EXPECTED, field="kind")


@COST_PRESETS.register("paper")
class PaperCost(CostModel):
    """The prototype's single-layer formulas: the whole sequence is recomputed every step.

    With D = d_model, d = head_dim (the paper's D/H), L = seq_len, t = generated, per head:
    FLOP ``3*L*D*d + L^2*d``; memory ``3*L*d`` activations + ``3*D*d`` weights + ``t*D``
    cache elements; output ``L*d``. proj: FLOP ``L*D^2``, ``L*D`` activations, output
    ``L*D``. ffn: FLOP ``ffn_flop_factor*L*D^2`` (8.0; the prototype later used 0.8),
    ``4*L*D`` activations, output ``L*D``. proj and ffn hold no weights, nothing is read
    from memory (``bytes_read`` = 0: delay is FLOP / compute), no transfer into the heads,
    no prefill, no LM head. For GQA (an extension; the paper has MHA only) one attention
    block of ``q`` query heads counts ``q + 2`` where the paper has 3 (Q/K/V weights and
    activations), ``q`` times its attention FLOP and output, and one ``t*D`` cache per
    K/V group; for q = 1 this is exactly the paper's head.
    """

    name = "paper"

    def __init__(self, ffn_flop_factor: float = 8.0):
        if (not isinstance(ffn_flop_factor, (int, float)) or isinstance(ffn_flop_factor, bool)
                or not ffn_flop_factor > 0):
            raise bad_value(ffn_flop_factor, "a positive number", field="ffn_flop_factor")
        self.ffn_flop_factor = float(ffn_flop_factor)

    def step_cost(self, model: ModelSpec, kind: str, seq_len: int, generated: int) -> BlockCost:
        if seq_len < 1 or generated < 0:
            _check_length(seq_len, "seq_len", 1)
            _check_length(generated, "generated", 0)
        return _paper_step(model, kind, seq_len, generated, self.ffn_flop_factor)

    def prefill_cost(self, model: ModelSpec, kind: str, prompt_len: int) -> None:
        return None

    def input_bytes(self, model: ModelSpec, seq_len: int) -> float:
        return 0.0

    def prefill_input_bytes(self, model: ModelSpec, prompt_len: int) -> float:
        return 0.0

    def lm_head_cost(self, model: ModelSpec, seq_len: int) -> BlockCost:
        return ZERO_COST

    def positions(self, phase: str, seq_len: int) -> int:
        """The prototype recomputes all ``seq_len`` positions every step."""
        return seq_len

    def __repr__(self) -> str:
        return f"PaperCost(ffn_flop_factor={self.ffn_flop_factor!r})"


# --- lookup and helpers ----------------------------------------------------------------------

def get_cost_model(name: str = "decode", **params: object) -> CostModel:
    """The cost preset ``name`` built with ``params`` (e.g. ``ffn_flop_factor=0.8``)."""
    cls = COST_PRESETS.get(name, field="cost")
    accepted = [p for p in inspect.signature(cls).parameters]
    for key in params:
        if key not in accepted:
            raise ConfigError(f"got unknown parameter {key!r} for cost preset {name!r}; "
                              f"expected {', '.join(accepted) or 'no parameters'}",
                              field=f"cost.{key}", value=key)
    return cls(**params)


def kv_bytes_per_token(model: ModelSpec) -> float:
    """K/V cache bytes added per token over all layers: ``2*layers*kv_heads*hd*b_kv``."""
    return 2.0 * model.n_layers * model.n_kv_heads * model.head_dim * model.bytes_per_kv


def total_weight_bytes(model: ModelSpec, cost: CostModel | None = None) -> float:
    """Bytes of all weights: every block of every layer plus the LM head and embeddings."""
    cost = cost if cost is not None else DecodeCost()
    per_layer = (model.attn_blocks_per_layer * cost.step_cost(model, "attn", 1, 0).weight_bytes
                 + model.proj_shards * cost.step_cost(model, "proj", 1, 0).weight_bytes
                 + model.ffn_shards * cost.step_cost(model, "ffn", 1, 0).weight_bytes)
    return model.n_layers * per_layer + cost.lm_head_cost(model, 1).weight_bytes
