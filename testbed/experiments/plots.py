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
