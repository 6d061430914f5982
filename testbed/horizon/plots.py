"""The figure of a regret experiment: regret and placement changes against the grid key."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from testbed.experiments.plots import _save, plt, same_as_labels, series_styles, sns
from testbed.experiments.sweep_plots import grid_keys, numeric_key
OPTIMUM = "horizon optimum"


def plot_regret(table: pd.DataFrame, path: str | Path, *, title: str = "") -> Path:
    """Regret (% of the optimum's time) and placement changes per run of each partitioner
    against the first numeric grid key (mean over seeds): a column per ``case``, a pair of
    rows per value of the other grid keys (e.g. the model size, which decides whether the
    optimum is exact). Each panel's legend names the lines drawn exactly under another."""
    from testbed.horizon.regret import REGRET_COLUMNS

    path = Path(path)
    sns.set_theme(style="whitegrid", context="notebook")
    keys = grid_keys(table, set(REGRET_COLUMNS))
    x = numeric_key(table, keys) or "workload.decision_interval"
    if x not in table.columns:
        raise ValueError("a regret figure needs a numeric grid key with three values or more")
    data = table.assign(**{x: pd.to_numeric(table[x])})
    columns = list(dict.fromkeys(data["case"])) if "case" in keys else [None]
    row_keys = [k for k in keys if k not in (x, "case")]
    groups = [tuple(g) if isinstance(g, tuple) else (g,) for g in
              dict.fromkeys(data[row_keys].itertuples(index=False, name=None))] \
        if row_keys else [()]
    partitioners = list(dict.fromkeys(data.partitioner))
    styles = series_styles(partitioners + [OPTIMUM])
    styles[OPTIMUM] = {"color": "black", "marker": "", "linestyle": (0, (6, 2)),
                       "linewidth": 2.2}
    metrics = (("regret_pct", "regret (% of the optimum)"),
               ("migrations", "placement changes per run"))
    fig, axes = plt.subplots(2 * len(groups), len(columns), squeeze=False,
                             figsize=(5.2 * len(columns), 3.3 * 2 * len(groups)))
    for g, group in enumerate(groups):
        subset = data
        for key, value in zip(row_keys, group):
            subset = subset[subset[key] == value]
        kinds = ", ".join(sorted(set(subset.optimum_kind)))
        where = ", ".join(f"{k.rsplit('.', 1)[-1]} = {v}" for k, v in zip(row_keys, group))
        for c, case in enumerate(columns):
            part = subset if case is None else subset[subset["case"] == case]
            means = part.groupby(["partitioner", x], sort=False).mean(numeric_only=True)
            optimum = part.groupby(x).optimum_migrations.mean()
            for m, (column, label) in enumerate(metrics):
                ax = axes[2 * g + m][c]
                names = same_as_labels(means, partitioners, [column])
                for name in partitioners:
                    if name in means.index.get_level_values(0):
                        line = means.loc[name].sort_index()
                        style = styles[name]
                        ax.plot(line.index, line[column], label=names[name], markersize=5,
                                linewidth=1.3, **style)
                if column == "migrations":
                    ax.plot(optimum.index, optimum.values, label=OPTIMUM, **styles[OPTIMUM])
                ax.set_xscale("log", base=2)
                ax.set_xticks(sorted(set(data[x])), [f"{v:g}" for v in sorted(set(data[x]))])
                ax.set_xlabel(x.rsplit(".", 1)[-1].replace("_", " "))
                ax.set_ylabel(label)
                top = ax.get_ylim()[1]
                ax.set_ylim(-0.03 * top, top * 1.05)   # lines at 0 stay visible
                ax.legend(fontsize="x-small", loc="best", frameon=True, framealpha=0.8)
                if m == 0:
                    heading = " | ".join(str(s) for s in (case, where) if s)
                    ax.set_title(f"{heading}\n(optimum: {kinds})" if heading
                                 else f"optimum: {kinds}", fontsize="small")
    runs = data.groupby(["partitioner", x] + (["case"] if "case" in keys else []) +
                        row_keys).size()
    n = int(runs.min()) if len(runs) else 0
    fig.suptitle((title or "Regret against the horizon optimum") +
                 f" (mean of n = {n} seed(s) per point)")
    fig.tight_layout()
    return _save(fig, path, tight=False)
