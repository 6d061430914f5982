"""Cost presets: closed forms, K/V cache sizes, roofline regime, prefill = sum of decodes."""

import math

import pytest
from hypothesis import given, settings, strategies as st

from testbed.errors import ConfigError
from testbed.model import (
    COST_PRESETS, BlockCost, CostModel, get_cost_model, get_model, kv_bytes_per_token,
    total_weight_bytes,
)
from testbed.model.cost import DecodeCost, PaperCost

KINDS = ("attn", "proj", "ffn")
DECODE = DecodeCost()
PAPER = PaperCost()


def test_registry_holds_both_presets_and_decode_is_the_default():
    assert COST_PRESETS.names() == ["decode", "paper"]
    assert isinstance(get_cost_model(), DecodeCost)
    assert get_cost_model("paper", ffn_flop_factor=0.8).ffn_flop_factor == 0.8
    with pytest.raises(ConfigError, match="unknown cost preset 'roofline'"):
        get_cost_model("roofline")
    with pytest.raises(ConfigError, match="unknown parameter 'ffn_factor'.*ffn_flop_factor"):
        get_cost_model("paper", ffn_factor=1.0)
    with pytest.raises(ConfigError, match="ffn_flop_factor"):
        get_cost_model("paper", ffn_flop_factor=0)


def test_cost_model_is_abstract():
    with pytest.raises(TypeError):
        CostModel()


@pytest.mark.parametrize("preset", COST_PRESETS.names())
def test_every_preset_keeps_the_contract(preset):
    """Finite, non-negative costs; caches and FLOP never shrink as the sequence grows."""
    cost = get_cost_model(preset)
    model = get_model("tinyllama-1.1b")
    for kind in KINDS:
        previous = None
        for seq_len in (1, 2, 17, 300):
            step = cost.step_cost(model, kind, seq_len, seq_len - 1)
            assert isinstance(step, BlockCost)
            values = [step.flops, step.bytes_read, step.weight_bytes, step.kv_bytes,
                      step.activation_bytes, step.output_bytes]
            assert all(math.isfinite(v) and v >= 0 for v in values)
            assert step.memory_bytes == step.weight_bytes + step.kv_bytes + step.activation_bytes
            if previous is not None:
                assert step.flops >= previous.flops and step.kv_bytes >= previous.kv_bytes
            previous = step
        prefill = cost.prefill_cost(model, kind, 8)
        assert prefill is None or isinstance(prefill, BlockCost)
        with pytest.raises(ConfigError, match="kind"):
            cost.step_cost(model, "mlp", 4, 0)
    assert cost.input_bytes(model, 10) >= 0 and cost.prefill_input_bytes(model, 10) >= 0
    assert isinstance(cost.lm_head_cost(model, 10), BlockCost)


# --- decode preset --------------------------------------------------------------------------

@pytest.mark.parametrize("seq_len", [1, 128, 4096])
def test_decode_closed_forms_for_llama_3_8b(seq_len):
    m = get_model("llama-3-8b")          # D 4096, 32 heads, 8 K/V heads of 128, F 14336
    attn = DECODE.step_cost(m, "attn", seq_len, 0)
    assert attn.flops == 2 * 4096 * 128 * (4 + 2) + 4 * seq_len * 128 * 4
    assert attn.weight_bytes == 4096 * 128 * 6 * 2
    assert attn.kv_bytes == 2 * seq_len * 128 * 2
    assert attn.bytes_read == attn.weight_bytes + attn.kv_bytes
    assert attn.output_bytes == 4 * 128 * 2
    proj = DECODE.step_cost(m, "proj", seq_len, 0)
    assert (proj.flops, proj.weight_bytes, proj.bytes_read) == (
        2 * 4096 * 4096, 4096 * 4096 * 2, 4096 * 4096 * 2)
    ffn = DECODE.step_cost(m, "ffn", seq_len, 0)
    assert ffn.flops == 2 * 3 * 4096 * 14336 and ffn.weight_bytes == 3 * 4096 * 14336 * 2
    assert ffn.output_bytes == 4096 * 2 and ffn.kv_bytes == 0
    assert DECODE.input_bytes(m, seq_len) == 4096 * 2


def test_proj_uses_heads_times_head_dim_not_d_model_squared():
    m = get_model("gemma-2-2b")           # 8 heads of 256 = 2048, while D = 2304
    assert DECODE.step_cost(m, "proj", 1, 0).weight_bytes == 2048 * 2304 * 2


@pytest.mark.parametrize("name", ["llama-3-8b", "gpt2-small", "qwen2.5-0.5b"])
@pytest.mark.parametrize("seq_len", [1, 5, 1000])
def test_kv_cache_is_two_rows_per_position_per_kv_head(name, seq_len):
    m = get_model(name).with_overrides(kv_dtype="int8")     # an int8 cache
    per_block = DECODE.step_cost(m, "attn", seq_len, 0).kv_bytes
    assert per_block == 2 * seq_len * m.head_dim * 1.0
    whole_model = per_block * m.attn_blocks_per_layer * m.n_layers
    assert whole_model == seq_len * kv_bytes_per_token(m)


def test_kv_bytes_per_token_of_llama_3_8b():
    assert kv_bytes_per_token(get_model("llama-3-8b")) == 2 * 32 * 8 * 128 * 2 == 131072


def test_decode_is_memory_bound_on_an_edge_device():
    """68 GB/s and 10 TFLOP/s: ridge point ~147 FLOP/byte; decode runs at ~1 FLOP/byte."""
    m = get_model("llama-3.2-1b")
    ridge = 10e12 / 68e9
    for kind in KINDS:
        for seq_len in (1, 512, 8192):
            step = DECODE.step_cost(m, kind, seq_len, 0)
            assert step.flops / step.bytes_read < ridge / 50
    head = DECODE.lm_head_cost(m, 1)
    assert head.flops / head.bytes_read < ridge / 50


def test_lm_head_counts_the_embedding_table_in_memory_only():
    m = get_model("llama-3-8b")
    head = DECODE.lm_head_cost(m, 7)
    assert head.flops == 2 * 4096 * 128256
    assert head.bytes_read == 128256 * 4096 * 2 and head.weight_bytes == 2 * head.bytes_read
    assert head.output_bytes == 0


@settings(max_examples=60, deadline=None)
@given(prompt_len=st.integers(1, 64), kind=st.sampled_from(KINDS),
       name=st.sampled_from(["llama-3.2-1b", "gpt2-small", "gemma-2-2b", "paper-small"]))
def test_prefill_flops_are_the_sum_of_per_token_decode_flops(prompt_len, kind, name):
    m = get_model(name)
    prefill = DECODE.prefill_cost(m, kind, prompt_len)
    per_token = [DECODE.step_cost(m, kind, n, 0) for n in range(1, prompt_len + 1)]
    assert prefill.flops == pytest.approx(sum(s.flops for s in per_token), rel=1e-12)
    last = per_token[-1]
    assert prefill.kv_bytes == last.kv_bytes                     # the cache after P tokens
    assert prefill.weight_bytes == last.weight_bytes
    assert prefill.bytes_read == last.weight_bytes + last.kv_bytes   # weights read once
    assert prefill.output_bytes == prompt_len * last.output_bytes
    assert DECODE.prefill_input_bytes(m, prompt_len) == prompt_len * DECODE.input_bytes(m, 1)


def test_total_weight_bytes_adds_blocks_layers_and_lm_head():
    m = get_model("paper-small")          # one layer, 8 heads of 64, D 512, F 2048
    blocks = 8 * 512 * 64 * 3 + 512 * 512 + 2 * 512 * 2048
    assert total_weight_bytes(m) == (blocks + 2 * 32000 * 512) * 2
    assert total_weight_bytes(m, PAPER) == 8 * 3 * 512 * 64 * 2


# --- paper preset ---------------------------------------------------------------------------

@pytest.mark.parametrize("seq_len, generated", [(16, 0), (100, 84), (531, 19)])
def test_paper_formulas_for_its_medium_model(seq_len, generated):
    m = get_model("paper-medium")          # D 1024, H 16, d 64, b 2
    D, d, L, t, b = 1024, 64, seq_len, generated, 2
    head = PAPER.step_cost(m, "attn", L, t)
    assert head.flops == 3 * L * D * d + L**2 * d
    assert head.memory_bytes == 3 * L * d * b + 3 * D * d * b + t * D * b
    assert head.kv_bytes == t * D * b and head.output_bytes == L * d * b
    proj = PAPER.step_cost(m, "proj", L, t)
    assert (proj.flops, proj.memory_bytes, proj.output_bytes) == (L * D**2, L * D * b, L * D * b)
    ffn = PAPER.step_cost(m, "ffn", L, t)
    assert (ffn.flops, ffn.memory_bytes, ffn.output_bytes) == (8 * L * D**2, 4 * L * D * b,
                                                              L * D * b)
    assert PaperCost(0.8).step_cost(m, "ffn", L, t).flops == pytest.approx(0.8 * L * D**2)
    for kind in KINDS:
        assert PAPER.step_cost(m, kind, L, t).bytes_read == 0


def test_paper_preset_has_no_prefill_no_input_transfer_no_lm_head():
    m = get_model("paper-small")
    assert all(PAPER.prefill_cost(m, kind, 32) is None for kind in KINDS)
    assert PAPER.input_bytes(m, 32) == 0.0 and PAPER.prefill_input_bytes(m, 32) == 0.0
    assert PAPER.lm_head_cost(m, 32).memory_bytes == 0 and PAPER.lm_head_cost(m, 32).flops == 0


def test_paper_cache_grows_by_d_model_per_generated_token():
    m = get_model("paper-large")
    grow = [PAPER.step_cost(m, "attn", 64 + t, t).kv_bytes for t in range(5)]
    assert [b - a for a, b in zip(grow, grow[1:])] == [2048 * 2] * 4


def test_paper_preset_on_gqa_keeps_one_cache_per_kv_group():
    m = get_model("llama-3-8b")            # q = 4 query heads per K/V head
    L, t, D, d = 50, 10, 4096, 128
    block = PAPER.step_cost(m, "attn", L, t)
    assert block.flops == (4 + 2) * L * D * d + 4 * L**2 * d
    assert block.weight_bytes == (4 + 2) * D * d * 2
    assert block.kv_bytes == t * D * 2                       # per K/V group, not x4
    assert block.output_bytes == 4 * L * d * 2


@pytest.mark.parametrize("preset", ["decode", "paper"])
def test_bad_lengths_are_rejected(preset):
    cost = get_cost_model(preset)
    with pytest.raises(ConfigError, match="seq_len"):
        cost.step_cost(get_model("gpt2-small"), "attn", 0, 0)
