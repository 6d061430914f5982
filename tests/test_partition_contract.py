"""The contract every registered partitioner must keep (DESIGN.md §6), on small random
instances (3-5 workers from the catalog, a controller; paper-small, gpt2-small with 1-2
layers, llama-3.2-1b with 2 layers (GQA); decode and paper cost presets):

(a) a complete placement of every block; (b) only ``obs.candidates``: never the controller
unless it may host blocks, never a device that is down; (c) every device's memory respected
when a placement fits; (d) the same placement for the same seed; (e) ``Infeasible`` (not
another exception, never a partial placement) when nothing fits.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from partition_instances import (build, model_need_bytes, model_of, random_observation,
                                 used_bytes)
from testbed.cluster import make_device
from testbed.errors import ConfigError
from testbed.model import get_cost_model
from testbed.partition import PARTITIONERS, Infeasible
from testbed.partition.brute_force import BruteForce
from testbed.plan.observation import Observation
from testbed.plan.placement import Placement

SLOW: set[str] = set()   # partitioners whose contract tests take more than 2 s


def _partitioner_params():
    params = []
    for name in PARTITIONERS.names():
        marks = [pytest.mark.slow] if name in SLOW else []
        reason = None
        if name != "fixed":    # fixed gets its placement from greedy's (see make)
            try:
                PARTITIONERS.get(name)(seed=0)
            except ConfigError as error:
                reason = f"{name} cannot be built without options: {error}"
        if reason:
            marks.append(pytest.mark.skip(reason=reason))
        params.append(pytest.param(name, marks=marks, id=name))
    return params


PARTITIONER = pytest.mark.parametrize("name", _partitioner_params())

# (model, layers, cost preset)
CASES = [("paper-small", None, "paper"), ("paper-small", None, "decode"),
         ("gpt2-small", 1, "decode"), ("gpt2-small", 2, "paper"),
         ("llama-3.2-1b", 2, "decode"), ("llama-3.2-1b", 2, "paper")]
CASE_IDS = [f"{m}-{n or 1}L-{c}" for m, n, c in CASES]
SEEDS = [0, 1, 2]


class _FixedFromGreedy:
    """``fixed`` with, as its rules, the placement greedy chooses at the first decision
    (one rule per block), so that it is a placement that fits; built on first use."""

    def __init__(self, seed: int):
        self.seed, self.inner = seed, None

    def decide(self, obs: Observation):
        if self.inner is None:
            greedy = PARTITIONERS.get("greedy")(seed=self.seed).decide(obs)
            self.inner = PARTITIONERS.get("fixed")(seed=self.seed, placement={
                block.id: device for block, device in zip(obs.blocks, greedy.devices)})
        return self.inner.decide(obs)


def make(name: str, seed: int = 0):
    if name == "fixed":
        return _FixedFromGreedy(seed)
    return PARTITIONERS.get(name)(seed=seed)


def decide(partitioner, obs: Observation):
    """``partitioner.decide(obs)``; brute force only on the instances it is meant for."""
    if isinstance(partitioner, BruteForce) and \
            len(obs.candidates) ** len(obs.blocks) > partitioner.max_assignments:
        pytest.skip("too large for brute force (it refuses above max_assignments by design)")
    return partitioner.decide(obs)


def check_valid(obs: Observation, placement: object) -> None:
    """(a), (b) and (c) for one decision."""
    assert isinstance(placement, Placement), f"returned {placement!r}"
    assert placement.model == obs.model
    assert len(placement.devices) == len(obs.blocks)                              # (a)
    used = set(placement.devices)
    assert used <= set(obs.candidates), f"used {sorted(used - set(obs.candidates))}"  # (b)
    if not obs.controller_hosts_blocks:
        assert obs.controller not in used
    assert not used & {d.name for d in obs.devices if not d.up}
    for device, held in used_bytes(obs, placement).items():                           # (c)
        assert held <= obs.device(device).block_memory_bytes, \
            f"{device} holds {held:.0f} B of {obs.device(device).block_memory_bytes:.0f} B"


@PARTITIONER
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("seed", SEEDS)
def test_first_decision_is_complete_on_candidates_and_fits(name, case, seed):
    model, layers, cost = case
    obs = random_observation(seed, model, layers, cost, n_down=1,
                             controller_hosts_blocks=bool(seed % 2))
    check_valid(obs, decide(make(name, seed), obs))


@PARTITIONER
@pytest.mark.parametrize("case", CASES[::2], ids=CASE_IDS[::2])
def test_controller_hosts_blocks_only_when_allowed(name, case):
    model, layers, cost = case
    for allowed in (False, True):
        obs = random_observation(7, model, layers, cost, controller_hosts_blocks=allowed)
        placement = decide(make(name, 7), obs)
        check_valid(obs, placement)


@PARTITIONER
@pytest.mark.parametrize("case", CASES[1::2], ids=CASE_IDS[1::2])
def test_later_decision_avoids_a_device_that_went_down(name, case):
    model, layers, cost = case
    partitioner = make(name, 3)
    obs = random_observation(3, model, layers, cost, big=2, n_workers=4)
    first = decide(partitioner, obs)
    check_valid(obs, first)
    gone = sorted(set(first.devices))[0]
    states = tuple(dataclasses.replace(d, up=d.name != gone) for d in obs.devices)
    later = dataclasses.replace(obs, devices=states, placement=first, token_index=6)
    if name == "fixed":      # it cannot move: it says so
        with pytest.raises(Infeasible, match=gone):
            decide(partitioner, later)
        return
    second = decide(partitioner, later)
    check_valid(later, second)
    assert gone not in second.devices


@PARTITIONER
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_same_seed_same_placement(name, case):
    model, layers, cost = case
    placements = [decide(make(name, 5), random_observation(5, model, layers, cost, n_down=1))
                  for _ in range(2)]
    assert placements[0] == placements[1]


def _tiny_workers(seed: int, model: str, layers: int | None, cost: str) -> Observation:
    # every worker holds a tenth of the model: together they hold at most half of it
    return random_observation(seed, model, layers, cost, memory_scale=0.1)


def _no_room_for_the_largest_block(seed: int, model: str, layers: int | None,
                                  cost: str) -> Observation:
    # more memory in total than the model needs, but no worker can take the largest block
    model_spec, cost_model = model_of(model, layers), get_cost_model(cost)
    probe = build([make_device("ctl", "apple-m2-mac-mini")], 1e8, model_spec, cost_model)
    largest = max(probe.memory_bytes(kind) for kind in ("attn", "proj", "ffn"))
    n_workers = max(3, math.ceil(model_need_bytes(probe) / (0.9 * largest)) + 1)
    devices = [make_device("ctl", "nvidia-rtx-4090")] + [
        make_device(f"w{i}", "jetson-orin-nx-16gb", memory_bytes=0.9 * largest)
        for i in range(n_workers)]
    return build(devices, 1e8, model_spec, cost_model)


def _all_down(seed: int, model: str, layers: int | None, cost: str) -> Observation:
    obs = random_observation(seed, model, layers, cost)
    states = tuple(dataclasses.replace(d, up=False) if d.name != obs.controller else d
                   for d in obs.devices)
    return dataclasses.replace(obs, devices=states)


@PARTITIONER
@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[4]], ids=CASE_IDS[0:6:2])
@pytest.mark.parametrize("instance", [_tiny_workers, _no_room_for_the_largest_block,
                                      _all_down],
                         ids=["tiny-workers", "no-room-for-largest-block", "all-down"])
def test_infeasible_raises_infeasible(name, case, instance):
    model, layers, cost = case
    obs = instance(11, model, layers, cost)
    partitioner = make(name, 11)
    if name == "fixed":
        if instance is not _all_down:
            pytest.skip("fixed keeps the scenario's placement even if it overflows memory "
                        "(the engine records the out-of-memory events)")
        decide(partitioner, random_observation(11, model, layers, cost))   # its rules
    with pytest.raises(Infeasible):
        decide(partitioner, obs)
