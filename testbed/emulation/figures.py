"""The validation figure: simulated against emulated times, log-log, with y = x."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as mticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _panel(ax, frame: pd.DataFrame, hue: str | None, title: str, what: str,
           reference: str) -> None:
    if frame.empty:
        ax.set_title(f"{title} (none)")
        return
    sim_ms, emu_ms = frame.sim_s * 1e3, frame.emu_s * 1e3
    groups = frame.groupby(hue) if hue else [("", frame)]
    for name, part in groups:
        ax.scatter(part.sim_s * 1e3, part.emu_s * 1e3, s=10, alpha=0.6,
                   label=str(name) if hue else None)
    positive = np.concatenate([sim_ms[sim_ms > 0], emu_ms[emu_ms > 0]])
    low, high = positive.min() / 1.5, positive.max() * 1.5
    ax.plot([low, high], [low, high], color="black", linewidth=1, label="y = x")
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):            # plain numbers at 1, 2, 5 x 10^k
        axis.set_major_locator(mticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(mticker.FormatStrFormatter("%g"))
        axis.set_minor_formatter(mticker.NullFormatter())
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_xlabel(f"simulated {what} (ms)")
    ax.set_ylabel(f"{what} in {reference} (ms)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def plot_validation(transfers: pd.DataFrame, tokens: pd.DataFrame, path: str | Path,
                    *, title: str = "", reference: str = "Mininet") -> Path:
    """Two panels: per-transfer time (by bottleneck link kind), per-token latency (by
    partitioner), against the ``reference`` backend's; n in each panel's title."""
    path = Path(path)
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    real = transfers[transfers.size_bytes > 0] if not transfers.empty else transfers
    _panel(axes[0], real, "link_kind" if not real.empty else None,
           f"per-transfer time (n = {len(real)})", "transfer time", reference)
    _panel(axes[1], tokens, "partitioner" if "partitioner" in tokens else None,
           f"per-token latency (n = {len(tokens)})", "token latency", reference)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
