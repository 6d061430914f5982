"""Fidelity against a published measurement: one simulated run per row of a published table.

A fidelity file is a scenario template plus a ``fidelity:`` section::

    experiment: fidelity
    model: {name: llama-2-7b, overrides: {weight_dtype: q4_0, ...}}
    topology: {generator: star, hub: switch, bandwidth: "1 Gbit/s", latency: "0.5 us"}
    dataflow: root_sync
    partitioners: [slices]
    fidelity:
      device: raspberry-pi-4-8gb          # every node of every case
      source: "where the table is published"
      cases:
        - {setup: "Llama 2 7B, 2 x Pi 4B", devices: 2, published_ms: 793.69,
           published_inference_ms: 739.00, published_transfer_ms: 52.50,
           published_kib_sent: 590, published_kib_received: 522}
        - {setup: "Llama 2 13B, 1 x Pi 4B", model: llama-2-13b, devices: 1,
           published_outcome: "not enough memory"}

Each case runs the template with ``devices`` nodes (``<prefix>0`` .. named by ``prefix``,
default ``pi``; the first is the controller, the root), the case's ``model`` if it names
one (the template's overrides kept), and the model cut into one proj and ffn shard per
device. Nothing is fitted per case: every case uses the same devices, links and costs.

``fidelity.csv`` has one row per case: the published and simulated time per token (ms,
the mean over the generated tokens), the error, the root's time computing (``inference``)
and the rest (``transfer``: sending, receiving and waiting), the bytes the root sends and
receives per token (published in KiB, as the source prints bytes / 1024), and the outcome
(a case published as not fitting in memory agrees when the simulation finds no placement
that fits either).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandas as pd

from testbed.sim.records import completed
from testbed import config_values as cv
from testbed.errors import ConfigError, bad_value
from testbed.experiments.runner import run_scenario
from testbed.experiments.scenario import scenario_from_dict, with_setting

CASE_KEYS = ("setup", "model", "devices", "published_ms", "published_inference_ms",
             "published_transfer_ms", "published_kib_sent", "published_kib_received",
             "published_outcome", "notes")
SECTION_KEYS = ("device", "prefix", "source", "cases", "tolerance_pct")
OUT_OF_MEMORY = "not enough memory"
COLUMNS = ("setup", "model", "devices", "published_ms", "simulated_ms", "error_pct",
           "published_inference_ms", "simulated_inference_ms", "published_transfer_ms",
           "simulated_transfer_ms", "published_bytes_sent", "simulated_bytes_sent",
           "bytes_sent_error_pct", "published_bytes_received", "simulated_bytes_received",
           "bytes_received_error_pct", "published_outcome", "simulated_outcome", "agrees",
           "root_memory_bytes", "root_capacity_bytes")


@dataclass(frozen=True)
class FidelitySpec:
    name: str
    template: dict          # the scenario, without the fidelity section
    device: str
    prefix: str
    cases: tuple[dict, ...]
    tolerance_pct: float
    source_note: str
    resolved: dict


def load_fidelity_spec(data: dict, *, source: str, quick: bool = False, full: bool = False,
                       seed: int | None = None) -> FidelitySpec:
    """Check a fidelity file (every case's scenario is checked before anything runs)."""
    data = with_setting(data, source=source, quick=quick, full=full)
    section = cv.mapping(data.get("fidelity"), source=source, field="fidelity",
                         what="{device, cases, source}")
    cv.check_keys(section, SECTION_KEYS, source=source, field="fidelity",
                  required=("device", "cases"))
    template = {k: v for k, v in data.items() if k not in ("fidelity", "experiment")}
    if seed is not None:
        template["seed"] = seed
    cases = section["cases"]
    if not isinstance(cases, list) or not cases:
        raise bad_value(cases, "a non-empty list of cases", source=source,
                        field="fidelity.cases")
    prefix = cv.name(section.get("prefix", "pi"), source=source, field="fidelity.prefix")
    tolerance = section.get("tolerance_pct", 15.0)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or tolerance <= 0:
        raise bad_value(tolerance, "a positive percentage", source=source,
                        field="fidelity.tolerance_pct")
    checked = []
    for i, case in enumerate(cases):
        field = f"fidelity.cases[{i}]"
        case = cv.mapping(case, source=source, field=field, what="a published row")
        cv.check_keys(case, CASE_KEYS, source=source, field=field,
                      required=("setup", "devices"))
        n = case["devices"]
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise bad_value(n, "an integer >= 1", source=source, field=f"{field}.devices")
        if ("published_ms" in case) == ("published_outcome" in case):
            raise ConfigError("give exactly one of published_ms (a measured time) or "
                              "published_outcome (e.g. 'not enough memory')", source=source,
                              field=field)
        for key in CASE_KEYS[3:8]:
            value = case.get(key)
            if value is not None and (isinstance(value, bool) or
                                      not isinstance(value, (int, float)) or value < 0):
                raise bad_value(value, "a number >= 0", source=source, field=f"{field}.{key}")
        scenario_from_dict(case_scenario(template, section["device"], prefix, case),
                           source=source)
        checked.append(case)
    name = cv.name(data.get("name", "fidelity"), source=source, field="name")
    resolved = {**template, "experiment": "fidelity", "fidelity": {**section, "cases": checked}}
    return FidelitySpec(name, template, section["device"], prefix, tuple(checked),
                        float(tolerance), str(section.get("source", "")), resolved)


def case_scenario(template: dict, device: str, prefix: str, case: dict) -> dict:
    """The scenario of one case: ``devices`` nodes, the case's model, one shard each."""
    scenario = copy.deepcopy(template)
    n = case["devices"]
    names = [f"{prefix}{i}" for i in range(n)]
    topology = dict(scenario.get("topology") or {})
    topology["devices"] = [{"name": d, "device": device} for d in names]
    scenario["topology"] = topology
    model = scenario.get("model")
    entry = dict(model) if isinstance(model, dict) else {"name": model}
    if "model" in case:
        entry["name"] = case["model"]
    entry["overrides"] = {**(entry.get("overrides") or {}), "proj_shards": n, "ffn_shards": n}
    scenario["model"] = entry
    scenario["controller"] = {**(scenario.get("controller") or {}), "device": names[0],
                              "hosts_blocks": True}
    scenario["name"] = f"{scenario.get('name', 'fidelity')}-{case['setup']}"
    return scenario


def run_fidelity(spec: FidelitySpec, *, source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One run per case; returns (fidelity table, every case's tokens)."""
    rows, tokens = [], []
    for case in spec.cases:
        scenario = scenario_from_dict(case_scenario(spec.template, spec.device, spec.prefix,
                                                    case), source=source)
        result = run_scenario(scenario, record_jobs=True)
        rows.append(_row(case, scenario, result, spec.tolerance_pct))
        frame = result.tables["tokens"].copy()
        frame.insert(0, "setup", case["setup"])
        tokens.append(frame)
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    return table, pd.concat(tokens, ignore_index=True)


def _row(case: dict, scenario, result, tolerance: float) -> dict:
    root = scenario.sim.topology.controller
    outcome = next(iter(result.outcomes.values()))
    tables = result.tables
    row = {"setup": case["setup"], "model": scenario.sim.model.name, "devices": case["devices"],
           "published_ms": case.get("published_ms", np.nan),
           "published_inference_ms": case.get("published_inference_ms", np.nan),
           "published_transfer_ms": case.get("published_transfer_ms", np.nan),
           "published_bytes_sent": 1024.0 * case.get("published_kib_sent", np.nan),
           "published_bytes_received": 1024.0 * case.get("published_kib_received", np.nan),
           "published_outcome": case.get("published_outcome", "ok"),
           "root_capacity_bytes": scenario.sim.topology.devices[root].memory_bytes}
    memory = tables["memory"]
    held = memory[memory.device == root].used_bytes
    row["root_memory_bytes"] = float(held.max()) if len(held) else np.nan
    if not completed(outcome):
        row["simulated_outcome"] = OUT_OF_MEMORY if "would hold" in outcome else outcome
        row["agrees"] = row["simulated_outcome"] == row["published_outcome"]
        return row
    tokens = tables["tokens"]
    n = len(tokens)
    latency_ms = 1e3 * tokens.latency_s.mean()
    jobs = tables["jobs"]
    computing = jobs[(jobs.device == root) &
                     ~jobs.label.str.endswith((".send", ".recv"))]
    inference_ms = 1e3 * float((computing.end_s - computing.start_s).sum()) / n
    flows = tables["flows"]
    inference = flows[flows.kind == "inference"]
    sent = float(inference[inference.src == root].size_bytes.sum()) / n
    received = float(inference[inference.dst == root].size_bytes.sum()) / n
    oom = len(tables["oom"])
    row.update(simulated_ms=latency_ms, simulated_inference_ms=inference_ms,
               simulated_transfer_ms=latency_ms - inference_ms,
               simulated_bytes_sent=sent, simulated_bytes_received=received,
               simulated_outcome=OUT_OF_MEMORY if oom else "ok",
               error_pct=_error(latency_ms, row["published_ms"]),
               bytes_sent_error_pct=_error(sent, row["published_bytes_sent"]),
               bytes_received_error_pct=_error(received, row["published_bytes_received"]))
    if row["published_outcome"] != "ok" or oom:
        row["agrees"] = row["simulated_outcome"] == row["published_outcome"]
    else:
        row["agrees"] = bool(abs(row["error_pct"]) <= tolerance)
    return row


def _error(simulated: float, published: float) -> float:
    if not np.isfinite(published) or published == 0:
        return np.nan
    return 100.0 * (simulated - published) / published


def format_fidelity(table: pd.DataFrame) -> str:
    """The table as the terminal shows it."""
    lines = [f"{'setup':<34} {'published':>10} {'simulated':>10} {'error':>8} "
             f"{'transfer pub/sim':>17} {'sent KiB pub/sim':>17} {'recv KiB pub/sim':>17}",
             "-" * 120]
    for r in table.itertuples():
        if np.isfinite(r.published_ms) and np.isfinite(getattr(r, "simulated_ms", np.nan)):
            timing = f"{r.published_ms:>8.1f}ms {r.simulated_ms:>8.1f}ms {r.error_pct:>+7.1f}%"
        else:
            timing = f"{str(r.published_outcome):>10} {str(r.simulated_outcome):>10} {'':>8}"
        transfer = _pair(r.published_transfer_ms, getattr(r, "simulated_transfer_ms", np.nan),
                         1.0, "ms")
        sent = _pair(r.published_bytes_sent, r.simulated_bytes_sent, 1024.0, "")
        received = _pair(r.published_bytes_received, r.simulated_bytes_received, 1024.0, "")
        lines.append(f"{r.setup:<34} {timing} {transfer:>17} {sent:>17} {received:>17}")
    return "\n".join(lines)


def _pair(published: float, simulated: float, scale: float, unit: str) -> str:
    def one(value: float) -> str:
        return f"{value / scale:.1f}" if np.isfinite(value) else "-"
    return f"{one(published)}/{one(simulated)}{unit}"
