"""The timeline of a run: what each device and each link was doing when, as slices.

:func:`timeline_slices` turns a run's tables into one row per slice on a track:

- ``device`` tracks: block computations (the ``jobs`` table, recorded with
  ``record_jobs=True``), one slice per queued job, named by block kind (``attn``,
  ``proj``, ``ffn``, ``lm_head``);
- ``link`` tracks, one per link direction ``a->b``: every transfer (the ``flows`` table)
  on each link of its route, from its start to its arrival, named by flow kind
  (``inference``, ``migration``, ``migration-delta``, ``recovery``);
- a ``migrations`` track: each migrated block from its decision to when it serves from
  its new device;
- a ``tokens`` track: each generated token from its start to its end.

Slices on one track may overlap (concurrent flows share a link): each gets the first
``lane`` of its track where it overlaps nothing, so that every lane is a plain sequence.
Times are whole nanoseconds (``start_ns``, ``end_ns``) so that lanes stay exact in any
viewer. :func:`write_trace` writes the Chrome/Perfetto trace-event JSON of the slices
(:mod:`.trace_events`).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from testbed.cluster.topology import Topology

TRACK_KINDS = ("tokens", "device", "link", "migrations")   # in display order
COLUMNS = ("partitioner", "track_kind", "track", "order", "lane", "name", "category",
           "token", "start_ns", "end_ns", "args")
_TOKEN_TAG = re.compile(r"^t(\d+)")


def link_track(src: str, dst: str) -> str:
    """The track name of the link direction ``src -> dst``."""
    return f"{src}->{dst}"


def _ns(seconds: float) -> int:
    return int(round(float(seconds) * 1e9))


def _token_of(tag: str) -> int:
    """The token a job label or flow tag belongs to (``t12.attn`` -> 12), or 0."""
    match = _TOKEN_TAG.match(str(tag))
    return int(match.group(1)) if match else 0


def timeline_slices(tables: dict[str, pd.DataFrame], topology: Topology) -> pd.DataFrame:
    """Every slice of the run, per partitioner (in the order of the tables) and track, with
    its lane (see the module docstring). ``order`` ranks the tracks (devices and links in
    topology order)."""
    order: dict[tuple[str, str], int] = {("tokens", "tokens"): 0}
    for name in topology.devices:
        order[("device", name)] = len(order)
    for src, dst in topology.links:
        order[("link", link_track(src, dst))] = len(order)
    order[("migrations", "migrations")] = len(order)

    rows: list[tuple] = []
    for row in _rows(tables, "tokens"):
        rows.append((row["partitioner"], "tokens", "tokens", f"token {row['token']}",
                     "token", int(row["token"]), row["start_s"], row["end_s"],
                     {"phase": row["phase"], "latency_ms": 1e3 * row["latency_s"],
                      "migration_wait_ms": 1e3 * row["migration_wait_s"]}))
    for row in _rows(tables, "jobs"):
        label = str(row["label"])
        kind = label.rsplit(".", 1)[-1]
        rows.append((row["partitioner"], "device", row["device"], kind, "compute",
                     _token_of(label), row["start_s"], row["end_s"],
                     {"label": label, "blocks": int(row["n_blocks"]),
                      "queued_at_s": row["submit_s"]}))
    for row in _rows(tables, "flows"):
        details = {"flow_id": int(row["flow_id"]), "src": row["src"], "dst": row["dst"],
                   "bytes": float(row["size_bytes"]), "tag": row["tag"],
                   "hops": int(row["hops"]), "stalled_ms": 1e3 * row["stalled_s"]}
        for src, dst in topology.path(row["src"], row["dst"]):
            rows.append((row["partitioner"], "link", link_track(src, dst), row["kind"],
                         "transfer", _token_of(row["tag"]), row["start_s"], row["end_s"],
                         details))
    for row in _rows(tables, "migrations"):
        rows.append((row["partitioner"], "migrations", "migrations", f"migrate {row['block']}",
                     "migration", int(row["token"]), row["start_s"], row["end_s"],
                     {"block": row["block"], "src": row["src"], "dst": row["dst"],
                      "bytes": float(row["size_bytes"]), "mode": row["mode"]}))

    records = []
    for partitioner, kind, track, name, category, token, start_s, end_s, args in rows:
        start = _ns(start_s)
        records.append((partitioner, kind, track, order.get((kind, track), len(order)), 0,
                        name, category, token, start, max(start, _ns(end_s)), args))
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    if frame.empty:
        return frame
    rank = {name: i for i, name in enumerate(dict.fromkeys(frame.partitioner))}
    frame = frame.assign(_rank=frame.partitioner.map(rank))
    frame = frame.sort_values(["_rank", "order", "start_ns", "end_ns"], kind="stable",
                              ignore_index=True).drop(columns="_rank")
    frame["lane"] = assign_lanes(frame)
    return frame


def _rows(tables: dict[str, pd.DataFrame], name: str):
    frame = tables.get(name)
    if frame is None or frame.empty:
        return iter(())
    if "partitioner" not in frame.columns:
        frame = frame.assign(partitioner="")
    return frame.to_dict("records")


def assign_lanes(frame: pd.DataFrame) -> list[int]:
    """First-fit lanes per (partitioner, track) of a frame sorted by start: a slice takes
    the first lane whose last slice ended by its start."""
    lanes = []
    ends: dict[tuple[str, str], list[int]] = {}
    for partitioner, track, start, end in zip(frame.partitioner, frame.track,
                                              frame.start_ns, frame.end_ns):
        busy = ends.setdefault((partitioner, track), [])
        for lane, lane_end in enumerate(busy):
            if lane_end <= start:
                busy[lane] = end
                break
        else:
            lane = len(busy)
            busy.append(end)
        lanes.append(lane)
    return lanes


def write_trace(result, path: str | Path) -> Path:
    """Write the Chrome/Perfetto trace of a :class:`~testbed.experiments.runner.RunResult`
    (recorded with ``record_jobs=True`` for the device tracks) to ``path``."""
    from testbed.experiments.trace_events import trace_document, write_json

    scenario = result.scenario
    slices = timeline_slices(result.tables, scenario.sim.topology)
    partitioners = list(result.summary.partitioner) if "partitioner" in result.summary \
        else sorted(set(slices.partitioner))
    document = trace_document(slices, scenario.sim.topology, partitioners,
                              meta={"scenario": scenario.name, "seed": scenario.seed,
                                    "model": scenario.sim.model.name})
    return write_json(document, path)
