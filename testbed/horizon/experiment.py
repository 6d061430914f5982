"""``experiment: regret``: regret against the horizon optimum over a grid of scenarios.

A regret file is a sweep file (a scenario, ``grid`` and ``seeds``; see
:mod:`testbed.experiments.sweep`) plus a ``horizon`` section::

    experiment: regret
    horizon: {exact_limit: 4096, candidates: registered}

Every grid point and seed is one scenario; :func:`~testbed.horizon.regret.scenario_regret`
gives a row per partitioner, and the rows of all points, with a column per grid key,
``case`` and ``seed``, make ``regret.csv``.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from testbed.experiments.scenario import scenario_from_dict
from testbed.experiments.sweep import expand, unique_runs
from testbed.horizon.regret import REGRET_COLUMNS, HorizonSpec, parse_horizon, scenario_regret

SUMMARY_COLUMNS = ["total_time_s", "optimum_time_s", "regret_s", "regret_pct",
                   "simulated_time_s", "migrations", "optimum_migrations"]


def load_regret_spec(data: dict, *, source: str, quick: bool = False, full: bool = False,
                     seed: int | None = None) -> tuple[str, list, HorizonSpec, dict]:
    """The experiment's name, its runs (checked), its ``horizon`` section and the resolved
    file."""
    data = dict(data)
    horizon = data.pop("horizon", None)
    for setting in ("quick", "full"):   # a setting may change the horizon section too
        flag = quick if setting == "quick" else full
        if flag and isinstance(data.get(setting), dict) and "horizon" in data[setting]:
            data[setting] = dict(data[setting])
            horizon = data[setting].pop("horizon")
    spec = parse_horizon(horizon, source=source)
    name, runs = expand(data, source=source, quick=quick, full=full, seed=seed)
    runs = unique_runs(runs)
    for run in runs:     # every grid point is checked before anything runs
        scenario_from_dict(dict(run.scenario), source=source)
    resolved = {**{k: v for k, v in data.items() if k not in ("quick", "full")},
                "horizon": {"exact_limit": spec.exact_limit, "candidates": spec.candidates},
                "runs": [r.run_id for r in runs]}
    return name, runs, spec, resolved


def run_regret(runs: list, spec: HorizonSpec, *, source: str,
               progress: Callable[[], None] | None = None) -> pd.DataFrame:
    """``regret.csv``'s table: a row per partitioner and run, grid columns first."""
    frames = []
    for run in runs:
        scenario = scenario_from_dict(dict(run.scenario), source=source)
        table = scenario_regret(scenario, spec)
        for i, (key, value) in enumerate(run.labels.items()):
            table.insert(i, key, value)
        frames.append(table)
        if progress is not None:
            progress()
    if not frames:
        return pd.DataFrame(columns=REGRET_COLUMNS)
    return pd.concat(frames, ignore_index=True)


def summarise_regret(table: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per grid point and partitioner, with the optimum's kind."""
    keys = [c for c in table.columns if c not in REGRET_COLUMNS and c != "seed"]
    grouped = table.groupby(keys + ["partitioner", "optimum_kind"], sort=False, dropna=False)
    summary = grouped[SUMMARY_COLUMNS].mean().reset_index()
    summary.insert(len(keys) + 2, "runs", grouped.size().to_numpy())
    return summary


def format_regret(summary: pd.DataFrame) -> str:
    """The summary as a short text table (regret in % and s)."""
    keys = [c for c in summary.columns if c not in SUMMARY_COLUMNS and
            c not in ("partitioner", "optimum_kind", "runs")]
    shown = summary[keys + ["partitioner", "optimum_kind", "regret_pct", "regret_s",
                            "migrations", "optimum_migrations"]].copy()
    shown.columns = [c.rsplit(".", 1)[-1] for c in keys] + [
        "partitioner", "optimum", "regret %", "regret s", "migrations", "optimum migr."]
    return shown.to_string(index=False, float_format=lambda v: f"{v:.3g}")
