"""A results folder: resolved config, tidy tables, summary, metadata, figures.

Layout of ``results/<scenario>/<run_id>/``::

    config.yaml      the scenario with every default filled in (re-runnable as is)
    meta.json        seed, versions (testbed, its git commit, Python, libraries), wall time,
                     the outcome (overall and per partitioner) and any exception
    DONE             written last: the folder is complete
    summary.csv      one row per partitioner
    tokens.csv       one row per generated token      flows.parquet   one row per transfer
    migrations.csv   one row per migrated block       memory.csv      one row per device sample
    oom.csv          one row per out-of-memory event  decisions.csv   one row per decision
    devices.csv      one row per device (busy time)   requests.csv    one row per served request
    batches.csv      one row per iteration of a batch (requests running / waiting)
    latency.png/pdf  per-token latency over the run, per partitioner (served requests:
                     the distributions of TTFT and TPOT)

``run_id`` is a hash of the resolved config, so the same scenario and seed always land in
the same folder. A folder is written whole or not at all (:func:`results_folder`: a
temporary folder beside it, ``DONE`` last, then a rename), and an existing results folder
is only replaced when asked (``--force``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import yaml

import testbed
from testbed.experiments.runner import RunResult
from testbed.sim.records import TABLE_NAMES
from testbed.experiments.scenario import Scenario

TABLES = TABLE_NAMES
#: Tables written as Parquet (the large ones: a million rows and more in a long run; a
#: tenth of the CSV's size, typed); the others as CSV. :func:`read_table` reads either.
PARQUET_TABLES = ("flows", "jobs")
SERVING_TABLES = ("requests", "batches")   # written only when requests were served


def run_id(resolved: dict) -> str:
    """A short stable hash of a resolved scenario."""
    text = json.dumps(resolved, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def default_out_dir(run: RunResult | Scenario, root: str | Path = "results") -> Path:
    """``results/<scenario>/<run_id>`` for a :class:`RunResult` or a scenario."""
    scenario = run.scenario if isinstance(run, RunResult) else run
    return Path(root) / scenario.name / run_id(scenario.resolved)


def check_free(out: str | Path, *, force: bool = False) -> None:
    """Refuse to write into ``out`` when it already holds something, unless ``force``."""
    from testbed.errors import ConfigError
    out = Path(out)
    if out.exists() and not force and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError("already exists; give another --out, or --force to replace it",
                          source=str(out), field="--out")


@contextlib.contextmanager
def results_folder(out: str | Path, *, force: bool = False) -> Iterator[Path]:
    """A temporary folder beside ``out`` to write into; on success ``DONE`` is written
    last and it replaces ``out`` in one rename. On any error (an exception, Ctrl-C) it is
    removed and ``out`` is left as it was."""
    from testbed.errors import ConfigError
    out = Path(out)
    check_free(out, force=force)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    except OSError as error:
        raise ConfigError(f"cannot write the results: {error.strerror or error}",
                          source=str(out), field="--out") from None
    try:
        yield scratch
        (scratch / "DONE").write_text("complete\n", encoding="utf-8")
        if out.is_dir() and not out.is_symlink():
            shutil.rmtree(out)
        elif out.exists():
            out.unlink()
        os.replace(scratch, out)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def is_complete(folder: str | Path) -> bool:
    """Whether ``folder`` was written whole (its ``DONE`` marker is there)."""
    return (Path(folder) / "DONE").is_file()


def overall_outcome(outcomes: dict[str, str]) -> str:
    """One word for a run's outcomes: ok, oom, infeasible, stalled (the worst of them)."""
    words = {outcome.split()[0].rstrip(":") for outcome in outcomes.values()} or {"ok"}
    for word in ("error", "stalled", "infeasible", "oom"):
        if word in words:
            return word
    return "ok"


def write_results(result: RunResult, out_dir: str | Path, *, figures: bool = True) -> Path:
    """Write every table, the summary, the config and the figures into ``out_dir`` (a
    folder of its own: see :func:`results_folder` for writing it whole)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_config(out, result.scenario.resolved)
    result.summary.to_csv(out / "summary.csv", index=False)
    keep = result.scenario.output_tables
    for name in TABLES:
        if keep is not None and name not in keep:     # the scenario's output.tables
            continue
        if name in result.spooled:      # written as the runs went: joined here
            _join_parquet(result.spooled[name], out / f"{name}.parquet",
                          keep_empty=name == "flows")
            continue
        frame = result.tables.get(name)
        if frame is None or (name in ("jobs",) + SERVING_TABLES and frame.empty):
            continue
        if name in PARQUET_TABLES:
            frame.to_parquet(out / f"{name}.parquet", index=False)
        else:
            frame.to_csv(out / f"{name}.csv", index=False)
    write_meta(out, name=result.scenario.name, source=result.scenario.source,
               seed=result.scenario.seed, resolved=result.scenario.resolved,
               wall_s=result.wall_s, outcome=overall_outcome(result.outcomes),
               outcomes=result.outcomes)
    if figures:
        title = f"{result.scenario.name}: {result.scenario.sim.model.name}"
        if not result.tables["requests"].empty:     # served requests: their latencies
            from testbed.experiments.serving_plots import plot_request_latency
            plot_request_latency(result.tables["tokens"], out / "latency.png", title=title)
        else:
            from testbed.experiments.plots import plot_latency
            plot_latency(result.tables["tokens"], out / "latency.png", title=title)
    return out


def _join_parquet(parts: list[Path], path: Path, *, keep_empty: bool) -> None:
    """One Parquet file of ``parts`` (same columns), one part in memory at a time; with
    no parts, an empty flows table (``keep_empty``) or nothing."""
    import pyarrow.parquet as pq
    if not parts:
        if keep_empty:
            import pandas as pd
            from testbed.sim.network import FlowRecord
            pd.DataFrame(columns=["partitioner", *FlowRecord._fields]).to_parquet(
                path, index=False)
        return
    writer = None
    try:
        for part in parts:
            source = pq.ParquetFile(part)
            if writer is None:
                writer = pq.ParquetWriter(path, source.schema_arrow)
            for group in range(source.num_row_groups):
                writer.write_table(source.read_row_group(group).cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()


def read_table(folder: str | Path, name: str):
    """Table ``name`` of a results folder (``name.parquet`` or ``name.csv``)."""
    import pandas as pd
    folder = Path(folder)
    if (folder / f"{name}.parquet").is_file():
        return pd.read_parquet(folder / f"{name}.parquet")
    return pd.read_csv(folder / f"{name}.csv")


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
    versions = {"testbed": testbed.__version__, "python": platform.python_version(),
                "simpy": simpy.__version__, "numpy": numpy.__version__,
                "pandas": pandas.__version__, "networkx": networkx.__version__}
    commit = git_commit()
    if commit:
        versions["testbed_commit"] = commit
    return versions


def git_commit() -> str | None:
    """The git commit of the checkout testbed runs from (``+dirty`` with local changes), or
    None when it is not a git checkout (an installed package)."""
    here = Path(testbed.__file__).resolve().parent.parent
    if not (here / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
