"""``testbed validate ns3 SCENARIO.yaml --out DIR``: the simulator against ns-3.

For each partitioner of the scenario: simulate it (as ``validate mininet`` does), compile
the task graphs it executed into the per-token plan (:mod:`testbed.emulation.plan`), and
execute that plan in ns-3 at packet level (:mod:`.build`, :mod:`.execute`): point-to-point
links for wired links, an 802.11 BSS per medium, TCP on persistent connections, the wired
links' capacity series replayed. Then join both per transfer and per token
(:mod:`testbed.emulation.compare`): the error of an item is ``100 * (simulated - ns-3) /
ns-3`` (%).

An 802.11 hop in ns-3 has no latency beyond its air time, so the simulation is run with the
latency of media links set to 0 (the output says so). Every ns-3 setting is the scenario's
``ns3:`` section (:mod:`.settings`).

Writes into ``DIR``: ``validation.csv`` (``metric, n, median_err_pct, p90_err_pct``; rows
``transfer_time``, ``token_latency``, per-size and per-technology rows), ``transfers.csv``,
``tokens.csv``, ``validation.png`` (scatter, log-log, y = x), ``meta.json`` (settings,
ns-3 version, wall times), and what ns-3 was given and said (``ns3-in.json``,
``ns3-out.json``, ``ns3.log``).
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from testbed.emulation.compare import (MIN_BYTES, error_row, error_rows, error_table,
                                       format_table, join_tokens, join_transfers)
from testbed.emulation.executor import EmulatedRun, emulated_tables
from testbed.emulation.figures import plot_validation
from testbed.emulation.ns3.build import Ns3Unsupported, network_description, plan_description
from testbed.emulation.ns3.settings import settings_from_config
from testbed.emulation.validate import (Validation, check_supported, compiled_plan,
                                        results_folder, simulations, target_lines, target_status)
from testbed.errors import ConfigError
from testbed.experiments.scenario import load_scenario, partitioner_label

#: Targets against ns-3 (issue 11): per-transfer median and per-token p90 error, in %.
TARGETS = {"transfer_time": ("median_err_pct", 10.0), "token_latency": ("p90_err_pct", 10.0)}
INSTALL_HINT = ("pip install -e '.[ns3]' (the ns3 wheel, Python 3.11 on x86_64 Linux; it "
                "builds cppyy from source on install: a C++ compiler and the Python headers, "
                "about 2 minutes)")


class Ns3Unavailable(RuntimeError):
    """The ns-3 backend cannot run on this machine (the message says why)."""


def unavailable_reason() -> str | None:
    """Why the ns-3 backend cannot run here, or None if it can."""
    if importlib.util.find_spec("ns") is None or importlib.util.find_spec("cppyy") is None:
        return f"the ns3 package is not installed; {INSTALL_HINT}"
    return None


def _say(text: str = "") -> None:
    print(text, flush=True)


def media_without_latency(topology):
    """A copy of ``topology`` whose media links have no latency (an 802.11 hop in ns-3 has
    none beyond its air time); wired links keep theirs."""
    members = set().union(*(m.members for m in topology.media.values())) \
        if topology.media else set()
    new = copy.copy(topology)
    new.links = {key: dataclasses.replace(link, latency_s=0.0) if key in members else link
                 for key, link in topology.links.items()}
    return new


def execute(network: dict, plans: list[dict], folder: Path) -> list[dict]:
    """Run the plans in a child process (:mod:`.execute`); its records per plan."""
    source, target = folder / "ns3-in.json", folder / "ns3-out.json"
    source.write_text(json.dumps({"network": network, "plans": plans}), encoding="utf-8")
    log = folder / "ns3.log"
    with open(log, "wb") as handle:
        proc = subprocess.run([sys.executable, "-m", "testbed.emulation.ns3.execute",
                               str(source), str(target)], stdout=handle,
                              stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0 or not target.exists():
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(f"ns-3 failed (exit {proc.returncode}): " + " | ".join(tail))
    return json.loads(target.read_text(encoding="utf-8"))["runs"]


def validate_ns3(path: str | Path, out: str | Path, *, quick: bool = False,
                 full: bool = False, seed: int | None = None, echo=_say) -> Validation:
    reason = unavailable_reason()
    if reason is not None:
        raise Ns3Unavailable(reason)
    started = time.perf_counter()
    scenario = load_scenario(path, quick=quick, full=full, seed=seed)
    check_supported(scenario, backend="ns-3")
    settings = settings_from_config(scenario.resolved.get("ns3"), source=scenario.source)
    out = results_folder(out)
    notes = []
    topology = media_without_latency(scenario.sim.topology)
    try:                        # what ns-3 cannot build is refused before anything runs
        network_description(topology, settings, horizon_s=0.0)
    except Ns3Unsupported as error:
        raise ConfigError(str(error), source=scenario.source, field="topology") from None
    if topology.media:
        notes.append("802.11 hops have no latency in ns-3 beyond their air time: the "
                     "simulation is compared with the latency of media links set to 0")
    echo(f"validating {scenario.name} against ns-3: {scenario.sim.model.name} "
         f"({scenario.sim.model.n_layers} layers, cost {scenario.sim.cost.name}) on "
         f"{len(topology.devices)} devices ({topology.name}, {len(topology.media)} "
         f"media), {scenario.sim.generate_tokens} tokens, partitioners "
         f"{', '.join(partitioner_label(p) for p in scenario.partitioners)}")
    for note in notes:
        echo(note)
    simulated = simulations(scenario, topology)
    plans = [compiled_plan(scenario, run, dataflow, i)
             for i, (run, dataflow) in enumerate(simulated)]
    horizon = max(30.0 + 4.0 * plan.sim_duration_s for plan in plans)
    try:
        network = network_description(topology, settings, horizon)
    except Ns3Unsupported as error:
        raise ConfigError(str(error), source=scenario.source, field="topology") from None
    described = [plan_description(plan, network["nodes"]) for plan in plans]
    echo(f"running ns-3: {sum(len(p.transfers) for p in plans)} transfers in "
         f"{len(plans)} plans ({len(network['p2p'])} point-to-point links, "
         f"{len(network['bss'])} BSSs, {len(network['changes'])} capacity changes)")
    runs = execute(network, described, out)
    transfers, tokens, spread = [], [], []
    for (run, _), plan, results in zip(simulated, plans, runs):
        joined, per_token = [], []
        for result in results:
            if result["error"]:
                raise RuntimeError(f"ns-3 run of {run.label}: {result['error']}")
            tables = emulated_tables(plan, EmulatedRun(0.0, result["results"],
                                                       result["wall_s"]))
            joined.append(join_transfers(plan, run.records.flows, tables["transfers"],
                                         topology))
            per_token.append(join_tokens(run.records.tokens, tables["tokens"]))
        if len(results) > 1:
            spread.append((_second_against_first(joined, "xfer"),
                           _second_against_first(per_token, "token")))
        joined, per_token = _median_of(joined, "xfer"), _median_of(per_token, "token")
        for frame in (joined, per_token):
            frame.insert(0, "partitioner", run.label)
        transfers.append(joined)
        tokens.append(per_token)
    transfers = pd.concat(transfers, ignore_index=True)
    tokens = pd.concat(tokens, ignore_index=True)
    rows = error_rows(transfers, tokens)
    if spread:
        real = pd.concat([t for t, _ in spread])
        real = real[real.size_bytes >= MIN_BYTES]
        rows += [error_row("transfer_time[ns-3 run 2 vs 1]", real.err),
                 error_row("token_latency[ns-3 run 2 vs 1]",
                           pd.concat([k for _, k in spread]).err)]
    table = error_table(rows)
    table.to_csv(out / "validation.csv", index=False)
    transfers.to_csv(out / "transfers.csv", index=False)
    tokens.to_csv(out / "tokens.csv", index=False)
    plot_validation(transfers, tokens, out / "validation.png",
                    title=f"{scenario.name}: simulated vs ns-3 (packet level)",
                    reference="ns-3")
    meta = {"scenario": scenario.name, "source": scenario.source, "seed": scenario.seed,
            "backend": "ns-3", "ns3_version": _ns3_version(), "settings": settings.as_dict(),
            "network": {k: network[k] for k in ("p2p", "bss")},
            "dataflows": {r.label: p.dataflow for (r, _), p in zip(simulated, plans)},
            "notes": notes, "wall_s": time.perf_counter() - started,
            "ns3_wall_s": {r.label: [rep["wall_s"] for rep in res]
                           for (r, _), res in zip(simulated, runs)},
            "targets": target_status(table, TARGETS)}
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    echo("")
    echo(format_table(table))
    echo("")
    for line in target_lines(table, TARGETS):
        echo(line)
    echo(f"results in {out}/")
    return Validation(table, transfers, tokens, out, notes, "", [])


def _median_of(frames: list[pd.DataFrame], key: str) -> pd.DataFrame:
    """The first replication's rows with ``emu_s`` the median over all replications (and
    the error recomputed from it)."""
    first = frames[0].copy()
    if len(frames) > 1:
        times = pd.concat([f.set_index(key).emu_s for f in frames], axis=1)
        first["emu_s"] = first[key].map(times.median(axis=1))
        first["err_pct"] = 100 * (first.sim_s - first.emu_s) / first.emu_s
    return first


def _second_against_first(frames: list[pd.DataFrame], key: str) -> pd.DataFrame:
    """Per item, ``err`` = 100 (run 2 - run 1) / run 1 (%), and its size if any."""
    a, b = frames[0].set_index(key), frames[1].set_index(key)
    out = pd.DataFrame({"err": 100 * (b.emu_s - a.emu_s) / a.emu_s})
    if "size_bytes" in a:
        out["size_bytes"] = a.size_bytes
    return out


def _ns3_version() -> str:
    try:
        from importlib.metadata import version
        return version("ns3")
    except Exception:  # noqa: BLE001 - only informative
        return "unknown"
