"""Decision times of the partitioners (wall-clock ms or s per decision).

- ``resource_aware`` and ``resource_aware_plus``: Llama-2-7B (32 layers x 32 heads, MHA)
  over 25 devices drawn as in the paper's prototype; the mean over a first decision and
  ``--decisions - 1`` later ones, each under fresh background load with the previous
  placement as the current one (target: <= 50 ms per decision);
- ``exact``: one layer of 8 heads over 5 devices (target <= 1 s) and one layer of 32
  heads over 8 devices (target <= 10 s), with a current placement to migrate from.

Prints one ``name=value`` line per figure.

    python benchmarks/decision_time.py [--decisions N]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from testbed.experiments.optimality_gap import GapCluster, draw_cluster
from testbed.model import get_cost_model, get_model
from testbed.partition import PARTITIONERS
from testbed.plan.network_view import NetworkView
from testbed.plan.observation import DeviceState, Observation
from testbed.plan.work import DECODE, step_work

TARGETS = {"resource_aware_ms": 50.0, "resource_aware_plus_ms": 50.0, "exact_5x8_s": 1.0,
           "exact_8x32_s": 10.0}


def observations(model_name: str, n_devices: int, decisions: int, preset: str, seed: int,
                 heads: int | None = None):
    """An observation factory: the same cluster, fresh background load every decision."""
    rng = np.random.default_rng(seed)
    devices, topology, capacity = draw_cluster(GapCluster(), n_devices, rng)
    model = get_model(model_name)
    if heads is not None:
        model = model.with_overrides(n_heads=heads, n_kv_heads=heads)
    cost = get_cost_model(preset)
    view = NetworkView(topology, capacity)
    for step in range(decisions):
        work = step_work(cost, model, DECODE, 128 + step, step)
        states = tuple(DeviceState(d, True, 1.0 - rng.uniform(0, 0.3), 1.0) for d in devices)
        yield Observation(float(step), step + 1, work, model, cost, states, view, "ctl",
                          False, None, 1)


def time_decisions(name: str, stream, **options) -> float:
    """Mean wall time per decision (s), each decision starting from the previous one."""
    partitioner = PARTITIONERS.get(name)(seed=0, **options)
    current, times = None, []
    for obs in stream:
        obs = dataclasses.replace(obs, placement=current)
        started = time.perf_counter()
        current = partitioner.decide(obs)
        times.append(time.perf_counter() - started)
    return float(np.mean(times))


def measure_all(decisions: int = 10) -> dict[str, float]:
    """Every figure of :data:`TARGETS`, by name (ms or s as the name says)."""
    figures = {}
    for name in ("resource_aware", "resource_aware_plus"):
        stream = observations("llama-2-7b", 25, decisions, "decode", seed=1)
        figures[f"{name}_ms"] = 1e3 * time_decisions(name, stream)
    for key, n_devices, heads in (("exact_5x8_s", 5, 8), ("exact_8x32_s", 8, 32)):
        stream = observations("paper-medium", n_devices, 3, "paper", seed=2, heads=heads)
        figures[key] = time_decisions("exact", stream, time_limit_s=60.0)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=10)
    args = parser.parse_args()
    figures = measure_all(args.decisions)
    for key, value in figures.items():
        verdict = "ok" if value <= TARGETS[key] else "MISS"
        print(f"# {key}: {value:.3f} (target <= {TARGETS[key]:g}): {verdict}")
    for key, value in figures.items():
        print(f"{key}={value:.3f}")


if __name__ == "__main__":
    main()
