"""Standard figures, drawn with seaborn from the tidy tables (PNG and PDF)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
DASHES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1)), (0, (1, 1)))


def series_styles(labels) -> dict[str, dict]:
    """Colour, marker and dash per series, so that lines on top of each other stay
    apart."""
    palette = sns.color_palette("tab10", max(3, len(labels)))
    return {label: {"color": palette[i % len(palette)], "marker": MARKERS[i % len(MARKERS)],
                    "linestyle": DASHES[i % len(DASHES)]} for i, label in enumerate(labels)}


_SEABORN_DASHES = {"-": "", "--": (4, 2), "-.": (4, 1.5, 1, 1.5), ":": (1, 1.5)}


def _seaborn_dash(linestyle):
    """A matplotlib line style as seaborn's ``dashes`` wants it ("" for solid)."""
    if isinstance(linestyle, tuple):
        return linestyle[1]
    return _SEABORN_DASHES[linestyle]


#: Two lines whose points all lie this close (relative) are drawn one over the other.
SAME_LINE_RTOL = 0.01


def _same_line(a: pd.Series, b: pd.Series) -> bool:
    """Whether line ``b`` lies under line ``a`` (the same points to
    :data:`SAME_LINE_RTOL`; missing points where the other's are missing)."""
    if a.equals(b):
        return True
    if not a.index.equals(b.index):
        return False
    return bool(np.allclose(a.to_numpy(float), b.to_numpy(float), rtol=SAME_LINE_RTOL,
                            atol=0.0, equal_nan=True))


def same_as_labels(means: pd.DataFrame, labels: list[str], columns: list[str],
                   short: dict[str, str] | None = None) -> dict:
    """Legend labels of series indexed by the first level of ``means``: a series whose
    ``columns`` equal an earlier one's at every point says so (``name (= other)``), or
    ``≈`` when they are within :data:`SAME_LINE_RTOL` but not equal, since its line lies
    under the other's; with ``short`` names, one equal in some columns only says which
    (``name (TPOT, TTFT = other)``; columns where every series is the same are left
    out)."""
    names = {}
    present = [n for n in labels if n in set(means.index.get_level_values(0))]
    informative = [c for c in columns
                   if not all(_same_line(means.loc[present[0]][c], means.loc[n][c])
                              for n in present)] if present else []
    for name in labels:
        names[name] = name
        if name not in present:
            continue
        mine = means.loc[name]
        best: list[str] = []
        for other in present[:present.index(name)]:
            theirs = means.loc[other]
            exact = all(theirs[c].equals(mine[c]) for c in columns)
            if exact or all(_same_line(theirs[c], mine[c]) for c in columns):
                names[name] = f"{name} ({'=' if exact else '≈'} {other})"
                break
            equal = [c for c in informative if _same_line(theirs[c], mine[c])]
            if short and len(equal) > len(best):
                best = equal
                sign = "=" if all(theirs[c].equals(mine[c]) for c in equal) else "≈"
                names[name] = (f"{name} ({', '.join(short[c] for c in equal)} {sign} "
                               f"{other})")
    return names


def _plain_log(axis) -> None:
    """Ticks of a log axis at 1, 2 and 5 per decade, written as plain numbers."""
    axis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def ttft_by_partitioner(tokens: pd.DataFrame) -> dict[str, float]:
    """Each partitioner's first-token latency (s, median over runs)."""
    first = tokens[tokens.token == 1]
    return (first.end_s - first.start_s).groupby(first.partitioner, sort=False).median() \
        .to_dict()


def plot_latency(tokens: pd.DataFrame, path: str | Path, *, title: str = "") -> Path:
    """Per-token latency of the decode tokens (ms) against token index, one line per
    partitioner; the first token's (TTFT, prefill included) in the legend."""
    path = Path(path)
    sns.set_theme(style="whitegrid", context="notebook")
    fig, ax = plt.subplots(figsize=(11, 4.5))
    data = tokens[tokens.token > 1]
    if not data.empty:
        from testbed.units import format_time
        data = data.assign(latency_ms=data.latency_s * 1e3)
        order = list(dict.fromkeys(data.partitioner))
        means = data.groupby(["partitioner", "token"], sort=False)[["latency_ms"]].mean()
        same = same_as_labels(means, order, ["latency_ms"])
        ttft = ttft_by_partitioner(tokens)
        names = {p: same[p].replace(" (= ", " = ").replace(" (≈ ", " ≈ ").rstrip(")")
                 if same[p] != p else p for p in order}
        names = {p: f"{names[p]} (TTFT {format_time(ttft[p], 3)})" if p in ttft else names[p]
                 for p in order}
        data = data.assign(partitioner=data.partitioner.map(names))
        looks = series_styles([names[p] for p in order])
        styles = sns.lineplot(data=data, x="token", y="latency_ms", hue="partitioner",
                              style="partitioner",
                              palette={k: v["color"] for k, v in looks.items()},
                              dashes={k: _seaborn_dash(v["linestyle"]) for k, v in looks.items()},
                              markers={k: v["marker"] for k, v in looks.items()}, markersize=4,
                              linewidth=1.2, ax=ax)
        ax.set_yscale("log")
        _plain_log(ax.yaxis)
        sns.move_legend(styles, "upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
                        title="partitioner (first token)", fontsize="small")
    ax.set_xlabel("generated token (decode: 2 onwards)")
    ax.set_ylabel("time per output token (ms, log scale)")
    ax.set_title(title or "Per-token latency")
    return _save(fig, path)


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
    return _save(fig, path)


def plot_fidelity(table: pd.DataFrame, path: str | Path, *, title: str = "") -> Path:
    """Published against simulated time per token (ms) by number of devices, one panel
    per model; solid: total, dashed: the root's transfer (non-compute) share. Rows
    published as not fitting in memory are marked with an x at the bottom."""
    path = Path(path)
    sns.set_theme(style="whitegrid", context="notebook")
    models = list(dict.fromkeys(table.model)) if not table.empty else ["-"]
    fig, axes = plt.subplots(1, len(models), figsize=(5.5 * len(models), 4.5), squeeze=False)
    for ax, model in zip(axes[0], models):
        rows = table[table.model == model].sort_values("devices")
        timed = rows[rows.published_ms.notna()]
        for column, style, label in (("published_ms", "o-", "published, total"),
                                     ("simulated_ms", "s-", "simulated, total"),
                                     ("published_transfer_ms", "o--", "published, transfer"),
                                     ("simulated_transfer_ms", "s--", "simulated, transfer")):
            if column in timed and timed[column].notna().any():
                color = "tab:blue" if column.startswith("published") else "tab:orange"
                ax.plot(timed.devices, timed[column], style, color=color, label=label,
                        alpha=1.0 if "transfer" not in column else 0.7)
        for row in rows[rows.published_ms.isna()].itertuples():
            ax.plot([row.devices], [0], "x", color="black", markersize=10)
            ax.annotate(f"published: {row.published_outcome}\nsimulated: "
                        f"{row.simulated_outcome}", (row.devices, 0),
                        textcoords="offset points", xytext=(6, 22), fontsize=7)
        for row in timed.itertuples():
            if pd.notna(row.error_pct):
                ax.annotate(f"{row.error_pct:+.0f}%", (row.devices, row.simulated_ms),
                            textcoords="offset points", xytext=(8, -14), fontsize=8,
                            color="tab:orange", zorder=5,
                            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                                  "alpha": 0.85})
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(set(rows.devices)) or [1])
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_ylim(bottom=0)
        ax.set_xlabel(f"devices (n = {len(timed)} timed rows)")
        ax.set_ylabel("time per token (ms)")
        ax.set_title(model)
        ax.legend(fontsize=8, frameon=True)
    fig.suptitle(title or "Published against simulated")
    return _save(fig, path)


def _one_legend(axes) -> None:
    """Keep one legend, outside the last panel, so that no line is hidden."""
    axes = list(axes)
    for ax in axes[:-1]:
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if axes[-1].get_legend() is not None:
        sns.move_legend(axes[-1], "upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def _save(fig, path: Path, *, tight: bool = True) -> Path:
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=120)
    fig.savefig(path.with_suffix(".pdf"))
    plt.close(fig)
    return path


FACET = "facet"


def _facet(tables: dict[str, pd.DataFrame]) -> str | None:
    """The label column that tells a sweep's runs apart (``case`` and every grid key that
    varies, so that no compared setting is averaged away); when several vary, a
    ``facet`` column joining them is added to the tables."""
    tokens = tables["tokens"]
    varying = [c for c in ["case"] + [c for c in tokens.columns if "." in c]
               if c in tokens.columns and tokens[c].nunique() > 1]
    if len(varying) <= 1:
        return varying[0] if varying else None
    for name, table in tables.items():
        if all(c in table.columns for c in varying):
            tables[name] = table.assign(**{FACET: table[varying].astype(str).apply(
                lambda row: ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in row.items()),
                axis=1)})
    return FACET


MAX_POINTS = 200   # per line: longer runs are averaged over bins of tokens


def _binned(data: pd.DataFrame, value: str, facet: str | None) -> pd.DataFrame:
    """Mean of ``value`` per run over bins of consecutive tokens, so that a 1000-token
    sweep plots ~200 points per line (confidence intervals stay over runs)."""
    tokens = int(data.token.max()) if len(data) else 0
    width = max(1, -(-tokens // MAX_POINTS))
    if width == 1:
        return data
    keys = [k for k in ("run_id", facet, "partitioner") if k and k in data.columns]
    binned = data.assign(token=(data.token - 1) // width * width + (width + 1) / 2)
    return binned.groupby(keys + ["token"], sort=False)[value].mean().reset_index()


def _lines_per_partitioner(data: pd.DataFrame, y: str, ylabel: str, path: str | Path, *,
                           facet: str | None, title: str, log: bool) -> Path:
    """``y`` against token index, one line per partitioner (mean and 95 % CI over runs),
    one panel per value of ``facet``."""
    path = Path(path)
    sns.set_theme(style="whitegrid", context="notebook")
    data = _binned(data, y, facet)
    order = list(dict.fromkeys(data.partitioner))
    styles = series_styles(order)
    panels = list(dict.fromkeys(data[facet])) if facet else [None]
    columns = min(len(panels), 3)
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(6.5 * columns, 4.8 * rows),
                             squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, panel in zip(axes.flat, panels):
        part = data if panel is None else data[data[facet] == panel]
        # a method drawn exactly under another in this panel says so in its legend
        means = part.groupby(["partitioner", "token"], sort=False)[[y]].mean()
        names = same_as_labels(means, order, [y])
        part = part.assign(partitioner=part.partitioner.map(names))
        sns.lineplot(data=part, x="token", y=y, hue="partitioner", style="partitioner",
                     palette={names[k]: v["color"] for k, v in styles.items()},
                     dashes={names[k]: _seaborn_dash(v["linestyle"])
                             for k, v in styles.items()},
                     errorbar=("ci", 95), n_boot=200, seed=0, linewidth=1.2, ax=ax)
        if log:
            ax.set_yscale("log")
            _plain_log(ax.yaxis)
        ax.set_xlabel("generated token")
        ax.set_ylabel(ylabel)
        ax.set_title(panel if facet == FACET else f"{facet} = {panel}" if panel is not None
                     else (title or ""), fontsize="medium")
        if len(panels) > 1:
            ax.legend(fontsize="x-small", frameon=True, title=None)
    if len(panels) == 1:
        _one_legend(axes.flat[:1])
    if title and len(panels) > 1:
        fig.suptitle(title)
    return _save(fig, path)


def plot_latency_over_time(tokens: pd.DataFrame, path: str | Path, *, facet: str | None = None,
                           title: str = "") -> Path:
    """Per-token latency of the decode tokens (ms; the first token, TTFT, is in the
    summary) against token index per partitioner, mean and 95 % CI over seeds; one panel
    per value of ``facet``."""
    decode = tokens[tokens.token > 1]
    return _lines_per_partitioner(decode.assign(latency_ms=decode.latency_s * 1e3),
                                  "latency_ms", "time per output token (ms, log scale; "
                                  "decode tokens)", path, facet=facet, title=title, log=True)


def plot_memory_over_time(memory: pd.DataFrame, path: str | Path, *, facet: str | None = None,
                          title: str = "") -> Path:
    """Largest memory used on any device but the controller (GiB) against token index, per
    partitioner."""
    keys = [c for c in ("run_id", facet, "partitioner", "token") if c and c in memory.columns]
    if "controller" in memory.columns:   # its embedding and LM head are the same for all
        memory = memory[~memory.controller.astype(bool)]
    peak = memory.groupby(keys, sort=False).used_bytes.max().reset_index()
    unit, scale = ("GiB", 2**30) if peak.used_bytes.max() >= 2**30 else ("MiB", 2**20)
    peak["peak"] = peak.used_bytes / scale
    return _lines_per_partitioner(peak, "peak", f"memory of the fullest worker device ({unit})",
                                  path, facet=facet, title=title, log=False)


def plot_sweep(tables: dict[str, pd.DataFrame], out: str | Path, *, title: str = "") -> list:
    """The standard figures of a sweep: latency and memory over time; with served
    requests, the load curves over the arrival rate (or the request latencies)."""
    out = Path(out)
    tables = dict(tables)
    requests = tables.get("requests")
    if requests is not None and not requests.empty:
        from testbed.experiments import serving_plots
        summary = tables.get("summary")
        if summary is not None and serving_plots.RATE_COLUMN in summary.columns:
            return [serving_plots.plot_load_curves(summary, out / "load.png", title=title)]
        return [serving_plots.plot_request_latency(tables["tokens"], out / "latency.png",
                                                   title=title)]
    facet = _facet(tables)
    paths = [plot_latency_over_time(tables["tokens"], out / "latency.png", facet=facet,
                                    title=title)]
    if "memory" in tables:
        paths.append(plot_memory_over_time(tables["memory"], out / "memory.png", facet=facet,
                                           title=title))
    summary = tables.get("summary")
    if summary is not None:
        from testbed.experiments import sweep_plots
        from testbed.experiments.summary import SUMMARY_COLUMNS
        keys = sweep_plots.grid_keys(summary, set(SUMMARY_COLUMNS) | {"sim_wall_s"})
        x = sweep_plots.numeric_key(summary, keys)
        if x is not None:
            paths.append(sweep_plots.plot_against(summary, x, out / "grid.png",
                                                  others=[k for k in keys if k != x],
                                                  title=title))
    return paths


def plot_results(folder: str | Path) -> list[Path]:
    """The standard figures of any results folder: a run, a sweep or a gap experiment."""
    from testbed.errors import ConfigError
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError("not a results folder (expected a folder written by testbed run)",
                          source=str(folder))
    from testbed.experiments.results import is_complete
    if not is_complete(folder) and not (folder / "runs").is_dir():
        raise ConfigError("is incomplete (no DONE marker): the run was interrupted or failed "
                          "while writing it, or an older testbed wrote it; run it again",
                          source=str(folder))
    if (folder / "gap_steps.csv").is_file():
        return [plot_gaps(pd.read_csv(folder / "gap_steps.csv"), folder / "gap.png",
                          title=f"{folder.name}: per-step gap to the optimum")]
    if not (folder / "tokens.csv").is_file():
        raise ConfigError("has no tokens.csv or gap_steps.csv; expected a folder written by "
                          "testbed run", source=str(folder))
    tables = {"tokens": pd.read_csv(folder / "tokens.csv")}
    for name in ("memory", "requests", "summary"):
        if (folder / f"{name}.csv").is_file():
            tables[name] = pd.read_csv(folder / f"{name}.csv")
    return plot_sweep(tables, folder, title=folder.name)


#: Gantt bar colours: computations in blues and greens, transfers in warm colours.
GANTT_COLOURS = {
    "attn": "#1f77b4", "proj": "#17becf", "ffn": "#2ca02c", "lm_head": "#7f7f7f",
    "inference": "#ff7f0e", "migration": "#d62728", "migration-delta": "#e377c2",
    "recovery": "#8c564b", "migrated block": "#9467bd",
}


def _gantt_window(slices: pd.DataFrame, tokens: int, first: int | None) -> tuple | None:
    """(start ns, end ns, token slices) of ``tokens`` tokens from ``first`` (default: the
    first decode token)."""
    spans = slices[slices.track_kind == "tokens"].sort_values("token")
    if spans.empty:
        return None
    if first is None:
        decode = spans[[args.get("phase") == "decode" for args in spans.args]]
        first = int(decode.token.iloc[0]) if not decode.empty else int(spans.token.iloc[0])
    chosen = spans[(spans.token >= first) & (spans.token < first + tokens)]
    if chosen.empty:
        return None
    return int(chosen.start_ns.min()), int(chosen.end_ns.max()), chosen


def plot_gantt(slices: pd.DataFrame, path: str | Path, *, tokens: int = 3,
               first: int | None = None, partitioners: list[str] | None = None,
               title: str = "") -> Path:
    """Gantt chart of a few tokens: one row per device and per link direction busy in the
    window, bars for block computations (coloured by block kind) and transfers (by flow
    kind) plus migrations; time in ms from the window's start; one panel per partitioner.

    ``slices`` come from :func:`testbed.experiments.timeline.timeline_slices`; the window
    is ``tokens`` tokens from token ``first`` (default: the first decode token)."""
    from matplotlib.patches import Patch

    from testbed.experiments.timeline import assign_lanes

    path = Path(path)
    names = partitioners or list(dict.fromkeys(slices.partitioner))
    panels = []
    for name in names:
        part = slices[slices.partitioner == name]
        window = _gantt_window(part, tokens, first)
        if window is None:
            continue
        start, end, spans = window
        busy = part[(part.track_kind != "tokens") & (part.end_ns >= start)
                    & (part.start_ns <= end)].copy()
        busy["start_ns"] = busy.start_ns.clip(lower=start)
        busy["end_ns"] = busy.end_ns.clip(upper=end)
        busy = busy.sort_values(["order", "start_ns", "end_ns"], kind="stable",
                                ignore_index=True)
        busy["lane"] = assign_lanes(busy)
        panels.append((name, start, spans, busy))
    sns.set_theme(style="whitegrid", context="notebook")
    heights = [max(2.0, 0.32 * max(1, busy.track.nunique()) + 1.2) for *_, busy in panels] \
        or [2.0]
    fig, axes = plt.subplots(len(heights), 1, figsize=(11, sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights}, layout="constrained")
    used: dict[str, str] = {}   # kinds drawn -> colour (for the legend)
    for ax, (name, start, spans, busy) in zip(axes[:, 0], panels):
        rows = busy.drop_duplicates(["order", "track"])[["order", "track", "track_kind"]]
        rows = rows.sort_values("order", kind="stable").reset_index(drop=True)
        position = {track: i for i, track in enumerate(rows.track)}
        n_lanes = busy.groupby("track").lane.max().add(1).to_dict()
        for row in busy.itertuples(index=False):
            kind = "migrated block" if row.track_kind == "migrations" else row.name
            colour = GANTT_COLOURS.get(kind, "#bcbd22")
            used[kind] = colour
            lanes = n_lanes[row.track]
            height = 0.8 / lanes
            bottom = position[row.track] - 0.4 + row.lane * height
            ax.broken_barh([((row.start_ns - start) / 1e6, (row.end_ns - row.start_ns) / 1e6)],
                           (bottom, height * 0.9), facecolors=colour, linewidth=0)
        for span in spans.itertuples(index=False):
            x = (span.start_ns - start) / 1e6
            ax.axvline(x, color="black", linestyle=":", linewidth=0.9)
            ax.text(x, -0.5, f" token {span.token}", fontsize=8, va="bottom", ha="left")
        devices = (rows.track_kind == "device").sum()
        if 0 < devices < len(rows):
            ax.axhline(devices - 0.5, color="grey", linewidth=0.8)
        labels = [("link " + t.replace("->", " → ")) if k == "link" else t
                  for t, k in zip(rows.track, rows.track_kind)]
        ax.set_yticks(range(len(rows)), labels, fontsize=8)
        ax.set_ylim(len(rows) - 0.5, -1.2)
        ax.set_xlim(0, (spans.end_ns.max() - start) / 1e6)
        ax.set_xlabel("time since the window's first token started (ms)")
        ax.set_title(f"partitioner: {name}", fontsize=10, loc="left", pad=4)
        ax.grid(axis="y", visible=False)
    if used:
        handles = [Patch(facecolor=colour, label=kind) for kind, colour in
                   GANTT_COLOURS.items() if kind in used]
        axes[0, 0].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                          frameon=False, fontsize=8, title="bars", title_fontsize=9)
    fig.suptitle(title or "Gantt chart")
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
