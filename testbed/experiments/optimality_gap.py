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
from testbed import config_schema as cs
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

def _quantity(parse, what: str, allow_zero: bool = False) -> cs.Parser:
    def read(value: object, source: str, field: str) -> float:
        return cv.quantity(parse, value, source=source, field=field, what=what,
                           allow_zero=allow_zero)
    return read


def _fraction(value: object, source: str, field: str) -> float:
    try:
        return parse_fraction(value)
    except ConfigError as error:
        raise error.located(source, field) from None


_SPREAD = cs.number(minimum=0, what="a number >= 0")


@dataclass(frozen=True)
class GapCluster:
    """How E1 draws a cluster (the paper's prototype: log-normal devices, clipped; uniform
    link bandwidths on a full mesh); a gap experiment's ``cluster`` section."""

    compute_median_flops: float = cs.setting("50 GFLOP/s", _quantity(parse_flop_rate,
                                             "compute rate"), "median device compute "
                                             "(log-normal)", key="compute_median")
    compute_sigma: float = cs.setting(1.0, _SPREAD, "sigma of log compute")
    compute_min_flops: float = cs.setting("1 GFLOP/s", _quantity(parse_flop_rate,
                                          "compute rate"), "compute clipped below",
                                          key="compute_min")
    compute_max_flops: float = cs.setting("500 GFLOP/s", _quantity(parse_flop_rate,
                                          "compute rate"), "compute clipped above",
                                          key="compute_max")
    memory_median_bytes: float = cs.setting("8 GB", _quantity(parse_bytes, "memory"),
                                            "median device memory (log-normal)",
                                            key="memory_median")
    memory_sigma: float = cs.setting(0.7, _SPREAD, "sigma of log memory")
    memory_min_bytes: float = cs.setting("2 GB", _quantity(parse_bytes, "memory"),
                                         "memory clipped below", key="memory_min")
    memory_max_bytes: float = cs.setting("32 GB", _quantity(parse_bytes, "memory"),
                                         "memory clipped above", key="memory_max")
    bytes_per_flop: float = cs.setting(0.25, _SPREAD, "memory bandwidth per unit of compute "
                                       "(bytes/s per FLOP/s)")
    bandwidth_min_bps: float = cs.setting("100 Mbit/s", _quantity(parse_bitrate, "bandwidth"),
                                          "link bandwidth, uniform from", key="bandwidth_min")
    bandwidth_max_bps: float = cs.setting("1 Gbit/s", _quantity(parse_bitrate, "bandwidth"),
                                          "link bandwidth, uniform to", key="bandwidth_max")
    latency_s: float = cs.setting("1 ms", _quantity(parse_time, "latency", allow_zero=True),
                                  "every link's latency", key="latency")
    background_max: float = cs.setting(0.3, _fraction, "background load, uniform from 0 to "
                                       "this fraction, per device and step")


def _settings(value: object, source: str, field: str) -> tuple[tuple[int, str], ...]:
    if not isinstance(value, list) or not value:
        raise bad_value(value, "a list of {n_devices, model}", source=source, field=field)
    settings = []
    for i, entry in enumerate(value):
        where = f"{field}[{i}]"
        entry = cv.mapping(entry, source=source, field=where, what="{n_devices, model}")
        cv.check_keys(entry, ("n_devices", "model"), source=source, field=where,
                      required=("n_devices", "model"))
        n = cs.integer(1)(entry["n_devices"], source, f"{where}.n_devices")
        get_model(entry["model"], source=source, field=f"{where}.model")
        settings.append((n, entry["model"]))
    return tuple(settings)


def _presets(value: object, source: str, field: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise bad_value(value, "a list of cost presets", source=source, field=field)
    for i, preset in enumerate(value):
        try:
            get_cost_model(preset)
        except ConfigError as error:
            raise cv.relocate(error, source=source, field=f"{field}[{i}]") from None
    return tuple(value)


def _partitioners(value: object, source: str, field: str) -> tuple:
    if not isinstance(value, list) or not value:
        raise bad_value(value, "a non-empty list of partitioner names or mappings",
                        source=source, field=field)
    for i, spec in enumerate(value):
        make_partitioner(spec, seed=0, source=source, field=f"{field}[{i}]")
    return tuple(value)


@dataclass(frozen=True)
class GapExact:
    time_limit_s: float = cs.setting("10 s", _quantity(parse_time, "time limit"),
                                     "the exact solver's time per step", key="time_limit")


@dataclass(frozen=True)
class GapFile:
    """Every key of an optimality-gap experiment file."""

    name: str | None = cs.setting(None, cs.name_or_none, "the experiment's name (default: "
                                  "the file's name)")
    description: object = cs.setting(None, cs.raw, "free text")
    notes: object = cs.setting(None, cs.raw, "free text")
    experiment: object = cs.setting(None, cs.raw, "optimality_gap")
    seed: int = cs.setting(0, cs.integer(0), "the one seed every draw comes from")
    settings: tuple[tuple[int, str], ...] = cs.setting(
        cs.REQUIRED, _settings, "the (n_devices, model) points: [{n_devices, model}, ...]")
    presets: tuple[str, ...] = cs.setting(["paper", "decode"], _presets, "cost presets")
    seeds: int = cs.setting(10, cs.integer(1), "clusters drawn per point")
    steps: int = cs.setting(20, cs.integer(1), "decisions per cluster")
    prompt_tokens: int = cs.setting(64, cs.integer(1), "prompt length (tokens)")
    partitioners: tuple = cs.setting(["resource_aware", "resource_aware_plus", "round_robin"],
                                     _partitioners, "partitioners compared to the optimum")
    cluster: GapCluster = cs.subsection(GapCluster, "how clusters are drawn")
    exact: GapExact = cs.subsection(GapExact, "the exact solver")
    quick: object = cs.setting(None, cs.raw, "overrides applied by --quick")
    full: object = cs.setting(None, cs.raw, "overrides applied by --full")


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
    cluster: GapCluster
    exact_time_limit_s: float
    resolved: dict
    source: str


def load_gap_spec(data: dict, *, source: str, quick: bool = False, full: bool = False,
                  seed: int | None = None) -> GapSpec:
    cv.check_keys(data, cs.keys(GapFile), source=source, field=None, required=("settings",))
    data = with_setting(data, source=source, quick=quick, full=full)
    resolved = deep_merge(cs.defaults_of(GapFile), data)
    if seed is not None:
        resolved["seed"] = seed
    file: GapFile = cs.parse_section(GapFile, resolved, source=source, field=None)
    return GapSpec(file.name or Path(source).stem, file.seed, file.settings, file.presets,
                   file.seeds, file.steps, file.prompt_tokens, file.partitioners,
                   file.cluster, file.exact.time_limit_s, resolved, source)


def draw_cluster(cluster: GapCluster, n_devices: int, rng: np.random.Generator):
    """A controller plus ``n_devices`` devices and a full mesh with uniform bandwidths."""
    devices = []
    for i in range(n_devices + 1):
        flops = float(np.clip(rng.lognormal(np.log(cluster.compute_median_flops),
                                            cluster.compute_sigma),
                              cluster.compute_min_flops, cluster.compute_max_flops))
        memory = float(np.clip(rng.lognormal(np.log(cluster.memory_median_bytes),
                                             cluster.memory_sigma),
                               cluster.memory_min_bytes, cluster.memory_max_bytes))
        name = "ctl" if i == 0 else f"d{i}"
        devices.append(DeviceSpec(name, "paper-random", flops,
                                  max(flops * cluster.bytes_per_flop, 1e6), memory, 1.0, 1.0))
    topology = TOPOLOGY_GENERATORS.get("full_mesh")(devices, cluster.bandwidth_max_bps,
                                                    cluster.latency_s, controller="ctl")
    capacity: dict[tuple[str, str], float] = {}
    for a, b in topology.links:
        if (b, a) in capacity:
            capacity[(a, b)] = capacity[(b, a)]
        else:
            capacity[(a, b)] = float(rng.uniform(cluster.bandwidth_min_bps,
                                                 cluster.bandwidth_max_bps))
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
                0.0, spec.cluster.background_max, size=(spec.steps, len(devices)))
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
