"""Helpers for the analysis notebooks: find results, or make them with a quick run.

Notebooks only read results and draw them with :mod:`testbed.experiments.plots`; when the
results folder does not exist yet, :func:`ensure_results` runs the experiment (its quick
setting by default) exactly as ``testbed run CONFIG --quick --out FOLDER`` would.
"""

from __future__ import annotations

import os
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


def results_root() -> Path:
    """Where notebooks look for results: ``$TESTBED_RESULTS`` or ``results/``."""
    return Path(os.environ.get("TESTBED_RESULTS", REPOSITORY / "results"))


def ensure_results(config: str, name: str, *, quick: bool | None = None) -> Path:
    """The results folder of ``config`` (relative to the repository), run if missing.

    ``quick`` defaults to ``$TESTBED_QUICK`` (set by the tests) or True.
    """
    from testbed.experiments.kinds import RunOptions, run_file

    if quick is None:
        quick = os.environ.get("TESTBED_QUICK", "1") != "0"
    out = results_root() / name
    marker = "gap_summary.csv" if (out / "gap_steps.csv").exists() else "summary.csv"
    if (out / marker).is_file():
        return out
    run_file(REPOSITORY / config, RunOptions(out=out, quick=quick, figures=False, force=True))
    return out


def topology_of(results: str | Path):
    """The topology a results folder ran on: its ``config.yaml``, or for a sweep the
    first run's (every run of a sweep file shares the file's topology unless the grid
    changes it)."""
    from testbed.experiments.scenario import load_scenario

    folder = Path(results)
    runs = sorted((folder / "runs").glob("*/config.yaml"))
    return load_scenario(runs[0] if runs else folder / "config.yaml").sim.topology
