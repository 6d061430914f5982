"""Partitioners that place proj and ffn shards (a model cut for tensor parallelism) keep
the contract on a cut model: every block placed, on candidates, within memory; those that
place whole blocks only are refused at scenario load (tests/test_fidelity.py)."""

from __future__ import annotations

import pytest

from partition_instances import build, used_bytes
from testbed.cluster import make_device
from testbed.errors import ConfigError
from testbed.model import get_cost_model, get_model
from testbed.model.blocks import blocks_of
from testbed.partition import PARTITIONERS


def _names():
    out = []
    for name in PARTITIONERS.names():
        try:
            partitioner = PARTITIONERS.get(name)(seed=0)
        except ConfigError:
            continue                     # needs options (fixed)
        if getattr(partitioner, "places_shards", True) and name != "brute_force":
            out.append(name)
    return out


@pytest.mark.parametrize("name", _names())
def test_a_cut_model_is_placed_completely_on_candidates_within_memory(name):
    model = get_model("llama-3.2-1b").with_overrides(n_layers=2, proj_shards=2, ffn_shards=4)
    kinds = ["apple-m2-mac-mini", "jetson-orin-nx-16gb", "jetson-orin-nano-8gb",
             "raspberry-pi-5-8gb", "intel-nuc13-pro-i7-1360p"]
    devices = [make_device(f"d{i}", kind) for i, kind in enumerate(kinds)]
    obs = build(devices, 5e8, model, get_cost_model("decode"))
    placement = PARTITIONERS.get(name)(seed=0).decide(obs)
    assert len(placement.devices) == len(blocks_of(model)) == 2 * (8 + 2 + 4)
    assert set(placement.devices) <= set(obs.candidates)
    for device, held in used_bytes(obs, placement).items():
        assert held <= obs.device(device).block_memory_bytes
    assert {b.index for b in blocks_of(model) if b.kind == "ffn"} == {0, 1, 2, 3}


def test_the_shard_placers_include_the_papers_algorithm():
    assert {"resource_aware", "slices", "greedy", "round_robin", "edgeshard"} <= set(_names())
    assert "resource_aware_plus" not in _names() and "exact" not in _names()
