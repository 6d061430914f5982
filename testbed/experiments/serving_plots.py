"""Figures of served requests: load curves of a sweep over arrival rates, and the latency
distributions of one run. Each method gets its own colour, marker and line style, so that
lines lying on top of each other stay visible."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from testbed.experiments.plots import (_one_legend, _plain_log, _save, plt, same_as_labels,
                                       series_styles, sns)
from testbed.experiments.serving_metrics import per_request

RATE_COLUMN = "requests.rate_per_s"

#: (summary column, axis label, log scale) of each panel of the load curves
LOAD_PANELS = (
    ("throughput_tokens_per_s", "throughput (output tokens/s)", False),
    ("ttft_p99_s", "TTFT p99 (s, log scale)", True),
    ("tpot_p50_s", "TPOT p50 (s, log scale)", True),
    ("slo_goodput_requests_per_s", "SLO goodput (requests/s)", False),
    ("energy_j_per_token", "energy per output token (J, log scale)", True),
)


def plot_load_curves(summary: pd.DataFrame, path: str | Path, *, rate: str = RATE_COLUMN,
                     title: str = "") -> Path:
    """Per partitioner against the arrival rate (requests/s): throughput, TTFT p99, TPOT
    p50, SLO goodput and energy per token; a last panel puts TPOT against throughput (the
    latency-throughput curve: where it turns up, the method saturates). Points are means
    over seeds; ``n`` in the title is the number of runs per point."""
    path = Path(path)
    sns.set_theme(style="whitegrid", context="notebook")
    labels = list(dict.fromkeys(summary.partitioner))
    styles = series_styles(labels)
    means = summary.groupby(["partitioner", rate], sort=False).mean(numeric_only=True)
    runs = summary.groupby(["partitioner", rate]).size()
    names = same_as_labels(means, labels, [c for c, _, _ in LOAD_PANELS] + ["tpot_p50_s"])
    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    for ax, (column, label, log) in zip(axes.flat, LOAD_PANELS):
        for name in labels:
            if name not in means.index.get_level_values(0):
                continue
            part = means.loc[name].sort_index()
            ax.plot(part.index, part[column], label=names[name], markersize=6,
                    linewidth=1.4, **styles[name])
        ax.set_xscale("log")
        _plain_log(ax.xaxis)
        if log:
            ax.set_yscale("log")
            _plain_log(ax.yaxis)
        ax.set_xlabel("arrival rate (requests/s, log scale)")
        ax.set_ylabel(label)
    ax = axes.flat[-1]
    for name in labels:
        if name in means.index.get_level_values(0):
            part = means.loc[name].sort_index()
            ax.plot(part.throughput_tokens_per_s, part.tpot_p50_s, label=names[name],
                    markersize=6, linewidth=1.4, **styles[name])
    ax.set_yscale("log")
    _plain_log(ax.yaxis)
    ax.set_xlabel("throughput (output tokens/s)")
    ax.set_ylabel("TPOT p50 (s, log scale)")
    ax.set_title("latency against throughput")
    ax.legend(title="partitioner", frameon=True, fontsize="small")
    _one_legend(axes.flat)
    n = int(runs.min()) if len(runs) else 0
    fig.suptitle((title or "Load curves") + f" (mean of n = {n} run(s) per point)")
    return _save(fig, path)


def plot_request_latency(tokens: pd.DataFrame, path: str | Path, *, title: str = "") -> Path:
    """Empirical CDFs over requests of TTFT and of TPOT (s), one line per partitioner."""
    path = Path(path)
    sns.set_theme(style="whitegrid", context="notebook")
    labels = list(dict.fromkeys(tokens.partitioner))
    styles = series_styles(labels)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    counts = []
    for name in labels:
        requests = per_request(tokens[tokens.partitioner == name])
        counts.append(len(requests))
        for ax, column in zip(axes, ("ttft_s", "tpot_s")):
            values = np.sort(requests[column].dropna().to_numpy(dtype=float))
            if len(values):
                style = {k: v for k, v in styles[name].items() if k != "marker"}
                ax.step(values, np.arange(1, len(values) + 1) / len(values), where="post",
                        label=name, linewidth=1.5, **style)
    for ax, what in zip(axes, ("TTFT: time to first token", "TPOT: time per output token")):
        ax.set_xscale("log")
        _plain_log(ax.xaxis)
        ax.set_xlabel(f"{what} (s, log scale)")
        ax.set_ylabel("share of requests")
        ax.legend(title="partitioner", frameon=True, fontsize="small")
    _one_legend(axes)
    fig.suptitle((title or "Request latency") + f" (n = {max(counts, default=0)} requests)")
    return _save(fig, path)
