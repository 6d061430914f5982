"""Derived figures computed from the tidy tables (no simulation here)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from testbed.cluster.topology import Topology


def shared_resources(topology: Topology):
    """``resources(src, dst)``: what a flow from ``src`` to ``dst`` takes capacity from —
    the link directions of its route and the shared media (Wi-Fi channels) they belong
    to."""
    medium_of = {key: name for name, medium in topology.media.items()
                 for key in medium.members}

    @lru_cache(maxsize=None)
    def resources(src: str, dst: str) -> frozenset:
        path = topology.path(src, dst)
        return frozenset(path) | frozenset(medium_of[k] for k in path if k in medium_of)
    return resources


def migration_interference(flows: pd.DataFrame, topology: Topology,
                           keys: list[str] | None = None) -> pd.DataFrame:
    """How much migrations slow the inference transfers that share capacity with them.

    An inference flow *overlaps* a migration when a migration (or delta, or recovery)
    flow was in flight at the same time **and** their routes share a link direction or a
    shared medium (a Wi-Fi channel): flows at the same time on disjoint links do not
    interfere. Rates (bytes over fluid time, latency excluded) are compared **on the same
    route**: for every source–destination pair with both kinds of inference flows, the
    ratio of the mean rate of those that overlapped to the mean rate of those that did
    not; ``rate_ratio`` is the mean of these ratios weighted by the overlapping flows
    (below 1 when migrations take capacity away). Returns, per group of ``keys`` (default:
    partitioner): inference flows, how many overlapped, their mean durations (s), the
    ratio and how many routes it compares.
    """
    keys = keys or ["partitioner"]
    resources = shared_resources(topology)
    runs = [k for k in ("run_id", "partitioner") if k in flows.columns]  # one simulation each
    flags = pd.Series(False, index=flows.index)
    for _, part in flows.groupby(runs, sort=False):
        infer = part[part.kind == "inference"]
        moving = part[part.kind != "inference"]
        if moving.empty:
            continue
        order = np.argsort(moving.start_s.to_numpy(), kind="stable")
        starts = moving.start_s.to_numpy()[order]
        ends = moving.fluid_end_s.to_numpy()[order]
        taken = [resources(s, d) for s, d in zip(moving.src.to_numpy()[order],
                                                 moving.dst.to_numpy()[order])]
        for index, src, dst, s, e in zip(infer.index, infer.src.to_numpy(),
                                         infer.dst.to_numpy(), infer.start_s.to_numpy(),
                                         infer.fluid_end_s.to_numpy()):
            before = int(np.searchsorted(starts, e, side="left"))   # started before e
            mine = resources(src, dst)
            flags[index] = any(not mine.isdisjoint(taken[j])
                               for j in np.flatnonzero(ends[:before] > s))
    rows = []
    for group, part in flows.groupby(keys, sort=False):
        group = group if isinstance(group, tuple) else (group,)
        infer = part[part.kind == "inference"]
        overlap = flags[infer.index].to_numpy()
        duration = (infer.end_s - infer.start_s).to_numpy()
        ratio, routes = _same_route_ratio(infer, overlap)
        rows.append({**dict(zip(keys, group)),
                     "inference_flows": int(len(infer)),
                     "overlapping": int(overlap.sum()),
                     "mean_s_overlapping": float(duration[overlap].mean()) if overlap.any()
                     else np.nan,
                     "mean_s_alone": float(duration[~overlap].mean()) if (~overlap).any()
                     else np.nan,
                     "rate_ratio": ratio,
                     "routes_compared": routes})
    return pd.DataFrame(rows)


def _same_route_ratio(infer: pd.DataFrame, overlap: np.ndarray) -> tuple[float, int]:
    """Mean over routes (weighted by overlapping flows) of the overlapping flows' mean
    rate over the other flows' mean rate on the same route; and the routes compared."""
    fluid = (infer.fluid_end_s - infer.start_s).to_numpy()
    rate = np.where(fluid > 0, infer.size_bytes.to_numpy() * 8 / np.maximum(fluid, 1e-15),
                    np.nan)
    frame = pd.DataFrame({"src": infer.src.to_numpy(), "dst": infer.dst.to_numpy(),
                          "rate": rate, "overlap": overlap})
    ratios, weights = [], []
    for _, route in frame.groupby(["src", "dst"], sort=False):
        hit, alone = route[route.overlap], route[~route.overlap]
        if len(hit) and len(alone) and np.nanmean(alone.rate) > 0:
            ratios.append(np.nanmean(hit.rate) / np.nanmean(alone.rate))
            weights.append(len(hit))
    if not ratios:
        return np.nan, 0
    return float(np.average(ratios, weights=weights)), len(ratios)
