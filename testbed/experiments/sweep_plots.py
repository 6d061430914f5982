"""A sweep's figures against its grid key: what changes with the number of devices, the
decision interval, the latency scale... One line per partitioner (and per value of every
other key the grid varies), mean over seeds; each line its own colour, marker and dash,
and a line whose every point equals an earlier one's says so in the legend."""

from __future__ import annotations

from collections.abc import Sequence
import textwrap
from pathlib import Path

import pandas as pd

from testbed.experiments.plots import (_plain_log, _save, plt, same_as_labels,
                                       series_styles, sns)

#: (summary column, axis label, log scale, factor, short name) of each panel
PANELS = (
    ("tpot_p50_s", "TPOT p50 (ms, log scale)", True, 1e3, "TPOT"),
    ("ttft_p50_s", "TTFT p50 (ms, log scale)", True, 1e3, "TTFT"),
    ("peak_worker_memory_bytes", "memory of the fullest worker (GiB)", False, 2.0 ** -30,
     "memory"),
    ("migrations", "blocks migrated per run", False, 1.0, "migrations"),
    ("mean_decision_wall_s", "decision time (ms each, log)", True, 1e3,
     "decision time"),
    ("sim_wall_s", "simulator wall time (s per run, log)", True, 1.0, "wall time"),
)
NOT_KEYS = {"run_id", "seed", "partitioner", "outcome", "facet"}   # facet: plots.FACET


def grid_keys(summary: pd.DataFrame, known: set[str]) -> list[str]:
    """The columns a sweep added to its summary (grid keys, ``case``) that vary."""
    return [c for c in summary.columns if c not in known and c not in NOT_KEYS
            and summary[c].nunique() > 1]


def numeric_key(summary: pd.DataFrame, keys: list[str]) -> str | None:
    """The grid key to put on the x axis: numeric with at least three values."""
    for key in keys:
        values = pd.to_numeric(summary[key], errors="coerce")
        if values.notna().all() and values.nunique() >= 3:
            return key
    return None


def _legend_names(means_of: dict, labels: list[str], panels: Sequence[tuple]) -> dict:
    """Legend labels saying which lines lie under which (:func:`same_as_labels`), per
    column of cases: a claim that holds in every column is made plainly, one that holds
    in some columns names them."""
    per_facet = {facet: same_as_labels(means, labels, [p[0] for p in panels],
                                       {p[0]: p[4] for p in panels})
                 for facet, means in means_of.items()}
    names = {}
    for label in labels:
        claims = {facet: got[label] for facet, got in per_facet.items()}
        if len(set(claims.values())) == 1:
            names[label] = next(iter(claims.values()))
            continue
        parts = [f"{claim[len(label) + 2:-1]} in {facet}"
                 for facet, claim in claims.items() if claim != label]
        names[label] = f"{label} ({'; '.join(parts)})"
    return names


def plot_against(summary: pd.DataFrame, x: str, path: str | Path, *, others: list[str],
                 title: str = "", panels: Sequence[tuple] = PANELS) -> Path:
    """Every panel of ``panels`` (default :data:`PANELS`) against ``x``, a line per
    partitioner and value of each key in ``others``; one panel column per ``case`` when
    the sweep has cases."""
    path = Path(path)
    sns.set_theme(style="whitegrid", context="notebook")
    data = summary.assign(**{x: pd.to_numeric(summary[x])})
    cases = [c for c in others if c == "case"]
    series_keys = ["partitioner"] + [c for c in others if c != "case"]
    data = data.assign(series=data[series_keys].astype(str).apply(
        lambda row: ", ".join([row["partitioner"]] + [f"{k.rsplit('.', 1)[-1]}={row[k]}"
                                                      for k in series_keys[1:]]), axis=1))
    panels = [p for p in panels if p[0] in data.columns and data[p[0]].notna().any()]
    facets = list(dict.fromkeys(data[cases[0]])) if cases else [None]
    if cases:     # a row per panel, a column per case
        fig, axes = plt.subplots(len(panels), len(facets), squeeze=False,
                                 figsize=(5.0 * len(facets), 3.4 * len(panels)))
        cells = [[axes[r][c] for r in range(len(panels))] for c in range(len(facets))]
    else:         # the panels on a grid of up to 3 columns
        rows = -(-len(panels) // 3)
        fig, grid = plt.subplots(rows, min(3, len(panels)), squeeze=False,
                                 figsize=(5.3 * min(3, len(panels)), 4.25 * rows))
        cells = [list(grid.flat)]
        for ax in grid.flat[len(panels):]:
            ax.set_visible(False)
    labels = list(dict.fromkeys(data.series))
    styles = series_styles(labels)
    runs = data.groupby(["series", x] + cases).size()
    means_of = {facet: (data if facet is None else data[data[cases[0]] == facet])
                .groupby(["series", x], sort=False).mean(numeric_only=True)
                for facet in facets}
    # legend entries wrapped to fit under a figure of two or more columns
    names = {label: textwrap.fill(name, 90, subsequent_indent="    ")
             for label, name in _legend_names(means_of, labels, panels).items()}
    for col, facet in enumerate(facets):
        means = means_of[facet]
        for row, (column, label, log, factor, _) in enumerate(panels):
            ax = cells[col][row]
            for name in labels:
                if name not in means.index.get_level_values(0):
                    continue
                line = means.loc[name].sort_index()
                ax.plot(line.index, line[column] * factor, label=names[name], markersize=5,
                        linewidth=1.3, **styles[name])
            if log:
                ax.set_yscale("log")
                _plain_log(ax.yaxis)
            ax.set_ylabel(label)
            ax.set_xlabel(x.rsplit(".", 1)[-1])
            values = data[x]
            if values.min() > 0 and values.max() >= 10 * values.min():
                ax.set_xscale("log")
                _plain_log(ax.xaxis)
            if row == 0 and facet is not None:
                ax.set_title(str(facet), fontsize="medium")
    handles, texts = cells[0][0].get_legend_handles_labels()
    # as many legend columns as fit the figure's width (about 10 characters an inch)
    longest = max((len(line) for text in texts for line in text.split("\n")), default=0)
    ncol = max(1, min(3, len(texts), int(fig.get_figwidth() * 10 // (longest + 6))))
    lines = sum(text.count("\n") + 1 for text in texts)
    fig.legend(handles, texts, title="partitioner", loc="lower center", frameon=False,
               ncol=ncol, fontsize="small", bbox_to_anchor=(0.5, 0.0))
    n = int(runs.min()) if len(runs) else 0
    fig.suptitle((title or "Against the grid") + f" (mean of n = {n} run(s) per point)")
    # below: room for the legend; above: for the title, clear of the column titles
    height = fig.get_figheight()       # the legend needs about 1/4 inch a line
    fig.tight_layout(rect=(0, (0.35 + 0.25 * -(-lines // ncol)) / height, 1,
                           1 - 0.35 / height))
    return _save(fig, path, tight=False)

