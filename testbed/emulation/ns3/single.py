"""Single transfers in ns-3, for checks of the transport model: one message over one
point-to-point link on a connection that is open (handshake done) but has sent nothing, so
it starts from TCP's initial window."""

from __future__ import annotations

import tempfile
from pathlib import Path

from testbed.emulation.ns3.settings import Ns3Settings
from testbed.emulation.ns3.validate import execute

PPP_FRAME_BYTES = 1502          # a 1500-byte IP packet in ns-3's point-to-point framing


def single_transfer_s(sizes_bytes: list[int], *, goodput_bps: float, one_way_s: float,
                      settings: Ns3Settings = Ns3Settings(warm_up_bytes=0)) -> list[float]:
    """Per size: the time (s) from handing the message to TCP until its last byte arrives,
    over a link whose TCP goodput is ``goodput_bps`` (its line rate is set so) with
    ``one_way_s`` of latency, each on a fresh ns-3 simulation."""
    line_bps = goodput_bps * PPP_FRAME_BYTES / settings.segment_bytes
    network = {"nodes": ["a", "b"], "bss": [], "changes": [],
               "p2p": [{"a": 0, "b": 1, "bps_ab": line_bps, "bps_ba": line_bps,
                        "delay_s": one_way_s}],
               "settings": settings.as_dict()}
    plans = [{"tasks": [{"device": 0, "op": 2, "duration_s": 0.0, "dst": 1,
                         "size_bytes": int(size), "conn": 0, "xfer": 0, "signal": -1,
                         "not_before_s": 0.0, "done_event": 0, "deps": []}],
              "task_ids": [0], "xfers": [0], "connections": [[0, 1]], "xfer_event": [1],
              "signal_event": [], "n_events": 2, "deadline_s": 60.0}
             for size in sizes_bytes]
    with tempfile.TemporaryDirectory(prefix="testbed-ns3-") as folder:
        runs = execute(network, plans, Path(folder))
    return [reps[0]["results"]["b"]["recv"][0][1] for reps in runs]


def concurrent_transfers_s(topology, cases: list[list[tuple[str, str, int]]],
                           settings: Ns3Settings = Ns3Settings()) -> list[list[float]]:
    """Per case, transfers ``(src, dst, size_bytes)`` of ``topology`` all started at once on
    warm connections, each case in a fresh ns-3 simulation (one child process for all):
    the time each one's last byte arrives (s)."""
    from testbed.emulation.ns3.build import network_description
    network = network_description(topology, settings, horizon_s=60.0)
    index = {name: i for i, name in enumerate(network["nodes"])}
    plans = []
    for transfers in cases:
        n = len(transfers)
        tasks = [{"device": index[src], "op": 2, "duration_s": 0.0, "dst": index[dst],
                  "size_bytes": int(size), "conn": k, "xfer": k, "signal": -1,
                  "not_before_s": 0.0, "done_event": k, "deps": []}
                 for k, (src, dst, size) in enumerate(transfers)]
        plans.append({"tasks": tasks, "task_ids": list(range(n)), "xfers": list(range(n)),
                      "connections": [[index[s], index[d]] for s, d, _ in transfers],
                      "xfer_event": list(range(n, 2 * n)), "signal_event": [],
                      "n_events": 2 * n, "deadline_s": 60.0})
    with tempfile.TemporaryDirectory(prefix="testbed-ns3-") as folder:
        runs = execute(network, plans, Path(folder))
    out = []
    for transfers, reps in zip(cases, runs):
        arrived = {x: t for records in reps[0]["results"].values() for x, t in records["recv"]}
        out.append([arrived[k] for k in range(len(transfers))])
    return out
