"""Chrome trace-event JSON (opens in ui.perfetto.dev and chrome://tracing) from timeline
slices (:func:`testbed.experiments.timeline.timeline_slices`).

One process (``pid``) per partitioner; one thread (``tid``) per track and lane: the
tokens, every device, every link direction, the migrations. Each slice is a complete
event (``"ph": "X"``) with ``ts`` and ``dur`` in microseconds; metadata events
(``"ph": "M"``) name and order the processes and threads.

Times are whole nanoseconds written as microseconds: each value is the double nearest
above ``ns / 1000`` whose product by 1000 truncates back to ``ns``, so that a viewer that
converts to integer nanoseconds (Perfetto does) gets back-to-back slices exactly
back to back, never overlapping.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from testbed.cluster.topology import Topology
from testbed.experiments.timeline import link_track


def microseconds(ns: int) -> float:
    """``ns`` nanoseconds as microseconds, exact once multiplied by 1000 and truncated."""
    value = ns / 1000
    while int(value * 1000.0) < ns:
        value = math.nextafter(value, math.inf)
    return value


def _plain(value: object) -> object:
    """A JSON-safe value (numpy scalars unwrapped, non-finite numbers as null)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _thread_name(kind: str, track: str) -> str:
    return {"device": f"device {track}", "link": f"link {track}"}.get(kind, track)


def trace_document(slices: pd.DataFrame, topology: Topology, partitioners: list[str], *,
                   meta: dict | None = None) -> dict:
    """The trace-event document of ``slices``: every device and link direction of
    ``topology`` gets a named track under each partitioner, busy or not."""
    tracks = [("tokens", "tokens")]
    tracks += [("device", name) for name in topology.devices]
    tracks += [("link", link_track(src, dst)) for src, dst in topology.links]
    tracks += [("migrations", "migrations")]
    events: list[dict] = []
    for index, partitioner in enumerate(partitioners):
        pid = index + 1
        part = slices[slices.partitioner == partitioner] if not slices.empty else slices
        lanes: dict[tuple[str, str], int] = {}
        if not part.empty:
            for (kind, track), lane in part.groupby(["track_kind", "track"]).lane.max().items():
                lanes[(kind, track)] = int(lane) + 1
        events.append(_meta("process_name", pid, 0, {"name": f"partitioner {partitioner}"}))
        events.append(_meta("process_sort_index", pid, 0, {"sort_index": pid}))
        tids: dict[tuple[str, str, int], int] = {}
        for kind, track in tracks:
            for lane in range(lanes.get((kind, track), 1)):
                tid = len(tids) + 1
                tids[(kind, track, lane)] = tid
                name = _thread_name(kind, track) + (f" ({lane + 1})" if lane else "")
                events.append(_meta("thread_name", pid, tid, {"name": name}))
                events.append(_meta("thread_sort_index", pid, tid, {"sort_index": tid}))
        for row in part.itertuples(index=False):
            row_tid = tids.get((row.track_kind, row.track, row.lane))
            if row_tid is None:  # a track the topology does not list (should not happen)
                row_tid = len(tids) + 1
                tids[(row.track_kind, row.track, row.lane)] = row_tid
                events.append(_meta("thread_name", pid, row_tid, {"name": row.track}))
            events.append({
                "name": row.name, "cat": row.category, "ph": "X",
                "ts": microseconds(row.start_ns),
                "dur": microseconds(row.end_ns - row.start_ns),
                "pid": pid, "tid": row_tid,
                "args": _plain({**row.args, "token": row.token,
                                "start_s": row.start_ns / 1e9, "end_s": row.end_ns / 1e9}),
            })
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": _plain({"generator": "testbed", **(meta or {})})}


def _meta(name: str, pid: int, tid: int, args: dict) -> dict:
    return {"name": name, "ph": "M", "ts": 0, "pid": pid, "tid": tid, "args": args}


def write_json(document: dict, path: str | Path) -> Path:
    """Write ``document`` as compact JSON (strict: no NaN)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle, separators=(",", ":"), allow_nan=False)
    return path
