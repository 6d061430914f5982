"""``testbed validate mininet SCENARIO.yaml --out DIR``: both backends, one error table.

For each partitioner of the scenario: simulate it under its dataflow (the entry's own, else
the scenario's) with its computations recorded, compile the task graphs it executed into
the per-token plan (:mod:`.plan`), execute that plan on real TCP in Mininet
(:mod:`.emulate`), and join the two per transfer and per token (:mod:`.compare`).
Per-message send and receive overheads are replayed as computations; what the emulation
cannot replay (live migration, device failures, NIC limits, per-link message delays) is
refused before anything runs.
Without ``netem`` in the kernel the emulated links have no latency, so the simulation is
run with zero link latency too (and the output says so). The same placements are then
simulated again with each candidate correction of the network model
(:mod:`.model_correction`), to show what the correction would change.

Writes into ``DIR``: ``validation.csv`` (``metric, n, median_err_pct, p90_err_pct``),
``transfers.csv`` and ``tokens.csv`` (joined rows), ``computes.csv`` (emulated against
simulated compute times), ``capacity_changes.csv`` (when each ``tc`` change was applied),
``validation.png`` (scatter, log-log, y = x) and ``meta.json``.
"""

from __future__ import annotations

import dataclasses

import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from testbed.emulation.compare import (compute_rows, error_rows, error_table, format_table,
                                       join_tokens, join_transfers)
from testbed.emulation.emulate import emulate_plans
from testbed.emulation.figures import plot_validation
from testbed.emulation.model_correction import (GOODPUT_FACTOR, add_header_overhead,
                                                scaled_capacity, wire_bytes, zero_latency)
from testbed.emulation.plan import PlanError, compile_plan
from testbed.emulation.recording import ReplayPartitioner, SimulatedRun, simulate
from testbed.emulation.resources import RunResources, guarded
from testbed.emulation.support import EmulationUnavailable, probe_netem, unavailable_reason
from testbed.errors import ConfigError
from testbed.experiments.runner import sim_config
from testbed.experiments.scenario import (Scenario, load_scenario, partitioner_label,
                                          partitioner_spec)
from testbed.experiments.seeding import component_seed
from testbed.partition import make_partitioner
from testbed.units import format_bitrate

#: Above this rate (bit/s) a 2-core machine measurably lags behind when shaping in software.
FAST_LINK_BPS = 200e6
#: The targets of the validation (issue 6): median per-transfer error, p90 per-token error.
TARGETS = {"transfer_time": ("median_err_pct", 5.0), "token_latency": ("p90_err_pct", 10.0)}


def _say(text: str = "") -> None:
    print(text, flush=True)


@dataclass
class Validation:
    table: pd.DataFrame
    transfers: pd.DataFrame
    tokens: pd.DataFrame
    out: Path
    notes: list[str]
    prefix: str                    # every interface and node name of the run starts with it
    worker_pids: list[int]         # the processes the run started (all gone by now)


def check_supported(scenario: Scenario, backend: str = "Mininet") -> None:
    """Raise ConfigError for what an emulation backend cannot replay."""
    if scenario.sim.migration_mode != "blocking":
        raise ConfigError(f"the {backend} validation replays blocking migrations only",
                          source=scenario.source, field="migration.mode",
                          value=scenario.sim.migration_mode)
    if scenario.sim.failures:
        raise ConfigError(f"the {backend} validation does not replay device failures",
                          source=scenario.source, field="devices")
    if any(v > 0 for v in scenario.sim.messages.link_s.values()):
        raise ConfigError(f"the {backend} validation does not replay per-link message delays "
                          "(a real link has no such delay); use message costs without "
                          "per_link, or none", source=scenario.source,
                          field="network.message_costs")
    if backend == "Mininet" and scenario.sim.topology.media:
        raise ConfigError(f"Mininet gives every link its own wire; the topology has shared "
                          f"media ({', '.join(scenario.sim.topology.media)}): give the topology "
                          "media: false, or validate shared airtime with the ns-3 backend",
                          source=scenario.source, field="topology")
    limited = [d.name for d in scenario.sim.topology.devices.values()
               if d.nic_tx_bps or d.nic_rx_bps]
    if limited:
        raise ConfigError(f"NIC limits ({', '.join(limited)}) are not emulated; remove them",
                          source=scenario.source, field="topology")


def results_folder(out: str | Path) -> Path:
    """``out``, created if need be; a one-line error if it cannot be."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot write the results: {error.strerror or error}",
                          source=str(out), field="--out") from None
    return out


def simulations(scenario: Scenario,
                topology) -> list[tuple[SimulatedRun, str | dict | None]]:
    """Per partitioner entry: its simulated run and the dataflow it ran under."""
    runs = []
    for i, spec in enumerate(scenario.partitioners):
        label = partitioner_label(spec)
        field = f"partitioners[{i}]"
        partitioner = make_partitioner(partitioner_spec(spec),
                                       seed=component_seed(scenario.seed, "partitioner", label),
                                       source=scenario.source, field=field)
        dataflow = scenario.dataflow_of(spec)
        try:
            run = simulate(sim_config(scenario, dataflow=dataflow), partitioner, label,
                           topology=topology)
        except ConfigError as error:
            raise error.located(scenario.source, field) from None
        if run.records.outcome != "ok":
            raise ConfigError(f"the simulation did not complete: {run.records.outcome}",
                              source=scenario.source, field=field)
        runs.append((run, dataflow))
    return runs


def compiled_plan(scenario: Scenario, run: SimulatedRun, dataflow: str | dict | None,
                  index: int):
    records = run.records
    try:
        return compile_plan(model=scenario.sim.model, cost=scenario.sim.cost,
                            controller=scenario.sim.topology.controller,
                            devices=list(scenario.sim.topology.devices),
                            prompt_tokens=scenario.sim.prompt_tokens, tokens=records.tokens,
                            flows=records.flows, jobs=records.jobs, decisions=run.decisions,
                            migration_mode=scenario.sim.migration_mode, dataflow=dataflow,
                            messages=scenario.sim.messages)
    except PlanError as error:
        raise ConfigError(str(error), source=scenario.source,
                          field=f"partitioners[{index}]") from None


def _corrected(scenario: Scenario, run: SimulatedRun, dataflow: str | dict | None, plan,
               emulated, topology):
    """Per transfer and per token, the simulated times under each model correction."""
    variants = {
        "goodput": dict(topology=scaled_capacity(topology, GOODPUT_FACTOR)),
        "headers": dict(topology=topology, network_patch=add_header_overhead),
    }
    out = {}
    for name, options in variants.items():
        # each correction is applied to the line-rate model (goodput factor 1), whatever
        # the scenario's own network.goodput_factor is
        line_rate = dataclasses.replace(sim_config(scenario, dataflow=dataflow),
                                        goodput_factor=1.0)
        again = simulate(line_rate, ReplayPartitioner(run.decisions), run.label, **options)
        size_of = wire_bytes if name == "headers" else float
        transfers = join_transfers(plan, again.records.flows, emulated.tables["transfers"],
                                   topology, size_of=size_of)
        tokens = join_tokens(again.records.tokens, emulated.tables["tokens"])
        out[name] = (transfers.set_index("xfer").sim_s, tokens.set_index("token").sim_s)
    return out


def validate_mininet(path: str | Path, out: str | Path, *, quick: bool = False,
                     full: bool = False, seed: int | None = None, queueing: str = "fair",
                     echo=_say) -> Validation:
    reason = unavailable_reason()
    if reason is not None:
        raise EmulationUnavailable(reason)
    started = time.perf_counter()
    scenario = load_scenario(path, quick=quick, full=full, seed=seed)
    check_supported(scenario)
    out = results_folder(out)
    notes: list[str] = []
    fastest = max(max(link.series.values) if link.series is not None else link.capacity_bps
                  for link in scenario.sim.topology.links.values())
    if fastest > FAST_LINK_BPS:
        notes.append(f"links up to {format_bitrate(fastest)}: software shaping above about "
                     f"{format_bitrate(FAST_LINK_BPS)} may fall behind on a small machine")
    echo(f"validating {scenario.name}: {scenario.sim.model.name} ({scenario.sim.model.n_layers} "
         f"layers, cost {scenario.sim.cost.name}) on {len(scenario.sim.topology.devices)} devices "
         f"({scenario.sim.topology.name}), {scenario.sim.generate_tokens} tokens, partitioners "
         f"{', '.join(partitioner_label(p) for p in scenario.partitioners)}")
    for note in notes:
        echo(note)
    resources = RunResources()
    with guarded(resources):
        netem = probe_netem(resources.prefix)
        if netem:
            topology = scenario.sim.topology
            notes.append("netem available: link latencies are emulated")
        else:
            topology = zero_latency(scenario.sim.topology)
            notes.append("netem is not available in this kernel: the emulated links have no "
                         "propagation delay, so the simulation is compared with link "
                         "latencies set to 0")
        echo(notes[-1])
        simulated = simulations(scenario, topology)
        runs = [run for run, _ in simulated]
        dataflows = [dataflow for _, dataflow in simulated]
        plans = [compiled_plan(scenario, run, dataflow, i)
                 for i, (run, dataflow) in enumerate(simulated)]
        emulated = emulate_plans(topology, [(r.label, p) for r, p in zip(runs, plans)],
                                 resources, netem=netem, queueing=queueing,
                                 progress=echo)
    if resources.leftovers:
        notes.append("cleanup left: " + ", ".join(resources.leftovers))
    transfers, tokens, computes, capacity = [], [], [], []
    for run, dataflow, plan, emu in zip(runs, dataflows, plans, emulated):
        joined = join_transfers(plan, run.records.flows, emu.tables["transfers"], topology)
        per_token = join_tokens(run.records.tokens, emu.tables["tokens"])
        for name, (by_xfer, by_token) in _corrected(scenario, run, dataflow, plan, emu,
                                                    topology).items():
            joined[f"sim_{name}_s"] = joined.xfer.map(by_xfer)
            per_token[f"sim_{name}_s"] = per_token.token.map(by_token)
        for frame in (joined, per_token, emu.tables["computes"], emu.tables["capacity"]):
            frame.insert(0, "partitioner", run.label)
        transfers.append(joined)
        tokens.append(per_token)
        computes.append(emu.tables["computes"])
        capacity.append(emu.tables["capacity"])
    transfers = pd.concat(transfers, ignore_index=True)
    tokens = pd.concat(tokens, ignore_index=True)
    computes = pd.concat(computes, ignore_index=True)
    capacity = pd.concat(capacity, ignore_index=True)
    rows = error_rows(transfers, tokens)
    for name in ("goodput", "headers"):
        rows += error_rows(transfers, tokens, suffix=f"+{name}", sim_column=f"sim_{name}_s")
    rows += compute_rows(computes)
    table = error_table(rows)
    table.to_csv(out / "validation.csv", index=False)
    transfers.to_csv(out / "transfers.csv", index=False)
    tokens.to_csv(out / "tokens.csv", index=False)
    computes.to_csv(out / "computes.csv", index=False)
    capacity.to_csv(out / "capacity_changes.csv", index=False)
    plot_validation(transfers, tokens, out / "validation.png",
                    title=f"{scenario.name}: simulated vs emulated (Mininet)")
    late = capacity[capacity.ok].applied_end_s - capacity[capacity.ok].at_s \
        if not capacity.empty else pd.Series(dtype=float)
    meta = {"scenario": scenario.name, "source": scenario.source, "seed": scenario.seed,
            "prefix": resources.prefix, "netem": netem, "queueing": queueing,
            "dataflows": {r.label: p.dataflow for r, p in zip(runs, plans)},
            "notes": notes,
            "kernel": platform.release(), "wall_s": time.perf_counter() - started,
            "emulated_wall_s": {e.label: e.wall_s for e in emulated},
            "capacity_change_delay_s": {"median": float(late.median()) if len(late) else None,
                                        "max": float(late.max()) if len(late) else None},
            "targets": target_status(table)}
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    echo("")
    echo(format_table(table))
    echo("")
    for line in target_lines(table):
        echo(line)
    echo(f"results in {out}/")
    return Validation(table, transfers, tokens, out, notes, resources.prefix,
                      sorted(resources.workers))


def targets_met(table: pd.DataFrame, targets: dict = TARGETS) -> bool:
    return all(info["met"] for info in target_status(table, targets).values())


def target_status(table: pd.DataFrame, targets: dict = TARGETS) -> dict:
    found = {}
    for metric, (column, limit) in targets.items():
        row = table[table.metric == metric]
        value = float(row[column].iloc[0]) if not row.empty else float("nan")
        found[metric] = {"statistic": column, "value": value, "limit": limit,
                         "met": bool(value <= limit)}
    return found


def target_lines(table: pd.DataFrame, targets: dict = TARGETS) -> list[str]:
    lines = []
    for metric, info in target_status(table, targets).items():
        stat = "median" if info["statistic"] == "median_err_pct" else "p90"
        lines.append(f"target {metric} {stat} error <= {info['limit']:g} %: "
                     f"{info['value']:.2f} % ({'met' if info['met'] else 'NOT met'})")
    return lines
