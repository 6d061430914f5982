"""The per-partitioner summary of a run (one row each), and its printed form.

``mean_latency_s``, ``p50_latency_s`` and ``p95_latency_s`` are over every pass (one per
token for one sequence; one per iteration of a batch), the first (prefill) included; the
serving metrics (:mod:`testbed.experiments.serving_metrics`: TTFT, TPOT, ITL and e2e
percentiles, throughput) keep the first token apart, and the printed table shows those.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from testbed.experiments import energy, serving_metrics
from testbed.cluster.topology import Topology
from testbed.units import format_bytes, format_time

SUMMARY_COLUMNS = [
    "partitioner", "outcome", "tokens", "mean_latency_s", "p50_latency_s", "p95_latency_s",
    "ttft_s", "total_time_s", "compute_share", "comm_share", "migration_share",
    "recovery_share", "migrations",
    "migration_bytes", "inference_bytes", "peak_memory_bytes", "peak_worker_memory_bytes",
    "oom_events",
    "mean_decision_wall_s",
    *serving_metrics.COLUMNS,
    *energy.COLUMNS,
]


def summarise(tables: dict[str, pd.DataFrame], outcomes: dict[str, str],
              topology: Topology | None = None,
              slo: serving_metrics.Slo = serving_metrics.Slo()) -> pd.DataFrame:
    """One row per partitioner: latency statistics, time shares, migrations, memory
    (energy needs the ``topology``; served requests are judged against ``slo``)."""
    rows = []
    tokens, flows, memory = tables["tokens"], tables["flows"], tables["memory"]
    served = tables.get("requests")
    devices = tables.get("devices")
    for label, outcome in outcomes.items():
        tok = tokens[tokens.partitioner == label]
        # one row per pass: a batched pass has a token row per request it served
        t = tok.drop_duplicates("iteration") if "iteration" in tok.columns else tok
        f = flows[flows.partitioner == label]
        m = memory[memory.partitioner == label]
        workers = m[~m.controller.astype(bool)] if "controller" in m.columns else m
        lat = t.latency_s.to_numpy(dtype=float)
        total = lat.sum()
        share = (lambda col: float(t[col].sum() / total)) if total > 0 else (lambda col: np.nan)
        decided = t[t.decided]
        serving = serving_metrics.serving_summary(
            tok, slo, None if served is None or served.empty
            else served[served.partitioner == label])
        if topology is not None and devices is not None:
            used = energy.energy_summary(devices[devices.partitioner == label], f, topology,
                                         len(tok), serving["requests"])
        else:
            used = dict.fromkeys(energy.COLUMNS, np.nan)
        rows.append({
            "partitioner": label,
            "outcome": outcome,
            "tokens": len(tok),
            "mean_latency_s": float(lat.mean()) if len(lat) else np.nan,
            "p50_latency_s": float(np.percentile(lat, 50)) if len(lat) else np.nan,
            "p95_latency_s": float(np.percentile(lat, 95)) if len(lat) else np.nan,
            "ttft_s": float(lat[0]) if len(lat) else np.nan,
            "total_time_s": float(t.end_s.max()) if len(t) else np.nan,
            "compute_share": share("compute_s"),
            "comm_share": share("comm_s"),
            "migration_share": share("migration_wait_s"),
            "recovery_share": (float((t.recovery_s.sum() + t.lost_s.sum()) / total)
                               if total > 0 else np.nan),
            "migrations": int(t.migrations.sum()),
            "migration_bytes": float(f[f.kind != "inference"].size_bytes.sum()),
            "inference_bytes": float(f[f.kind == "inference"].size_bytes.sum()),
            "peak_memory_bytes": float(m.used_bytes.max()) if len(m) else np.nan,
            "peak_worker_memory_bytes": float(workers.used_bytes.max()) if len(workers)
            else np.nan,
            "oom_events": int((tables["oom"].partitioner == label).sum()),
            "mean_decision_wall_s": float(decided.decision_wall_s.mean()) if len(decided)
            else np.nan,
            **serving,
            **used,
        })
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def peak_memory_by_device(memory: pd.DataFrame) -> pd.DataFrame:
    """Peak memory (bytes) per partitioner and device, with each device's capacity."""
    if memory.empty:
        return pd.DataFrame(columns=["partitioner", "device", "peak_bytes", "capacity_bytes"])
    grouped = memory.groupby(["partitioner", "device"], sort=False)
    return grouped.agg(peak_bytes=("used_bytes", "max"),
                       capacity_bytes=("capacity_bytes", "first")).reset_index()


def format_summary(summary: pd.DataFrame, memory: pd.DataFrame) -> str:
    """The summary as a readable text table, then peak memory per device."""
    lines = []
    header = (f"{'partitioner':<18} {'TTFT':>10} {'TPOT':>10} {'ITL p99':>10} {'J/token':>8} "
              f"{'compute':>8} "
              f"{'comm':>6} {'migr.':>6} {'recov.':>6} {'moves':>6} {'moved':>10} {'OOM':>5}  "
              "outcome")
    lines.append(header)
    lines.append("-" * len(header))
    for row in summary.itertuples():
        lines.append(
            f"{row.partitioner:<18} {_t(row.ttft_p50_s):>10} {_t(row.tpot_p50_s):>10} "
            f"{_t(row.itl_p99_s):>10} {_j(row.energy_j_per_token):>8} "
            f"{_pct(row.compute_share):>8} {_pct(row.comm_share):>6} "
            f"{_pct(row.migration_share):>6} {_pct(row.recovery_share):>6} {row.migrations:>6} "
            f"{format_bytes(row.migration_bytes, 3):>10} {row.oom_events:>5}  {row.outcome}")
    peaks = peak_memory_by_device(memory)
    if not peaks.empty:
        lines.append("")
        lines += _memory_block(peaks, memory)
    return "\n".join(lines)


#: Up to this many devices the summary lists each one's peak memory; beyond, one line per
#: partitioner says how many devices hold blocks and which is the fullest.
LIST_DEVICES_UP_TO = 8


def _memory_block(peaks: pd.DataFrame, memory: pd.DataFrame) -> list[str]:
    """Peak memory per device (few devices), or per partitioner in one line each."""
    def cell(r) -> str:
        return f"{format_bytes(r.peak_bytes, 3)}/{format_bytes(r.capacity_bytes, 3)}"

    devices = peaks.device.nunique()
    if devices <= LIST_DEVICES_UP_TO:
        lines = ["peak memory per device (used / capacity):"]
        for label, group in peaks.groupby("partitioner", sort=False):
            lines.append(f"  {label}: " + ", ".join(f"{r.device} {cell(r)}"
                                                      for r in group.itertuples()))
        return lines
    controllers = set(memory.loc[memory.controller.astype(bool), "device"]) \
        if "controller" in memory.columns else set()
    lines = [f"peak memory ({devices} devices; memory.csv has every sample):"]
    for label, group in peaks.groupby("partitioner", sort=False):
        workers = group[~group.device.isin(controllers)]
        holding = workers[workers.peak_bytes > 0]
        fullest = workers.assign(share=workers.peak_bytes / workers.capacity_bytes) \
            .sort_values("share", ascending=False, kind="stable").head(1)
        text = f"  {label}: {len(holding)} of {len(workers)} workers hold blocks"
        if not fullest.empty and fullest.peak_bytes.iloc[0] > 0:
            r = next(fullest.itertuples())
            text += f"; fullest {r.device} {cell(r)} ({100 * r.share:.0f} %)"
        text += f"; all workers {format_bytes(holding.peak_bytes.sum(), 3)}"
        lines.append(text)
    return lines


def _t(seconds: float) -> str:
    return "-" if not np.isfinite(seconds) else format_time(seconds, 3)


def _j(joules: float) -> str:
    return "-" if not np.isfinite(joules) else f"{joules:.3g}"


def _pct(fraction: float) -> str:
    return "-" if not np.isfinite(fraction) else f"{100 * fraction:.0f}%"


def format_sweep_summary(summary: pd.DataFrame) -> str:
    """Mean over seeds of the main figures, per case / grid point and partitioner."""
    keys = [c for c in summary.columns
            if c not in SUMMARY_COLUMNS and c not in ("run_id", "seed", "sim_wall_s")]
    group = keys + ["partitioner"]
    if "peak_worker_memory_bytes" not in summary.columns:   # results of an older version
        summary = summary.assign(peak_worker_memory_bytes=summary.peak_memory_bytes)
    for column in ("ttft_p50_s", "tpot_p50_s"):            # results of an older version
        if column not in summary.columns:
            summary = summary.assign(**{column: np.nan})
    stats = summary.groupby(group, sort=False).agg(
        runs=("mean_latency_s", "size"), ttft=("ttft_p50_s", "mean"),
        tpot=("tpot_p50_s", "mean"), migrations=("migrations", "mean"),
        peak_memory_bytes=("peak_worker_memory_bytes", "mean"),
        oom_events=("oom_events", "sum"))
    widths = [max(len(k), *(len(str(v)) for v in summary[k])) for k in group]
    lines = [" ".join(f"{k:<{w}}" for k, w in zip(group, widths)) +
             f" {'runs':>4} {'TTFT':>10} {'TPOT':>10} {'moves':>7} {'peak mem*':>10} {'OOM':>5}"]
    lines.append("-" * len(lines[0]))
    for index, row in stats.iterrows():
        index = index if isinstance(index, tuple) else (index,)
        lines.append(" ".join(f"{str(v):<{w}}" for v, w in zip(index, widths)) +
                     f" {int(row.runs):>4} {_t(row.ttft):>10} "
                     f"{_t(row.tpot):>10}"
                     f" {row.migrations:>7.1f} {format_bytes(row.peak_memory_bytes, 3):>10}"
                     f" {int(row.oom_events):>5}")
    lines.append("TTFT: time to first token (prefill included); TPOT: time per output token "
                 "after it (p50s, mean over runs)")
    lines.append("* peak memory of the fullest device other than the controller, mean over runs")
    return "\n".join(lines)
