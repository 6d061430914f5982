"""Derived figures computed from the tidy tables (no simulation here)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def migration_interference(flows: pd.DataFrame, keys: list[str] | None = None) -> pd.DataFrame:
    """How much migrations slow the inference transfers they overlap with.

    For every inference flow: its achieved rate (bytes over its fluid time, latency
    excluded) and whether a migration flow was in flight at the same time. Returns, per
    group of ``keys`` (default: partitioner), the number of inference flows that overlapped
    a migration, the mean duration of overlapping and of other inference flows (s), and the
    ratio of their mean achieved rates (below 1 when migrations take capacity away).
    """
    keys = keys or ["partitioner"]
    runs = [k for k in ("run_id", "partitioner") if k in flows.columns]  # one simulation each
    flags = pd.Series(False, index=flows.index)
    for _, part in flows.groupby(runs, sort=False):
        infer = part[part.kind == "inference"]
        moving = part[part.kind != "inference"]
        order = np.argsort(moving.start_s.to_numpy(), kind="stable")
        starts = moving.start_s.to_numpy()[order]
        ends = moving.fluid_end_s.to_numpy()[order]
        for index, s, e in zip(infer.index, infer.start_s.to_numpy(),
                               infer.fluid_end_s.to_numpy()):
            before = np.searchsorted(starts, e, side="left")   # migrations started before e
            flags[index] = bool(before) and bool((ends[:before] > s).any())
    rows = []
    for group, part in flows.groupby(keys, sort=False):
        group = group if isinstance(group, tuple) else (group,)
        infer = part[part.kind == "inference"]
        overlap = flags[infer.index].to_numpy()
        fluid = (infer.fluid_end_s - infer.start_s).to_numpy()
        rate = np.where(fluid > 0, infer.size_bytes.to_numpy() * 8 / np.maximum(fluid, 1e-15),
                        np.nan)
        duration = (infer.end_s - infer.start_s).to_numpy()
        rows.append({**dict(zip(keys, group)),
                     "inference_flows": int(len(infer)),
                     "overlapping": int(overlap.sum()),
                     "mean_s_overlapping": float(duration[overlap].mean()) if overlap.any()
                     else np.nan,
                     "mean_s_alone": float(duration[~overlap].mean()) if (~overlap).any()
                     else np.nan,
                     "rate_ratio": float(np.nanmean(rate[overlap]) / np.nanmean(rate[~overlap]))
                     if overlap.any() and (~overlap).any() else np.nan})
    return pd.DataFrame(rows)
