"""Join simulated and emulated runs and measure how far apart they are.

Transfers are joined on (token, kind, src, dst) and their order within that group: the
simulator's flows by start time (then id), the plan's transfers by the start time (then
id) of the flow they were compiled from (:func:`~testbed.emulation.plan.compile_plan`
matches every transfer of the task graph to its simulated flow), so the pairing holds for
any dataflow, including collectives that send several transfers between the same two
devices in one layer. Against the run the plan was compiled from, the pairing is exact;
against a re-simulation of the same placements under a corrected network model (the same
graphs, other times) it assumes that transfers between two devices start in the same
order. Sizes must agree, or the join fails loudly. Tokens join on their index.

The error of one item is ``100 * (simulated - emulated) / emulated`` (%): the emulation,
real TCP over shaped links, is the reference. :func:`error_table` gives, per metric, the
number of items and the median and 90th percentile of the absolute error.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd

from testbed.cluster.topology import Topology
from testbed.emulation.plan import TokenPlan

if TYPE_CHECKING:
    from testbed.sim.network import FlowRecord
    from testbed.sim.record_log import ChunkedLog

COLUMNS = ["metric", "n", "median_err_pct", "p90_err_pct"]
#: Transfers with fewer bytes than this are excluded from ``transfer_time`` (they are
#: signals of the paper preset's zero-byte hand-overs, not transfers).
MIN_BYTES = 1


#: Size classes of the per-size rows (bytes): a token bucket is a frame ahead of a real
#: link, which matters for transfers of a few frames only.
SIZE_CLASSES = (("<16kB", 1, 16_000), ("16-64kB", 16_000, 64_000), ("64-256kB", 64_000, 256_000),
                (">=256kB", 256_000, float("inf")))


class JoinError(ValueError):
    """Simulated and emulated records do not describe the same plan."""


def link_kind(topology: Topology, src: str, dst: str, at_s: float) -> str:
    """The technology of the path's bottleneck at ``at_s`` (``u-v`` if it has none)."""
    best, kind = None, ""
    for key in topology.path(src, dst):
        link = topology.links[key]
        capacity = link.capacity_at(at_s)
        if best is None or capacity < best:
            best, kind = capacity, link.technology or f"{key[0]}-{key[1]}"
    return kind


def join_transfers(plan: TokenPlan, sim_flows: list[FlowRecord] | ChunkedLog[FlowRecord],
                   emulated: pd.DataFrame, topology: Topology,
                   size_of: Callable[[float], float] = float,
                   ) -> pd.DataFrame:
    """One row per transfer: identifiers, simulated and emulated start, end, duration."""
    sim_groups: dict[tuple, list] = defaultdict(list)
    for flow in sorted(sim_flows, key=lambda f: (f.start_s, f.flow_id)):
        sim_groups[(int(flow.tag[1:]), flow.kind, flow.src, flow.dst)].append(flow)
    plan_groups: dict[tuple, list] = defaultdict(list)
    for info in sorted(plan.transfers, key=lambda t: (t.sim_start_s, t.flow_id, t.xfer)):
        plan_groups[(info.token, info.kind, info.src, info.dst)].append(info)
    if set(sim_groups) != set(plan_groups):
        extra = sorted(set(sim_groups) ^ set(plan_groups))[:5]
        raise JoinError(f"simulated and planned transfers differ, e.g. {extra}")
    emu = emulated.set_index("xfer")
    rows = []
    for key, infos in plan_groups.items():
        flows = sim_groups[key]
        if len(flows) != len(infos):
            raise JoinError(f"token {key[0]} {key[1]} {key[2]}->{key[3]}: {len(flows)} "
                            f"simulated flows, {len(infos)} planned transfers")
        for flow, info in zip(flows, infos):
            if abs(flow.size_bytes - size_of(info.size_bytes)) > 0.5 + 1e-9 * flow.size_bytes:
                raise JoinError(f"token {info.token} layer {info.layer} {info.stage} "
                                f"{info.src}->{info.dst}: simulated {flow.size_bytes} B, "
                                f"planned {info.size_bytes} B")
            e = emu.loc[info.xfer]
            rows.append({
                "xfer": info.xfer, "token": info.token, "layer": info.layer, "stage": info.stage,
                "src": info.src, "dst": info.dst, "kind": info.kind,
                "size_bytes": info.size_bytes,
                "link_kind": link_kind(topology, info.src, info.dst, flow.start_s),
                "hops": flow.hops, "sim_start_s": flow.start_s, "sim_end_s": flow.end_s,
                "sim_s": flow.end_s - flow.start_s, "emu_start_s": e.start_s,
                "emu_end_s": e.end_s, "emu_s": e.duration_s})
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame = frame.sort_values(["token", "sim_start_s", "layer"], kind="stable")
        frame["err_pct"] = _err(frame.sim_s, frame.emu_s)
    return frame.reset_index(drop=True)


def join_tokens(sim_tokens: list, emulated: pd.DataFrame) -> pd.DataFrame:
    sim = pd.DataFrame([{"token": t.token, "phase": t.phase, "sim_start_s": t.start_s,
                         "sim_end_s": t.end_s, "sim_s": t.latency_s} for t in sim_tokens])
    emu = emulated.rename(columns={"start_s": "emu_start_s", "end_s": "emu_end_s",
                                   "latency_s": "emu_s"})
    if len(sim) != len(emu):
        raise JoinError(f"{len(sim)} simulated tokens, {len(emu)} emulated")
    frame = sim.merge(emu, on="token", how="inner", validate="one_to_one")
    frame["err_pct"] = _err(frame.sim_s, frame.emu_s)
    return frame


def _err(sim: pd.Series, emu: pd.Series) -> pd.Series:
    return 100.0 * (sim - emu) / emu


def error_row(metric: str, errors: pd.Series) -> dict:
    errors = errors.dropna().abs()
    if errors.empty:
        return {"metric": metric, "n": 0, "median_err_pct": np.nan, "p90_err_pct": np.nan}
    return {"metric": metric, "n": int(len(errors)),
            "median_err_pct": float(np.percentile(errors, 50)),
            "p90_err_pct": float(np.percentile(errors, 90))}


def error_rows(transfers: pd.DataFrame, tokens: pd.DataFrame, *, suffix: str = "",
               sim_column: str = "sim_s", detail: bool = True) -> list[dict]:
    """Rows of the error table for one simulated column against the emulation."""
    real = transfers[transfers.size_bytes >= MIN_BYTES] if not transfers.empty else transfers
    t_err = _err(real[sim_column], real.emu_s) if not real.empty else pd.Series(dtype=float)
    rows = [error_row(f"transfer_time{suffix}", t_err),
            error_row(f"token_latency{suffix}", _err(tokens[sim_column], tokens.emu_s))]
    if detail and not real.empty:
        for kind in sorted(real.link_kind.unique()):
            part = real[real.link_kind == kind]
            rows.append(error_row(f"transfer_time[{kind}]{suffix}",
                             _err(part[sim_column], part.emu_s)))
        for label, low, high in SIZE_CLASSES:
            part = real[(real.size_bytes >= low) & (real.size_bytes < high)]
            if not part.empty:
                rows.append(error_row(f"transfer_time[{label}]{suffix}",
                                 _err(part[sim_column], part.emu_s)))
        for kind in sorted(real.kind.unique()):
            if kind != "inference":
                part = real[real.kind == kind]
                rows.append(error_row(f"transfer_time[{kind}]{suffix}",
                                 _err(part[sim_column], part.emu_s)))
    return rows


def compute_rows(computes: pd.DataFrame) -> list[dict]:
    """How faithfully the workers slept the simulated compute times (a diagnostic)."""
    busy = computes[computes.sim_s > 0]
    return [error_row("compute_time", _err(busy.sim_s, busy.emu_s))] if not busy.empty else []


def error_table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)


def format_table(table: pd.DataFrame) -> str:
    width = max([len("metric")] + [len(m) for m in table.metric])
    lines = [f"{'metric':<{width}}  {'n':>6}  {'median_err_pct':>14}  {'p90_err_pct':>11}"]
    for row in table.itertuples(index=False):
        lines.append(f"{row.metric:<{width}}  {row.n:>6}  {row.median_err_pct:>14.2f}  "
                     f"{row.p90_err_pct:>11.2f}")
    return "\n".join(lines)
