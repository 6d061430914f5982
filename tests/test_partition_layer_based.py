"""The layer-based baselines (edgeshard, galaxy) and the simple ones (greedy, static)."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest

from partition_instances import build, model_of, random_observation, used_bytes
from testbed.cluster import TOPOLOGY_GENERATORS, DeviceSpec, make_device
from testbed.errors import ConfigError
from testbed.model import get_cost_model
from testbed.partition import PARTITIONERS, Infeasible, make_partitioner
from testbed.partition import edgeshard
from testbed.partition.galaxy import share
from testbed.plan.delay import estimate_token_delay
from testbed.plan.observation import Observation
from testbed.plan.placement import Placement
from testbed.sim.engine import SimConfig, Simulation

WORKER_KINDS = ("jetson-orin-nano-8gb", "jetson-orin-nx-16gb", "raspberry-pi-5-8gb",
                "intel-nuc13-pro-i7-1360p", "snapdragon-8-gen-3-phone")


def delay_s(obs: Observation, placement: Placement) -> float:
    return estimate_token_delay(obs, placement).total_s


def fits(obs: Observation, placement: Placement, fraction: float = 1.0) -> bool:
    return all(held <= fraction * obs.device(d).block_memory_bytes
               for d, held in used_bytes(obs, placement).items())


def workers(seed: int, n_workers: int = 3, n_layers: int = 4) -> Observation:
    """``n_workers`` workers, each with room for 1..n_layers-1 whole layers (together for
    all), random per-direction capacities and background load; gpt2-small."""
    rng = np.random.default_rng(seed)
    model, cost = model_of("gpt2-small", n_layers), get_cost_model("decode")
    layer = edgeshard.layer_memory_bytes(build([make_device("c", "apple-m2-mac-mini")], 1e9,
                                               model, cost))
    caps = rng.integers(1, n_layers, size=n_workers)
    if caps.sum() < n_layers:
        caps[0] = n_layers - 1
    devices = [make_device("ctl", "apple-m2-mac-mini")] + [
        make_device(f"w{i}", WORKER_KINDS[int(rng.integers(len(WORKER_KINDS)))],
                    memory_bytes=(int(c) + 0.5) * layer) for i, c in enumerate(caps)]
    topology = TOPOLOGY_GENERATORS.get("full_mesh")(devices, 1e9, 0.001)
    capacities = {key: float(rng.uniform(5e6, 1e9)) for key in topology.links}
    avail = {d.name: float(rng.uniform(0.3, 1.0)) for d in devices}
    return build(devices, capacities, model, cost, avail=avail)


def contiguous_placements(obs: Observation):
    """Every ordered choice of distinct candidates with contiguous layer ranges that fits."""
    names, n_layers = obs.candidates, obs.model.n_layers
    for k in range(1, min(len(names), n_layers) + 1):
        for order in itertools.permutations(names, k):
            for cuts in itertools.combinations(range(1, n_layers), k - 1):
                bounds = (0, *cuts, n_layers)
                per_layer = [order[i] for i in range(k) for _ in range(bounds[i + 1] - bounds[i])]
                placement = Placement(obs.model, [per_layer[b.layer] for b in obs.blocks])
                if fits(obs, placement):
                    yield placement


def layer_ranges(placement: Placement) -> list[tuple[str, int]]:
    """[(device, layers), ...] if every layer sits whole on one device, ranges contiguous."""
    ranges: list[tuple[str, int]] = []
    for layer in placement.layers:
        assert layer.attn_hosts == ((layer.proj, layer.attn_hosts[0][1]),), "layer split"
        assert layer.proj == layer.ffn
        if ranges and ranges[-1][0] == layer.proj:
            ranges[-1] = (layer.proj, ranges[-1][1] + 1)
        else:
            ranges.append((layer.proj, 1))
    devices = [d for d, _ in ranges]
    assert len(devices) == len(set(devices)), f"a device hosts two ranges: {ranges}"
    return ranges


# --- edgeshard ---------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("n_workers, n_layers", [(3, 4), (4, 5)])
def test_edgeshard_is_the_best_contiguous_split(seed, n_workers, n_layers):
    obs = workers(seed, n_workers, n_layers)
    placement = PARTITIONERS.get("edgeshard")(seed=0).decide(obs)
    layer_ranges(placement)
    assert fits(obs, placement)
    best = min(delay_s(obs, p) for p in contiguous_placements(obs))
    assert delay_s(obs, placement) == pytest.approx(best, rel=1e-12)


@pytest.mark.parametrize("seed", range(8))
def test_edgeshard_heuristic_dp_is_valid_and_never_beats_the_exact_one(seed, monkeypatch):
    obs = workers(seed)
    exact = PARTITIONERS.get("edgeshard")(seed=0).decide(obs)
    monkeypatch.setattr(edgeshard, "EXACT_SETS", 0)
    heuristic = PARTITIONERS.get("edgeshard")(seed=0).decide(obs)
    layer_ranges(heuristic)
    assert fits(obs, heuristic)
    assert delay_s(obs, heuristic) >= delay_s(obs, exact) * (1 - 1e-12)


def test_edgeshard_on_many_devices_uses_the_heuristic_dp_and_fits():
    obs = random_observation(4, "llama-3.2-1b", None, "decode", n_workers=25, big=0)
    sets = sum(math.comb(25, k) for k in range(1, 17))
    assert sets > edgeshard.EXACT_SETS
    placement = PARTITIONERS.get("edgeshard")(seed=0).decide(obs)
    layer_ranges(placement)
    assert fits(obs, placement)


def test_edgeshard_puts_a_one_layer_model_on_one_device():
    obs = random_observation(2, "paper-small", None, "decode", n_workers=5)
    placement = PARTITIONERS.get("edgeshard")(seed=0).decide(obs)
    assert len(set(placement.devices)) == 1


def test_edgeshard_max_memory_fraction_leaves_headroom():
    obs = random_observation(1, "gpt2-small", 4, "decode", n_workers=4, big=4)
    placement = make_partitioner({"name": "edgeshard", "max_memory_fraction": 0.5}).decide(obs)
    assert fits(obs, placement, 0.5)
    assert not fits(obs, PARTITIONERS.get("edgeshard")(seed=0).decide(obs), 0.5)


@pytest.mark.parametrize("name", ["edgeshard", "galaxy"])
@pytest.mark.parametrize("bad", [0, 1.5, "half", True, None])
def test_bad_memory_fraction_is_a_config_error(name, bad):
    with pytest.raises(ConfigError, match="max_memory_fraction"):
        make_partitioner({"name": name, "max_memory_fraction": bad})


@pytest.mark.parametrize("name", ["edgeshard", "galaxy", "greedy", "static"])
def test_unknown_option_is_a_config_error(name):
    with pytest.raises(ConfigError):
        make_partitioner({"name": name, "bogus": 1})


def test_edgeshard_says_why_nothing_fits():
    obs = random_observation(3, "gpt2-small", 2, "decode", memory_scale=0.3)
    with pytest.raises(Infeasible, match=r"can hold 0 of the 2 whole layers"):
        PARTITIONERS.get("edgeshard")(seed=0).decide(obs)


@pytest.mark.parametrize("name", ["edgeshard", "galaxy"])
def test_layer_based_placements_are_static_until_they_no_longer_fit(name):
    partitioner = PARTITIONERS.get(name)(seed=0)
    obs = random_observation(6, "gpt2-small", 2, "decode", n_workers=4, big=2)
    first = partitioner.decide(obs)
    later = dataclasses.replace(obs, placement=first, token_index=9)
    assert partitioner.decide(later) is first
    # a host's memory shrinks (background use): re-decided, and the new one fits
    host = first.devices[0]
    squeezed = tuple(dataclasses.replace(d, reserved_bytes=d.spec.memory_bytes * 0.99)
                     if d.name == host else d for d in obs.devices)
    moved = partitioner.decide(dataclasses.replace(later, devices=squeezed))
    assert host not in moved.devices
    # a host goes down: re-decided without it
    down = tuple(dataclasses.replace(d, up=d.name != host) for d in obs.devices)
    assert host not in partitioner.decide(dataclasses.replace(later, devices=down)).devices


# --- galaxy ------------------------------------------------------------------------------

def test_share_is_largest_remainder_within_caps():
    assert share(8, [4, 2, 2], [8, 8, 8]) == [4, 2, 2]
    assert share(8, [1, 1, 1], [8, 8, 8]) == [3, 3, 2]
    assert share(7, [3, 2, 2], [8, 8, 8]) == [3, 2, 2]
    assert share(8, [4, 2, 2], [2, 8, 8]) == [2, 3, 3]
    assert share(8, [0, 0], [8, 8]) == [4, 4]
    assert share(8, [4, 2, 2], [2, 2, 2]) is None


def custom_cluster(flops: tuple[float, ...], memory=None) -> list[DeviceSpec]:
    """A controller and one worker per entry of ``flops`` (peak FLOP/s), 64 GB each."""
    memory = memory or {}
    return [DeviceSpec("ctl", "custom", 1e12, 100e9, 64e9)] + [
        DeviceSpec(f"w{i}", "custom", f, 100e9, memory.get(f"w{i}", 64e9))
        for i, f in enumerate(flops)]


@pytest.mark.parametrize("flops, heads", [((4e12, 2e12, 2e12), (4, 2, 2)),
                                          ((3e12, 1e12), (6, 2)),
                                          ((1e12, 1e12, 1e12), (3, 3, 2))])
def test_galaxy_shares_heads_in_proportion_to_compute(flops, heads):
    # the paper preset is compute-bound; fast links without latency make splitting pay
    obs = build(custom_cluster(flops), 1e12, model_of("paper-small"), get_cost_model("paper"),
                latency_s=0.0)
    placement = PARTITIONERS.get("galaxy")(seed=0).decide(obs)
    (layer,) = placement.layers
    assert dict(layer.attn_hosts) == {f"w{i}": n for i, n in enumerate(heads)}
    assert layer.proj == layer.ffn == "w0"


def test_galaxy_moves_heads_off_a_device_without_room():
    model, cost = model_of("paper-small"), get_cost_model("paper")
    probe = build(custom_cluster((1e12,)), 1e12, model, cost)
    room = probe.memory_bytes("proj") + probe.memory_bytes("ffn") + \
        2.5 * probe.memory_bytes("attn")
    obs = build(custom_cluster((4e12, 2e12, 2e12), {"w0": room}), 1e12, model, cost,
                latency_s=0.0)
    placement = PARTITIONERS.get("galaxy")(seed=0).decide(obs)
    assert dict(placement.layers[0].attn_hosts) == {"w0": 2, "w1": 3, "w2": 3}
    assert fits(obs, placement)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("model, layers", [("gpt2-small", 3), ("llama-3.2-1b", 2)])
def test_galaxy_is_never_slower_than_the_best_single_device(seed, model, layers):
    obs = random_observation(seed, model, layers, "decode")
    galaxy = PARTITIONERS.get("galaxy")(seed=0).decide(obs)
    single = PARTITIONERS.get("single_device")(seed=0).decide(obs)
    assert fits(obs, galaxy)
    assert delay_s(obs, galaxy) <= delay_s(obs, single) * (1 + 1e-12)


# --- greedy and static -------------------------------------------------------------------

def test_greedy_fills_the_first_candidate_first():
    model, cost = model_of("gpt2-small", 1), get_cost_model("decode")
    probe = build(custom_cluster((1e12,)), 1e9, model, cost)
    devices = custom_cluster((1e12, 1e12), {"w0": 3.5 * probe.memory_bytes("attn")})
    placement = PARTITIONERS.get("greedy")(seed=0).decide(build(devices, 1e9, model, cost))
    assert placement.devices == ("w0",) * 3 + ("w1",) * (len(placement.devices) - 3)


def test_static_freezes_the_first_decision_of_its_base():
    obs = random_observation(8, "gpt2-small", 2, "decode", big=2)
    static = make_partitioner({"name": "static", "base": "round_robin"}, seed=1)
    first = static.decide(obs)
    assert first == PARTITIONERS.get("round_robin")(seed=1).decide(obs)
    squeezed = tuple(dataclasses.replace(d, reserved_bytes=d.spec.memory_bytes * 0.99)
                     for d in obs.devices)
    later = dataclasses.replace(obs, devices=squeezed, placement=first, token_index=5)
    assert static.decide(later) is first          # frozen even when memory no longer fits
    host = first.devices[0]
    down = tuple(dataclasses.replace(d, up=d.name != host) for d in obs.devices)
    again = static.decide(dataclasses.replace(obs, devices=down, placement=first))
    assert host not in again.devices


@pytest.mark.parametrize("spec", [{"name": "static", "base": "static"},
                                  {"name": "static", "base": "no-such"},
                                  {"name": "static", "base": "greedy", "base_options": {"x": 1}},
                                  {"name": "static", "base": "greedy", "base_options": [1]}])
def test_static_rejects_bad_bases(spec):
    with pytest.raises(ConfigError):
        make_partitioner(spec)


# --- in the simulator ---------------------------------------------------------------------

@pytest.mark.parametrize("name", ["edgeshard", "galaxy", "greedy"])
def test_runs_in_the_simulator_without_running_out_of_memory(name):
    devices = [make_device("ctl", "apple-m2-mac-mini"), make_device("a", "jetson-orin-nx-16gb"),
               make_device("b", "jetson-orin-nx-16gb"), make_device("c", "jetson-orin-nano-8gb")]
    topology = TOPOLOGY_GENERATORS.get("full_mesh")(devices, 100e6, 0.001)
    config = SimConfig(model=model_of("llama-3.2-1b", 4), cost=get_cost_model("decode"),
                       topology=topology, prompt_tokens=16, generate_tokens=5)
    records = Simulation(config, PARTITIONERS.get(name)(seed=0)).run()
    assert records.outcome == "ok" and not records.oom
    assert [d.outcome for d in records.decisions] == ["placed"] + ["kept"] * 4
