"""The exact solver equals brute force on many tiny instances, with and without migration."""

import dataclasses

import pytest

from partition_helpers import random_observation
from testbed.partition import PARTITIONERS
from testbed.plan.delay import decision_cost_s

exact = PARTITIONERS.get("exact")
brute = PARTITIONERS.get("brute_force")


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("preset", ["paper", "decode"])
def test_exact_matches_brute_force_without_a_current_placement(seed, preset):
    obs = random_observation(seed, n_devices=3 + seed % 2, heads=4, preset=preset,
                             model="paper-small" if preset == "paper" else "gpt2-small")
    best = brute(seed=0).decide(obs)
    solver = exact(seed=0)
    found = solver.decide(obs)
    assert solver.last_proven_optimal
    assert decision_cost_s(obs, found) == pytest.approx(decision_cost_s(obs, best), rel=1e-6)
    assert solver.last_objective_s == pytest.approx(decision_cost_s(obs, best), rel=1e-6)


MOVED = []


@pytest.mark.parametrize("seed", range(12))
def test_exact_matches_brute_force_with_migration(seed):
    # 3 devices hosting one layer, or 2 devices hosting two layers (brute force stays small)
    obs = random_observation(seed, n_devices=4 - seed % 2, heads=4, n_layers=1 + seed % 2,
                             interval=(1, 30, 300)[seed % 3], model="gpt2-small",
                             preset="decode")
    start = PARTITIONERS.get("round_robin")(seed=0).decide(obs)
    obs = dataclasses.replace(obs, placement=start)
    best = brute(seed=0).decide(obs)
    solver = exact(seed=0)
    found = solver.decide(obs)
    assert decision_cost_s(obs, found) == pytest.approx(decision_cost_s(obs, best), rel=1e-6)
    assert solver.last_objective_s == pytest.approx(decision_cost_s(obs, best), rel=1e-6)
    MOVED.append(bool(found.moved(start)))


def test_the_migration_instances_really_migrate():
    """The instances above are not all 'stay put' (a weak check would be)."""
    if len(MOVED) < 12:
        pytest.skip("run together with test_exact_matches_brute_force_with_migration")
    assert 3 <= sum(MOVED) <= 11
