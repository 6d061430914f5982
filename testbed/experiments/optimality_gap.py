"""The paper's small-scale comparison: each partitioner's per-step cost against the optimum.

For every setting (number of devices, model), cost preset and seed, a random cluster is
drawn as in the authors' prototype (PAPER.md: compute and memory log-normal and clipped,
link bandwidths uniform per link, background load uniform in [0, ``background_max``] on
every device at every step) plus a controller drawn the same way, which issues requests
and hosts no blocks — the same rule for every method. Then for ``steps`` decisions (one
per token, the sequence growing) each partitioner decides from its own current placement,
and the ``exact`` solver finds the optimum of that same decision; both are judged by
:func:`testbed.plan.delay.decision_cost_s` (inference delay + migration delay).
The gap of a step is ``100 * (cost / optimum - 1)`` per cent.

A spec file::

    name: e1_small_scale
    experiment: optimality_gap
    seed: 2025
    settings: [{n_devices: 3, model: paper-small}, {n_devices: 5, model: paper-medium}]
    presets: [paper, decode]
    seeds: 10
    steps: 20
    prompt_tokens: 64
    partitioners: [resource_aware, resource_aware_plus, greedy, round_robin]
    cluster: {compute_median: "50 GFLOP/s", compute_sigma: 1.0, compute_min: "1 GFLOP/s",
              compute_max: "500 GFLOP/s", memory_median: "8 GB", memory_sigma: 0.7,
              memory_min: "2 GB", memory_max: "32 GB", bandwidth_min: "100 Mbit/s",
              bandwidth_max: "1 Gbit/s", latency: "1 ms", background_max: 0.3}
    exact: {time_limit: "10 s"}
    quick: {seeds: 3, steps: 5}
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from testbed.cluster import TOPOLOGY_GENERATORS, DeviceSpec
from testbed import config_values as cv
from testbed.errors import ConfigError, bad_value
from testbed.experiments.scenario import deep_merge, with_setting
from testbed.experiments.seeding import component_rng, component_seed
from testbed.model import get_cost_model, get_model
from testbed.partition import Infeasible, make_partitioner
from testbed.plan.delay import decision_cost_s
from testbed.plan.network_view import NetworkView
from testbed.plan.observation import DeviceState, Observation
from testbed.plan.work import DECODE, step_work
from testbed.units import (parse_bitrate, parse_bytes, parse_flop_rate, parse_fraction,
                           parse_time)

TOP_KEYS = ("name", "description", "experiment", "seed", "settings", "presets", "seeds",
            "steps", "prompt_tokens", "partitioners", "cluster", "exact", "quick", "full",
            "notes")
CLUSTER_DEFAULTS = {
    "compute_median": "50 GFLOP/s", "compute_sigma": 1.0, "compute_min": "1 GFLOP/s",
    "compute_max": "500 GFLOP/s", "memory_median": "8 GB", "memory_sigma": 0.7,
    "memory_min": "2 GB", "memory_max": "32 GB", "bytes_per_flop": 0.25,
    "bandwidth_min": "100 Mbit/s", "bandwidth_max": "1 Gbit/s", "latency": "1 ms",
    "background_max": 0.3,
}
SUMMARY_COLUMNS = ["partitioner", "preset", "n_devices", "mean_gap_pct", "p50_gap_pct",
                   "p95_gap_pct", "steps", "infeasible_steps", "unproven_optima"]


@dataclass(frozen=True)
class GapSpec:
    """A parsed optimality-gap experiment."""

    name: str
    seed: int
    settings: tuple[tuple[int, str], ...]
    presets: tuple[str, ...]
    seeds: int
    steps: int
    prompt_tokens: int
    partitioners: tuple
    cluster: dict
    exact_time_limit_s: float
    resolved: dict
    source: str


def load_gap_spec(data: dict, *, source: str, quick: bool = False, full: bool = False,
                  seed: int | None = None) -> GapSpec:
    cv.check_keys(data, TOP_KEYS, source=source, field=None, required=("settings",))
    data = with_setting(data, source=source, quick=quick, full=full)
    defaults = {"seed": 0, "presets": ["paper", "decode"], "seeds": 10, "steps": 20,
                "prompt_tokens": 64, "cluster": CLUSTER_DEFAULTS, "exact": {"time_limit": "10 s"},
                "partitioners": ["resource_aware", "resource_aware_plus", "round_robin"]}
    resolved = deep_merge(defaults, data)
    if seed is not None:
        resolved["seed"] = seed
    settings = []
    if not isinstance(resolved["settings"], list) or not resolved["settings"]:
        raise bad_value(resolved["settings"], "a list of {n_devices, model}", source=source,
                        field="settings")
    for i, entry in enumerate(resolved["settings"]):
        entry = cv.mapping(entry, source=source, field=f"settings[{i}]",
                           what="{n_devices, model}")
        cv.check_keys(entry, ("n_devices", "model"), source=source, field=f"settings[{i}]",
                      required=("n_devices", "model"))
        n = entry["n_devices"]
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise bad_value(n, "an integer >= 1", source=source,
                            field=f"settings[{i}].n_devices")
        get_model(entry["model"], source=source, field=f"settings[{i}].model")
        settings.append((n, entry["model"]))
    for i, preset in enumerate(resolved["presets"]):
        try:
            get_cost_model(preset)
        except ConfigError as error:
            raise error.located(source, f"presets[{i}]") from None
    for key in ("seeds", "steps", "prompt_tokens", "seed"):
        value = resolved[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "seed"
                                                                             else 1):
            raise bad_value(value, "a positive integer", source=source, field=key)
    cluster = cv.mapping(resolved["cluster"], source=source, field="cluster",
                         what="device and link distributions")
    cv.check_keys(cluster, CLUSTER_DEFAULTS, source=source, field="cluster")
    parsed = _parse_cluster({**CLUSTER_DEFAULTS, **cluster}, source)
    exact = cv.mapping(resolved["exact"], source=source, field="exact", what="{time_limit}")
    cv.check_keys(exact, ("time_limit",), source=source, field="exact")
    limit = cv.quantity(parse_time, exact.get("time_limit", "10 s"), source=source,
                        field="exact.time_limit", what="time limit")
    for i, spec in enumerate(resolved["partitioners"]):
        make_partitioner(spec, seed=0, source=source, field=f"partitioners[{i}]")
    return GapSpec(resolved.get("name", Path(source).stem), resolved["seed"], tuple(settings),
                   tuple(resolved["presets"]), resolved["seeds"], resolved["steps"],
                   resolved["prompt_tokens"], tuple(resolved["partitioners"]), parsed, limit,
                   resolved, source)


def _parse_cluster(cluster: dict, source: str) -> dict:
    out = {}
    for key, parse in (("compute_median", parse_flop_rate), ("compute_min", parse_flop_rate),
                       ("compute_max", parse_flop_rate), ("memory_median", parse_bytes),
                       ("memory_min", parse_bytes), ("memory_max", parse_bytes),
                       ("bandwidth_min", parse_bitrate), ("bandwidth_max", parse_bitrate),
                       ("latency", parse_time)):
        out[key] = cv.quantity(parse, cluster[key], source=source, field=f"cluster.{key}",
                               what=key.replace("_", " "), allow_zero=key == "latency")
    for key in ("compute_sigma", "memory_sigma", "bytes_per_flop"):
        value = cluster[key]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise bad_value(value, "a number >= 0", source=source, field=f"cluster.{key}")
        out[key] = float(value)
    try:
        out["background_max"] = parse_fraction(cluster["background_max"])
    except ConfigError as error:
        raise error.located(source, "cluster.background_max") from None
    return out


def draw_cluster(cluster: dict, n_devices: int, rng: np.random.Generator):
    """A controller plus ``n_devices`` devices and a full mesh with uniform bandwidths."""
    devices = []
    for i in range(n_devices + 1):
        flops = float(np.clip(rng.lognormal(np.log(cluster["compute_median"]),
                                            cluster["compute_sigma"]),
                              cluster["compute_min"], cluster["compute_max"]))
        memory = float(np.clip(rng.lognormal(np.log(cluster["memory_median"]),
                                             cluster["memory_sigma"]),
                               cluster["memory_min"], cluster["memory_max"]))
        name = "ctl" if i == 0 else f"d{i}"
        devices.append(DeviceSpec(name, "paper-random", flops,
                                  max(flops * cluster["bytes_per_flop"], 1e6), memory, 1.0, 1.0))
    topology = TOPOLOGY_GENERATORS.get("full_mesh")(devices, cluster["bandwidth_max"],
                                                    cluster["latency"], controller="ctl")
    capacity: dict[tuple[str, str], float] = {}
    for a, b in topology.links:
        if (b, a) in capacity:
            capacity[(a, b)] = capacity[(b, a)]
        else:
            capacity[(a, b)] = float(rng.uniform(cluster["bandwidth_min"],
                                                 cluster["bandwidth_max"]))
    return devices, topology, capacity


def run_gap_experiment(spec: GapSpec, progress=None) -> pd.DataFrame:
    """One row per (setting, preset, seed, partitioner, step)."""
    from testbed.partition.exact import Exact
    from testbed.experiments.scenario import partitioner_label, partitioner_spec

    rows = []
    for n_devices, model_name in spec.settings:
        model = get_model(model_name)
        for run in range(spec.seeds):
            setting = f"{n_devices}x{model_name}"
            rng = component_rng(spec.seed, "cluster", setting, str(run))
            devices, topology, capacity = draw_cluster(spec.cluster, n_devices, rng)
            view = NetworkView(topology, capacity)
            load = component_rng(spec.seed, "background", setting, str(run)).uniform(
                0.0, spec.cluster["background_max"], size=(spec.steps, len(devices)))
            for preset in spec.presets:
                cost = get_cost_model(preset)
                for entry in spec.partitioners:
                    label = partitioner_label(entry)
                    partitioner = make_partitioner(
                        partitioner_spec(entry),
                        seed=component_seed(spec.seed, "partitioner", label, setting, str(run)))
                    exact = Exact(seed=0, time_limit_s=spec.exact_time_limit_s)
                    current = None
                    for step in range(spec.steps):
                        work = step_work(cost, model, DECODE, spec.prompt_tokens + step, step)
                        states = tuple(DeviceState(d, True, 1.0 - load[step, k], 1.0)
                                       for k, d in enumerate(devices))
                        obs = Observation(float(step), step + 1, work, model, cost, states,
                                          view, "ctl", False, current, 1)
                        started = time.perf_counter()
                        try:
                            decision = partitioner.decide(obs)
                        except Infeasible as why:
                            decision, note = None, str(why)
                        else:
                            note = ""
                        wall = time.perf_counter() - started
                        try:
                            exact.decide(obs)
                            optimum, proven = exact.last_objective_s, exact.last_proven_optimal
                        except Infeasible:
                            optimum, proven = np.nan, False
                        cost_s = decision_cost_s(obs, decision) if decision is not None \
                            else np.nan
                        rows.append({
                            "setting": setting, "n_devices": n_devices, "model": model_name,
                            "preset": preset, "run": run, "partitioner": label,
                            "step": step + 1, "cost_s": cost_s, "optimum_s": optimum,
                            "gap_pct": 100.0 * (cost_s / optimum - 1.0),
                            "optimum_proven": proven, "decision_wall_s": wall, "note": note,
                            "migrated_blocks": len(decision.moved(current))
                            if decision is not None and current is not None else 0,
                        })
                        if decision is not None:
                            current = decision
                    if progress:
                        progress(f"{setting} {preset} run {run} {label}")
    return pd.DataFrame(rows)


def summarise_gaps(steps: pd.DataFrame) -> pd.DataFrame:
    """Mean / median / p95 gap per partitioner, preset and number of devices."""
    rows = []
    for (label, preset, n), group in steps.groupby(["partitioner", "preset", "n_devices"],
                                                   sort=False):
        gaps = group.gap_pct.dropna().to_numpy()
        rows.append({
            "partitioner": label, "preset": preset, "n_devices": int(n),
            "mean_gap_pct": float(gaps.mean()) if len(gaps) else np.nan,
            "p50_gap_pct": float(np.percentile(gaps, 50)) if len(gaps) else np.nan,
            "p95_gap_pct": float(np.percentile(gaps, 95)) if len(gaps) else np.nan,
            "steps": int(len(group)), "infeasible_steps": int(group.cost_s.isna().sum()),
            "unproven_optima": int((~group.optimum_proven).sum()),
        })
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def format_gap_summary(summary: pd.DataFrame) -> str:
    lines = [f"{'partitioner':<22} {'preset':<7} {'devices':>7} {'mean':>8} {'p50':>8} "
             f"{'p95':>8}   (% above the exact optimum, per step)"]
    lines.append("-" * len(lines[0]))
    for r in summary.itertuples():
        lines.append(f"{r.partitioner:<22} {r.preset:<7} {r.n_devices:>7} "
                     f"{r.mean_gap_pct:>7.1f}% {r.p50_gap_pct:>7.1f}% {r.p95_gap_pct:>7.1f}%"
                     + (f"   ({r.infeasible_steps} infeasible)" if r.infeasible_steps else ""))
    return "\n".join(lines)
