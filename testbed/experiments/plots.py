"""Standard figures, drawn with seaborn from the tidy tables (PNG and PDF)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402


def plot_latency(tokens: pd.DataFrame, path: str | Path, *, title: str = "") -> Path:
    """Per-token latency (ms) against token index, one line per partitioner."""
    path = Path(path)
    sns.set_theme(style="whitegrid", context="notebook")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if not tokens.empty:
        data = tokens.assign(latency_ms=tokens.latency_s * 1e3)
        sns.lineplot(data=data, x="token", y="latency_ms", hue="partitioner", marker="o",
                     markersize=3, linewidth=1.2, ax=ax)
        ax.set_yscale("log")
        ax.legend(title="partitioner", frameon=True)
    ax.set_xlabel("generated token (1 = first token, incl. prefill)")
    ax.set_ylabel("per-token latency (ms, log scale)")
    ax.set_title(title or "Per-token latency")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    fig.savefig(path.with_suffix(".pdf"))
    plt.close(fig)
    return path


def plot_gaps(steps: pd.DataFrame, path: str | Path, *, title: str = "") -> Path:
    """Per-step gap to the exact optimum (%), by partitioner and number of devices, one
    panel per cost preset; bars are means with 95 % confidence intervals over steps."""
    path = Path(path)
    sns.set_theme(style="whitegrid", context="notebook")
    presets = list(dict.fromkeys(steps.preset)) if not steps.empty else ["-"]
    fig, axes = plt.subplots(1, len(presets), figsize=(6.5 * len(presets), 5), squeeze=False)
    for ax, preset in zip(axes[0], presets):
        data = steps[steps.preset == preset]
        if not data.empty:
            sns.barplot(data=data, x="partitioner", y="gap_pct", hue="n_devices",
                        errorbar=("ci", 95), ax=ax, palette="viridis")
            ax.legend(title="devices", frameon=True)
        ax.set_title(f"cost preset: {preset}")
        ax.set_xlabel("")
        ax.set_ylabel("latency above the exact optimum (%)")
        for label in ax.get_xticklabels():
            label.set_rotation(30)
            label.set_horizontalalignment("right")
    fig.suptitle(title or "Per-step gap to the optimum")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    fig.savefig(path.with_suffix(".pdf"))
    plt.close(fig)
    return path
