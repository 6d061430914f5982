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
        "ffn_kind", "vocab_size", "max_position", "bytes_per_weight", "bytes_per_kv",
        "bytes_per_activation", "params_billion"]


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
    ("ffn_kind", "relu"), ("bytes_per_weight", 0), ("bytes_per_kv", float("nan")),
    ("bytes_per_activation", False), ("params_billion", -1.0), ("name", ""),
])
def test_bad_fields_are_one_line_errors_naming_the_field(field, value):
    with pytest.raises(ConfigError) as caught:
        toy(**{field: value})
    error = caught.value
    assert error.field == field
    assert str(error).startswith(f"{field}: got ")
    assert "; expected " in str(error) and "\n" not in str(error)


def test_bytes_are_stored_as_floats_and_specs_are_hashable():
    spec = toy(bytes_per_weight=1)
    assert isinstance(spec.bytes_per_weight, float)
    assert hash(spec) == hash(toy(bytes_per_weight=1.0))


def test_with_overrides_validates_and_keeps_the_rest():
    spec = toy()
    quantised = spec.with_overrides(bytes_per_weight=0.5)
    assert quantised.bytes_per_weight == 0.5 and quantised.d_model == spec.d_model
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
    block = Block(layer, kind, index if kind == "attn" else 0)
    assert parse_block_id(block.id) == block
    assert parse_block_id(block.id).id == block.id == str(block)


@pytest.mark.parametrize("text", ["", "L0", "L0.attn", "l0.proj", "L-1.ffn", "L0.proj1",
                                  "L0.ffn0", "0.attn1", " L0.proj", "L0.mlp", None, 3])
def test_bad_block_ids_say_the_expected_form(text):
    with pytest.raises(ConfigError, match="expected a block id such as 'L0.attn3'"):
        parse_block_id(text)


@pytest.mark.parametrize("args, field", [((0, "mlp"), "kind"), ((-1, "ffn"), "layer"),
                                         ((0, "proj", 2), "index")])
def test_bad_blocks_are_rejected(args, field):
    with pytest.raises(ConfigError) as caught:
        Block(*args)
    assert caught.value.field == field
