"""ModelSpec validation and derived sizes; blocks, their order and their ids."""

import dataclasses

import pytest
from hypothesis import given, strategies as st

from testbed.errors import ConfigError
from testbed.model import Block, ModelSpec, blocks_of, parse_block_id

BASE = dict(name="toy", n_layers=2, d_model=64, n_heads=8, n_kv_heads=2, head_dim=8,
            ffn_dim=256, ffn_kind="swiglu", vocab_size=100, max_position=128)


def toy(**changes) -> ModelSpec:
    return ModelSpec(**{**BASE, **changes})


def test_field_order_is_the_published_one():
    assert [f.name for f in dataclasses.fields(ModelSpec)] == [
        "name", "n_layers", "d_model", "n_heads", "n_kv_heads", "head_dim", "ffn_dim",
        "ffn_kind", "vocab_size", "max_position", "weight_dtype", "kv_dtype",
        "activation_dtype", "params_billion", "embedding_dtype", "proj_shards", "ffn_shards",
        "kv_prealloc_tokens"]


def test_derived_sizes_of_a_gqa_model():
    spec = toy()
    assert (spec.group_size, spec.attn_blocks_per_layer, spec.ffn_matrices) == (4, 2, 3)
    assert spec.is_gqa
    mha = toy(n_kv_heads=8, ffn_kind="gelu-mlp")
    assert (mha.group_size, mha.attn_blocks_per_layer, mha.ffn_matrices) == (1, 8, 2)
    assert not mha.is_gqa


@pytest.mark.parametrize("field, value", [
    ("n_layers", 0), ("d_model", -1), ("n_heads", 8.0), ("head_dim", True),
    ("ffn_dim", "256"), ("vocab_size", None), ("max_position", 0),
    ("n_kv_heads", 3),                       # does not divide 8 heads
    ("ffn_kind", "relu"), ("weight_dtype", "q3"), ("kv_dtype", 2),
    ("activation_dtype", None), ("embedding_dtype", "float"), ("params_billion", -1.0),
    ("name", ""), ("ffn_shards", 5), ("proj_shards", 0), ("kv_prealloc_tokens", 0),
])
def test_bad_fields_are_one_line_errors_naming_the_field(field, value):
    with pytest.raises(ConfigError) as caught:
        toy(**{field: value})
    error = caught.value
    assert error.field == field
    assert str(error).startswith(f"{field}: got ")
    assert "; expected " in str(error) and "\n" not in str(error)


def test_dtypes_are_named_and_give_bytes_per_element_with_block_scales():
    spec = toy(weight_dtype="Q4_0", kv_dtype="f32", activation_dtype="q8_0")
    assert spec.weight_dtype == "q4_0" and hash(spec) == hash(toy(weight_dtype="q4_0",
                                                                   kv_dtype="f32",
                                                                   activation_dtype="q8_0"))
    assert spec.bytes_per_weight == 18 / 32      # fp16 scale + 32 nibbles
    assert spec.bytes_per_activation == 34 / 32  # fp16 scale + 32 int8
    assert spec.bytes_per_kv == 4.0
    assert spec.bytes_per_embedding == spec.bytes_per_weight
    assert toy(embedding_dtype="f32").bytes_per_embedding == 4.0


def test_with_overrides_validates_and_keeps_the_rest():
    spec = toy()
    quantised = spec.with_overrides(weight_dtype="int8")
    assert quantised.bytes_per_weight == 1.0 and quantised.d_model == spec.d_model
    with pytest.raises(ConfigError, match="set weight_dtype instead"):
        spec.with_overrides(bytes_per_weight=0.5)
    with pytest.raises(ConfigError, match="n_kv_heads"):
        spec.with_overrides(n_kv_heads=5)
    with pytest.raises(ConfigError, match="unknown model field 'width'"):
        spec.with_overrides(width=3)


# --- blocks ---------------------------------------------------------------------------------

def test_blocks_follow_the_token_flow_layer_by_layer():
    ids = [b.id for b in blocks_of(toy())]
    assert ids == ["L0.attn0", "L0.attn1", "L0.proj", "L0.ffn",
                   "L1.attn0", "L1.attn1", "L1.proj", "L1.ffn"]


def test_blocks_sort_attention_then_proj_then_ffn():
    blocks = list(blocks_of(toy(n_kv_heads=4)))
    assert sorted(reversed(blocks)) == blocks
    assert Block(0, "ffn") > Block(0, "proj") > Block(0, "attn", 3) > Block(0, "attn", 0)
    assert Block(1, "attn", 0) > Block(0, "ffn")


def test_blocks_of_is_cached_per_model():
    assert blocks_of(toy()) is blocks_of(toy())
    assert len(blocks_of(toy(n_layers=3, n_kv_heads=8))) == 3 * (8 + 2)


@given(layer=st.integers(0, 500), index=st.integers(0, 200),
       kind=st.sampled_from(["attn", "proj", "ffn"]))
def test_block_ids_round_trip(layer, index, kind):
    block = Block(layer, kind, index)           # index: the K/V group, or the shard
    assert parse_block_id(block.id) == block
    assert parse_block_id(block.id).id == block.id == str(block)


def test_shards_are_blocks_named_by_index_with_shard_zero_keeping_the_plain_name():
    spec = toy(n_layers=2, n_kv_heads=2, proj_shards=2, ffn_shards=4)
    ids = [b.id for b in blocks_of(spec)][:8]
    assert ids == ["L0.attn0", "L0.attn1", "L0.proj", "L0.proj1", "L0.ffn", "L0.ffn1",
                   "L0.ffn2", "L0.ffn3"]
    assert len(blocks_of(spec)) == 2 * spec.blocks_per_layer == 2 * (2 + 2 + 4)
    assert parse_block_id("L0.ffn0") == Block(0, "ffn")


@pytest.mark.parametrize("text", ["", "L0", "L0.attn", "l0.proj", "L-1.ffn", "L0.proj-1",
                                  "L0.ffnx", "0.attn1", " L0.proj", "L0.mlp", None, 3])
def test_bad_block_ids_say_the_expected_form(text):
    with pytest.raises(ConfigError, match="expected a block id such as 'L0.attn3'"):
        parse_block_id(text)


@pytest.mark.parametrize("args, field", [((0, "mlp"), "kind"), ((-1, "ffn"), "layer"),
                                         ((0, "proj", -2), "index")])
def test_bad_blocks_are_rejected(args, field):
    with pytest.raises(ConfigError) as caught:
        Block(*args)
    assert caught.value.field == field
