"""Sweeps: one scenario run over a grid of settings and seeds, resumable.

A sweep file is a scenario (every scenario key) plus::

    experiment: sweep
    grid:                                  # dotted keys -> lists of values (all combinations)
      workload.decision_interval: [1, 4, 16]
      cases:                               # or/and: named override sets, crossed with the rest
        - {label: llama, model: llama-3.2-1b, cost: decode}
        - {label: paper, model: paper-large, cost: paper}
    seeds: [1, 2, 3]                       # or a count: 3 -> seeds 0, 1, 2

Every run's resolved scenario is hashed into its ``run_id``; its results go to
``OUT/runs/<run_id>/`` written atomically (a temporary folder renamed into place, a
``DONE`` marker last), so re-running the sweep skips the runs already finished and a run
that failed leaves an ``error.txt`` instead of stopping the sweep. At the end the runs'
tables are merged into ``OUT/<table>.csv`` with one column per grid key, ``case`` and
``seed``.

A run is computed by :func:`compute` (in this process, a pool worker or a Dask worker,
see :mod:`.sweep_backends`), which returns its files; :func:`store` writes them, always
in the process that drives the sweep, so a killed sweep leaves no half-written run.
"""

from __future__ import annotations

import copy
import itertools
import os
import shutil
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from testbed import config_values as cv
from testbed.errors import ConfigError, bad_value
from testbed.experiments.results import read_table
from testbed.experiments.results import run_id as hash_run
from testbed.experiments.scenario import deep_merge, with_setting

SWEEP_KEYS = ("grid", "seeds")
MERGED_TABLES = ("summary", "tokens", "migrations", "memory", "oom", "decisions", "devices",
                 "requests", "batches")


@dataclass(frozen=True)
class SweepRun:
    """One point of the grid: its scenario dict, its seed and its labels (column values)."""

    run_id: str
    scenario: dict
    labels: dict


def set_dotted(data: dict, key: str, value: object) -> dict:
    """``data`` with ``a.b.c`` set to ``value`` (mappings created on the way; a number
    indexes into a list, e.g. ``links.0.trace.file``)."""
    out = copy.deepcopy(data)
    node = out
    parts = key.split(".")
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"cannot set {key!r}: {part!r} is not an index of a list of "
                                  f"{len(node)}", field=key)
            part = int(part)
        elif not isinstance(node, dict):
            raise ConfigError(f"cannot set {key!r}: {parts[depth - 1]!r} is not a mapping",
                              field=key)
        if last:
            node[part] = copy.deepcopy(value)
        else:
            if isinstance(node, dict):
                node = node.setdefault(part, {})
            else:
                node = node[part]
    return out


def expand(data: dict, *, source: str, quick: bool = False, full: bool = False,
           seed: int | None = None) -> tuple[str, list[SweepRun]]:
    """The sweep's name and its runs, in a stable order."""
    data = with_setting(data, source=source, quick=quick, full=full)
    base = {k: v for k, v in data.items()
            if k not in SWEEP_KEYS + ("experiment", "quick", "full")}
    name = base.get("name", Path(source).stem)
    grid = cv.mapping(data.get("grid", {}), source=source, field="grid",
                      what="dotted keys -> lists of values")
    axes: list[tuple[str, list]] = []
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise bad_value(values, "a non-empty list of values", source=source,
                            field=f"grid.{key}")
        if key == "cases":
            for i, case in enumerate(values):
                cv.mapping(case, source=source, field=f"grid.cases[{i}]",
                           what="scenario overrides with a 'label'")
        axes.append((key, values))
    seeds = data.get("seeds", [base.get("seed", 0)])
    if seed is not None:
        seeds = [seed]
    elif isinstance(seeds, int) and not isinstance(seeds, bool) and seeds >= 1:
        seeds = list(range(seeds))
    if not isinstance(seeds, list) or not seeds or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise bad_value(seeds, "a list of seeds (integers >= 0) or a count", source=source,
                        field="seeds")
    runs = []
    for combo in itertools.product(*[values for _, values in axes], seeds):
        scenario = copy.deepcopy(base)
        labels: dict[str, object] = {}
        for (key, _), value in zip(axes, combo[:-1]):
            if key == "cases":
                case = dict(value)
                labels["case"] = str(case.pop("label", len(labels)))
                scenario = deep_merge(scenario, case)
            else:
                scenario = set_dotted(scenario, key, value)
                labels[key] = value if isinstance(value, (int, float, str, bool)) else str(value)
        scenario["seed"] = combo[-1]
        labels["seed"] = combo[-1]
        runs.append(SweepRun(hash_run(scenario), scenario, labels))
    return name, runs


def unique_runs(runs: list[SweepRun]) -> list[SweepRun]:
    """``runs`` without repeats of a ``run_id`` (two grid points that resolve to the same
    scenario are one run), first occurrence kept."""
    seen: set[str] = set()
    out = []
    for run in runs:
        if run.run_id not in seen:
            seen.add(run.run_id)
            out.append(run)
    return out


def run_folder(out: Path, run: SweepRun) -> Path:
    return out / "runs" / run.run_id


def is_done(out: Path, run: SweepRun) -> bool:
    return (run_folder(out, run) / "DONE").is_file()


@dataclass(frozen=True)
class RunOutput:
    """What one run produced: ``"ok"`` or the error text, and its files (name -> bytes)."""

    outcome: str
    files: dict[str, bytes]


def compute(run: SweepRun, source: str, *, figures: bool = False) -> RunOutput:
    """Run one point in a private temporary folder and return its files.

    Everything comes from ``run.scenario`` (its seed included) and ``source`` (where
    relative paths start): any process, pool worker or Dask worker gives the same bytes.
    A failed run is an outcome (``error: ...``, with ``error.txt`` and ``traceback.txt``),
    never an exception."""
    from testbed.experiments.results import write_results
    from testbed.experiments.runner import run_scenario
    from testbed.experiments.scenario import scenario_from_dict

    with tempfile.TemporaryDirectory(prefix=f"testbed-run-{run.run_id}-") as tmp, \
            tempfile.TemporaryDirectory(prefix="testbed-spool-") as spool:
        scratch = Path(tmp)
        try:
            scenario = scenario_from_dict(copy.deepcopy(run.scenario), source=source)
            result = run_scenario(scenario, spool=Path(spool))   # large tables on disk
            write_results(result, scratch, figures=figures)
            outcome = "ok"
        except ConfigError as error:
            outcome = f"error: {error}"
        except Exception:  # a failed run is a record, not the end of the sweep
            outcome = "error: " + traceback.format_exc(limit=3).strip().splitlines()[-1]
            (scratch / "traceback.txt").write_text(traceback.format_exc(), encoding="utf-8")
        files = {path.name: path.read_bytes() for path in sorted(scratch.iterdir())
                 if path.is_file()}
    files["labels.csv"] = pd.DataFrame([run.labels]).to_csv(index=False).encode("utf-8")
    if outcome != "ok":
        files["error.txt"] = (outcome + "\n").encode("utf-8")
    return RunOutput(outcome, files)


def store(out: Path, run: SweepRun, output: RunOutput) -> str:
    """Write the run's folder atomically (a temporary folder beside it, the files, the
    ``DONE`` marker last, then a rename); returns the run's outcome."""
    final = run_folder(out, run)
    final.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{run.run_id}.", dir=final.parent))
    try:
        for name, data in output.files.items():
            (scratch / name).write_bytes(data)
        (scratch / "DONE").write_text(output.outcome + "\n", encoding="utf-8")
        if final.exists():
            shutil.rmtree(final)
        os.replace(scratch, final)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    return output.outcome


def execute(run: SweepRun, out: Path, source: str, *, figures: bool = False) -> str:
    """Run one point and write its folder atomically; returns "ok", the error text, or
    "skipped" if it was already done."""
    if is_done(out, run):
        return "skipped"
    return store(out, run, compute(run, source, figures=figures))


def clean_partial(out: Path) -> int:
    """Remove the temporary folders that an interrupted sweep left in ``OUT/runs/`` (a
    sweep killed while writing a run); returns how many. One sweep per folder at a time."""
    runs = out / "runs"
    if not runs.is_dir():
        return 0
    stale = [path for path in runs.iterdir() if path.name.startswith(".") and path.is_dir()]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return len(stale)


def merge(out: Path, runs: list[SweepRun]) -> dict[str, pd.DataFrame]:
    """Concatenate every finished run's tables, with the run's labels as columns."""
    merged: dict[str, list[pd.DataFrame]] = {name: [] for name in MERGED_TABLES}
    failures = []
    for run in runs:
        folder = run_folder(out, run)
        if (folder / "error.txt").is_file():
            failures.append({**run.labels, "run_id": run.run_id,
                             "error": (folder / "error.txt").read_text().strip()})
            continue
        for name in MERGED_TABLES:
            path = folder / f"{name}.csv"
            if not path.is_file():
                continue
            frame = pd.read_csv(path)
            for column, value in reversed(list(run.labels.items())):
                frame.insert(0, column, value)
            frame.insert(0, "run_id", run.run_id)
            merged[name].append(frame)
    tables = {name: pd.concat(frames, ignore_index=True) for name, frames in merged.items()
              if frames}
    for name, frame in tables.items():
        frame.to_csv(out / f"{name}.csv", index=False)
    failed = pd.DataFrame(failures)
    if not failed.empty:
        failed.to_csv(out / "failures.csv", index=False)
    return tables


def load_runs_table(out: str | Path, name: str) -> pd.DataFrame:
    """One table (e.g. ``flows``, not merged by default for its size) of every finished
    run of the sweep in ``out``, with the runs' labels as columns."""
    frames = []
    for folder in sorted((Path(out) / "runs").iterdir()):
        if not (folder / "DONE").is_file() or not any(
                (folder / f"{name}.{ext}").is_file() for ext in ("parquet", "csv")):
            continue
        frame = read_table(folder, name)
        labels = pd.read_csv(folder / "labels.csv").iloc[0].to_dict()
        for column, value in reversed(list(labels.items())):
            frame.insert(0, column, value)
        frame.insert(0, "run_id", folder.name)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
