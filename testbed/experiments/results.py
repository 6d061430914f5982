"""A results folder: resolved config, tidy tables, summary, metadata, figures.

Layout of ``results/<scenario>/<run_id>/``::

    config.yaml      the scenario with every default filled in (re-runnable as is)
    meta.json        seed, versions, wall time, outcome per partitioner
    summary.csv      one row per partitioner
    tokens.csv       one row per generated token      flows.csv       one row per transfer
    migrations.csv   one row per migrated block       memory.csv      one row per device sample
    oom.csv          one row per out-of-memory event  decisions.csv   one row per decision
    devices.csv      one row per device (busy time)   requests.csv    one row per served request
    batches.csv      one row per iteration of a batch (requests running / waiting)
    latency.png/pdf  per-token latency over the run, per partitioner (served requests:
                     the distributions of TTFT and TPOT)

``run_id`` is a hash of the resolved config, so the same scenario and seed always land in
the same folder.
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path

import yaml

import testbed
from testbed.experiments.runner import RunResult

TABLES = ("tokens", "flows", "migrations", "memory", "oom", "decisions", "jobs", "devices",
          "requests", "batches")
SERVING_TABLES = ("requests", "batches")   # written only when requests were served


def run_id(resolved: dict) -> str:
    """A short stable hash of a resolved scenario."""
    text = json.dumps(resolved, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def default_out_dir(result: RunResult, root: str | Path = "results") -> Path:
    return Path(root) / result.scenario.name / run_id(result.scenario.resolved)


def write_results(result: RunResult, out_dir: str | Path, *, figures: bool = True) -> Path:
    """Write every table, the summary, the config and the figures into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # a re-run into the same folder must not leave our older files beside the new ones
    for stale in ("jobs.csv", "requests.csv", "batches.csv", "latency.png", "latency.pdf"):
        (out / stale).unlink(missing_ok=True)
    write_config(out, result.scenario.resolved)
    result.summary.to_csv(out / "summary.csv", index=False)
    for name in TABLES:
        frame = result.tables.get(name)
        if frame is None or (name in ("jobs",) + SERVING_TABLES and frame.empty):
            continue
        frame.to_csv(out / f"{name}.csv", index=False)
    write_meta(out, name=result.scenario.name, source=result.scenario.source,
               seed=result.scenario.seed, resolved=result.scenario.resolved,
               wall_s=result.wall_s, outcomes=result.outcomes)
    if figures:
        title = f"{result.scenario.name}: {result.scenario.model.name}"
        if not result.tables["requests"].empty:     # served requests: their latencies
            from testbed.experiments.serving_plots import plot_request_latency
            plot_request_latency(result.tables["tokens"], out / "latency.png", title=title)
        else:
            from testbed.experiments.plots import plot_latency
            plot_latency(result.tables["tokens"], out / "latency.png", title=title)
    return out


def write_config(out: Path, resolved: dict) -> None:
    """The resolved config, re-runnable as it is."""
    with open(out / "config.yaml", "w", encoding="utf-8") as handle:
        yaml.safe_dump(resolved, handle, sort_keys=False)


def write_meta(out: Path, *, name: str, source: str, seed: int, resolved: dict,
               wall_s: float, **extra) -> None:
    """Seed, versions, wall time and whatever else describes how the run went."""
    meta = {"scenario": name, "source": source, "seed": seed, "run_id": run_id(resolved),
            "wall_s": wall_s, **extra, "versions": _versions()}
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def _versions() -> dict[str, str]:
    import networkx
    import numpy
    import pandas
    import simpy
    return {"testbed": testbed.__version__, "python": platform.python_version(),
            "simpy": simpy.__version__, "numpy": numpy.__version__,
            "pandas": pandas.__version__, "networkx": networkx.__version__}
