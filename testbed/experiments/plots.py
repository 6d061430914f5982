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


def _one_legend(axes) -> None:
    """Keep one legend, outside the last panel, so that no line is hidden."""
    axes = list(axes)
    for ax in axes[:-1]:
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if axes[-1].get_legend() is not None:
        sns.move_legend(axes[-1], "upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    fig.savefig(path.with_suffix(".pdf"))
    plt.close(fig)
    return path


def _facet(tables: dict[str, pd.DataFrame]) -> str | None:
    """The label column that tells a sweep's cases apart (``case`` first), if any."""
    tokens = tables["tokens"]
    for column in ["case"] + [c for c in tokens.columns if "." in c]:
        if column in tokens.columns and tokens[column].nunique() > 1:
            return column
    return None


def plot_latency_over_time(tokens: pd.DataFrame, path: str | Path, *, facet: str | None = None,
                           title: str = "") -> Path:
    """Per-token latency (ms) against token index per partitioner, mean and 95 % CI over
    seeds; one panel per value of ``facet``."""
    path = Path(path)
    sns.set_theme(style="whitegrid", context="notebook")
    data = tokens.assign(latency_ms=tokens.latency_s * 1e3)
    panels = list(dict.fromkeys(data[facet])) if facet else [None]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.8), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        part = data if panel is None else data[data[facet] == panel]
        sns.lineplot(data=part, x="token", y="latency_ms", hue="partitioner",
                     errorbar=("ci", 95), linewidth=1.0, ax=ax)
        ax.set_yscale("log")
        ax.set_xlabel("generated token")
        ax.set_ylabel("per-token latency (ms, log scale)")
        ax.set_title(f"{facet} = {panel}" if panel is not None else (title or ""))
    _one_legend(axes[0])
    if title and len(panels) > 1:
        fig.suptitle(title)
    return _save(fig, path)


def plot_memory_over_time(memory: pd.DataFrame, path: str | Path, *, facet: str | None = None,
                          title: str = "") -> Path:
    """Largest memory used on any device (GiB) against token index, per partitioner."""
    path = Path(path)
    sns.set_theme(style="whitegrid", context="notebook")
    keys = [c for c in ("run_id", facet, "partitioner", "token") if c and c in memory.columns]
    peak = memory.groupby(keys, sort=False).used_bytes.max().reset_index()
    peak["peak_gib"] = peak.used_bytes / 2**30
    panels = list(dict.fromkeys(peak[facet])) if facet else [None]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.8), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        part = peak if panel is None else peak[peak[facet] == panel]
        sns.lineplot(data=part, x="token", y="peak_gib", hue="partitioner",
                     errorbar=("ci", 95), linewidth=1.0, ax=ax)
        ax.set_xlabel("generated token")
        ax.set_ylabel("memory of the fullest device (GiB)")
        ax.set_title(f"{facet} = {panel}" if panel is not None else (title or ""))
    _one_legend(axes[0])
    if title and len(panels) > 1:
        fig.suptitle(title)
    return _save(fig, path)


def plot_sweep(tables: dict[str, pd.DataFrame], out: str | Path, *, title: str = "") -> list:
    """The standard figures of a sweep: latency and memory over time."""
    out = Path(out)
    facet = _facet(tables)
    paths = [plot_latency_over_time(tables["tokens"], out / "latency.png", facet=facet,
                                    title=title)]
    if "memory" in tables:
        paths.append(plot_memory_over_time(tables["memory"], out / "memory.png", facet=facet,
                                           title=title))
    return paths


def plot_results(folder: str | Path) -> list[Path]:
    """The standard figures of any results folder: a run, a sweep or a gap experiment."""
    from testbed.errors import ConfigError
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError("not a results folder (expected a folder written by testbed run)",
                          source=str(folder))
    if (folder / "gap_steps.csv").is_file():
        return [plot_gaps(pd.read_csv(folder / "gap_steps.csv"), folder / "gap.png",
                          title=f"{folder.name}: per-step gap to the optimum")]
    if not (folder / "tokens.csv").is_file():
        raise ConfigError("has no tokens.csv or gap_steps.csv; expected a folder written by "
                          "testbed run", source=str(folder))
    tables = {"tokens": pd.read_csv(folder / "tokens.csv")}
    if (folder / "memory.csv").is_file():
        tables["memory"] = pd.read_csv(folder / "memory.csv")
    return plot_sweep(tables, folder, title=folder.name)
