"""The horizon optimum: rate integrals, the evaluator against the engine, the shortest
path against brute force over every sequence, and the regret experiment."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testbed.errors import ConfigError
from testbed.experiments.runner import sim_config
from testbed.experiments.scenario import scenario_from_dict
from testbed.horizon.evaluator import HorizonEvaluator
from testbed.horizon.optimum import (CANDIDATE_BOUND, EXACT, all_placements,
                                     horizon_optimum, shortest_sequence)
from testbed.horizon.profile import RateProfile
from testbed.horizon.regret import HorizonSpec, scenario_regret
from testbed.partition import make_partitioner
from testbed.sim.engine import Simulation
from testbed.traces.series import Series

ROOT = Path(__file__).resolve().parents[1]
PAIRS = [("mac-mini", "jetson-nx"), ("mac-mini", "jetson-nano"), ("mac-mini", "pi5"),
         ("jetson-nx", "jetson-nano"), ("jetson-nx", "pi5"), ("jetson-nano", "pi5")]


def _scenario(*, kv_heads=2, tokens=12, interval=2, sigma=1.5, background="90 %",
              partitioners=("resource_aware", "greedy", "static"), **extra):
    trace = {"generator": "lognormal_jitter", "mean": "50 Mbit/s", "sigma": sigma,
             "step": "20 ms", "duration": "5 s", "loop": True}
    data = {"name": "h", "seed": 4, "cost": "decode",
            "model": {"name": "llama-3.2-1b",
                      "overrides": {"n_layers": 1, "n_kv_heads": kv_heads}},
            "topology": {"file": "full_mesh_4.yaml"},
            "links": [{"a": a, "b": b, "both_directions": True, "trace": trace}
                      for a, b in PAIRS],
            "network": {"message_costs": False},
            "migration": {"weights_preloaded": True},
            "workload": {"prompt_tokens": 64, "generate_tokens": tokens,
                         "decision_interval": interval},
            "partitioners": list(partitioners), **extra}
    if background:
        data["devices"] = {"*": {"background": {"uniform": background, "step": "50 ms"}}}
    return scenario_from_dict(data, source=str(ROOT / "experiments" / "h.yaml"))


# ----------------------------------------------------------------------------- profiles

def _steps():
    # 10 bit/s until 1 s, 0 until 2 s, 30 bit/s after
    series = Series((0.0, 1.0, 2.0), (10.0, 0.0, 30.0))
    return RateProfile(series.value_at, series.next_change_s)


def test_rate_profile_ends_follow_the_integral():
    profile = _steps()
    assert profile.end_s(0.0, 5.0) == pytest.approx(0.5)
    assert profile.end_s(0.5, 5.0) == pytest.approx(1.0)
    assert profile.end_s(0.5, 8.0) == pytest.approx(2.0 + 3.0 / 30.0)  # waits out the gap
    assert profile.end_s(1.5, 30.0) == pytest.approx(3.0)
    assert profile.end_s(3.0, 0.0) == 3.0
    dead = Series((0.0, 1.0), (10.0, 0.0))
    assert math.isinf(RateProfile(dead.value_at, dead.next_change_s).end_s(0.0, 20.0))
    # a looping trace at 0 throughout: given up after STALLED_AFTER_S, not followed for ever
    zero = Series((0.0, 0.5), (0.0, 0.0), loop_period_s=1.0)
    assert math.isinf(RateProfile(zero.value_at, zero.next_change_s).end_s(0.0, 1.0))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.just(0.0), st.floats(0.5, 100.0)), min_size=1,
                max_size=8).filter(any),
       st.floats(0.0, 5.0), st.floats(0.0, 5.0),
       st.lists(st.floats(0.0, 400.0), min_size=1, max_size=6))
def test_rate_profile_is_fifo_and_vectorised_alike(values, t1, t2, amounts):
    times = tuple(0.5 * i for i in range(len(values)))
    series = Series(times, tuple(values), loop_period_s=0.5 * len(values))
    profile = RateProfile(series.value_at, series.next_change_s)
    early, late = sorted((t1, t2))
    many = profile.ends_s(early, np.array(amounts))
    for amount, end in zip(amounts, many):
        one = profile.end_s(early, amount)
        assert end == pytest.approx(one, rel=1e-9) or (math.isinf(end) and math.isinf(one))
        assert one <= profile.end_s(late, amount) + 1e-9      # FIFO
        if math.isfinite(one) and amount > 0:   # the integral over [start, end] is the amount
            assert profile.integral(one) - profile.integral(early) == \
                pytest.approx(amount, rel=1e-6, abs=1e-6)


# ----------------------------------------------------------------------------- evaluator

def test_evaluator_equals_the_engine_when_nothing_shares_a_link():
    """Capacities change during flows (integrated by both); the attention devices send to
    the proj device over links of their own, and device load is constant."""
    fixed = {"name": "fixed", "placement": {"*": "jetson-nx", "L0.attn1": "pi5",
                                            "L0.ffn": "jetson-nano"}}
    scenario = _scenario(background=None, partitioners=[fixed], tokens=16, interval=4)
    config = sim_config(scenario)
    records = Simulation(config, make_partitioner(fixed)).run()
    evaluator = HorizonEvaluator(config)
    placement = make_partitioner(fixed).decide(
        Simulation(config, make_partitioner(fixed)).observe(1, evaluator.works[0]))
    assert len(set(placement.devices)) == 3
    assert records.tokens[-1].end_s > 5 * 0.020       # the capacities changed many times
    total = evaluator.sequence_time_s([placement] * len(evaluator.decision_tokens))
    assert total == pytest.approx(records.tokens[-1].end_s, rel=1e-9)


@settings(max_examples=25, deadline=None)
@given(st.floats(0.0, 3.0), st.floats(0.0, 3.0), st.integers(0, 80))
def test_an_interval_started_later_never_ends_sooner(t1, t2, which):
    evaluator = _EVALUATOR
    placements = _PLACEMENTS
    placement = placements[which % len(placements)]
    early, late = sorted((t1, t2))
    assert evaluator.segment_end_s(1, placement, early) <= \
        evaluator.segment_end_s(1, placement, late) + 1e-12
    before = evaluator.as_indices(placements[(which * 7) % len(placements)])
    after = np.stack([evaluator.as_indices(p) for p in placements])
    assert np.all(evaluator.migration_ends_s(1, before, after, early) <=
                  evaluator.migration_ends_s(1, before, after, late) + 1e-12)


_EVALUATOR = HorizonEvaluator(sim_config(_scenario()))
_PLACEMENTS = all_placements(_EVALUATOR, ["jetson-nx", "jetson-nano", "pi5"])


# ----------------------------------------------------------------------------- optimum

def test_the_shortest_path_is_the_best_of_every_sequence():
    """Two hosts, three blocks (8 placements), three decisions: all 512 sequences."""
    scenario = _scenario(kv_heads=1, tokens=6, interval=2, sigma=2.0)
    evaluator = HorizonEvaluator(sim_config(scenario))
    hosts = ["jetson-nano", "pi5"]
    placements = all_placements(evaluator, hosts)
    assert len(placements) == 8 and len(evaluator.decision_tokens) == 3
    times = {seq: evaluator.sequence_time_s(seq)
             for seq in itertools.product(placements, repeat=3)}
    best = min(times.values())
    optimum = horizon_optimum(evaluator, [], hosts)
    assert optimum.kind == EXACT and optimum.searched == (8, 8, 8)
    assert optimum.time_s == pytest.approx(best, rel=1e-12)
    assert evaluator.sequence_time_s(optimum.placements) == pytest.approx(best, rel=1e-12)
    # the sequences really differ
    assert max(times.values()) > 1.5 * best


def test_a_candidate_bound_searches_only_the_sequences_given():
    evaluator = _EVALUATOR
    a, b = _PLACEMENTS[0], _PLACEMENTS[40]
    n = len(evaluator.decision_tokens)
    bound = horizon_optimum(evaluator, [[a] * n, [b] * n],
                            ["jetson-nx", "jetson-nano", "pi5"], exact_limit=10)
    assert bound.kind == CANDIDATE_BOUND and set(bound.placements) <= {a, b}
    assert bound.time_s <= min(evaluator.sequence_time_s([a] * n),
                               evaluator.sequence_time_s([b] * n)) + 1e-12
    exact = shortest_sequence(evaluator, [_PLACEMENTS] * n, EXACT)
    assert exact.time_s <= bound.time_s + 1e-12


def test_regret_is_never_negative_and_myopia_costs_something():
    table = scenario_regret(_scenario(tokens=24, interval=1,
                                      partitioners=("resource_aware", "greedy",
                                                    "round_robin", "exact")),
                            HorizonSpec(candidates="scenario"))
    assert list(table.partitioner) == ["resource_aware", "greedy", "round_robin", "exact"]
    assert set(table.optimum_kind) == {EXACT}
    assert (table.regret_s >= 0).all()
    assert table.regret_s.max() > 0.05 * table.optimum_time_s.iloc[0]
    # the evaluator stays close to the engine's own time of each run
    error = (table.total_time_s - table.simulated_time_s).abs() / table.simulated_time_s
    assert error.max() < 0.1


def test_unsupported_scenarios_say_why():
    with pytest.raises(ConfigError, match="blocking"):
        HorizonEvaluator(sim_config(_scenario(migration={"mode": "live",
                                                         "weights_preloaded": True})))


# ----------------------------------------------------------------------------- experiment

def _cli(*args):
    return subprocess.run([sys.executable, "-m", "testbed.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=900)


def test_e8_quick_writes_regret_csv(tmp_path):
    out = tmp_path / "e8"
    proc = _cli("run", "experiments/e8_regret.yaml", "--quick", "--out", out)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out / "regret.csv")
    for column in ("partitioner", "total_time_s", "optimum_time_s", "regret_s",
                   "optimum_kind"):
        assert column in table.columns
    assert set(table.optimum_kind) == {EXACT, CANDIDATE_BOUND}
    points = table.groupby(["workload.decision_interval", "model.overrides.n_layers",
                            "case", "seed"]).partitioner.apply(list)
    assert len(points) == 3 * 2 * 2
    assert all(p == ["resource_aware", "resource_aware_plus", "greedy", "round_robin",
                     "static", "edgeshard", "exact"] for p in points)
    exact = table[table.optimum_kind == EXACT]
    assert (exact.regret_s >= 0).all() and (exact.regret_s > 0).any()
    assert (out / "regret.png").stat().st_size > 10_000


@pytest.mark.parametrize("horizon, message", [
    ("{exact_limit: -1}", "horizon.exact_limit"),
    ("{candidates: all}", "horizon.candidates"),
    ("{exact: 3}", "horizon"),
])
def test_bad_horizon_sections_name_their_field(tmp_path, horizon, message):
    text = (ROOT / "experiments" / "e8_regret.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("horizon: {exact_limit: 4096, candidates: registered}",
                                f"horizon: {horizon}").replace(
        "topology: {file: full_mesh_4.yaml}", f"topology: {{file: {ROOT}/topologies/"
                                             "full_mesh_4.yaml}"))
    proc = _cli("run", bad, "--quick", "--out", tmp_path / "out")
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
