"""Capacity over time, one panel per trace (PNG or PDF by the file's suffix).

Each panel draws the trace as replayed (each value held until the next sample, the last
until the trace's duration) in Mbit/s on a linear axis from 0, so outages show as 0; the
dashed line is the time-weighted mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from testbed.errors import ConfigError  # noqa: E402
from testbed.traces.series import Series, trace_duration_s  # noqa: E402
from testbed.traces.stats import trace_stats  # noqa: E402

SUFFIXES = (".png", ".pdf")


def plot_traces(traces: Sequence[tuple[str, Series]], path: str | Path) -> Path:
    """Draw ``(label, series)`` pairs into ``path`` (.png or .pdf)."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise ConfigError(f"got file type {path.suffix or '(none)'!r}; expected .png or .pdf",
                          source=str(path), field="-o")
    count = len(traces)
    fig, axes = plt.subplots(count, 1, figsize=(9, 2.4 * count + 0.6), squeeze=False)
    for ax, (label, series) in zip(axes[:, 0], traces):
        duration = trace_duration_s(series)
        times = np.append(series.times_s, max(duration, series.times_s[-1]))
        values = np.append(series.values, series.values[-1]) / 1e6
        ax.step(times, values, where="post", linewidth=0.9)
        mean = trace_stats(series)["mean_bps"] / 1e6
        ax.axhline(mean, linestyle="--", linewidth=0.8, color="tab:red",
                   label=f"mean {mean:.3g} Mbit/s")
        ax.set_xlim(0, max(times[-1], 1e-9))
        ax.set_ylim(bottom=0)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("capacity (Mbit/s)")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=120)
    except OSError as error:
        raise ConfigError(f"cannot write the figure: {error.strerror or error}",
                          source=str(path), field="-o") from None
    finally:
        plt.close(fig)
    return path
