"""The child process of the ns-3 backend: ``python -m testbed.emulation.ns3.execute IN OUT``.

Reads the network and the plans (:mod:`.build`) from ``IN`` (JSON), compiles the executor
(``runner.cpp``) with cppyy's cling, runs each plan in a fresh ns-3 simulation (once per
replication, with ns-3 run numbers ``rng_run``, ``rng_run + 1``, ...) and writes, per plan
and replication, the records a Mininet worker would have written (times in s from t0, the end of
the warm-up): ``mark [task, t]``, ``compute [task, ready, start, end]``, ``send [task,
xfer, ready, start, end]``, ``recv [xfer, t]``, per device. ns-3 is imported here only,
because importing it takes seconds and writes cling's messages to stderr.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from testbed.emulation.ns3.settings import CONGESTION

RUNNER_CPP = Path(__file__).with_name("runner.cpp")


def _compile():
    from ns import ns  # noqa: F401  (loads the ns-3 libraries and their headers)
    import cppyy
    if not hasattr(cppyy.gbl, "testbed_ns3"):
        cppyy.cppdef(RUNNER_CPP.read_text(encoding="utf-8"))
    return cppyy.gbl.testbed_ns3.Runner, cppyy.gbl.std.vector[int]


def run_plan(Runner, IntVector, network: dict, plan: dict, rng_run: int) -> dict:
    settings = network["settings"]
    r = Runner()
    r.SetRngRun(rng_run)
    for _ in network["nodes"]:
        r.AddNode()
    tcp = settings["tcp"]
    r.SetTcp(tcp["segment_size"], tcp["buffer_bytes"], tcp["initial_cwnd"],
             CONGESTION[tcp["congestion"]])
    for link in network["p2p"]:
        r.AddP2P(link["a"], link["b"], link["bps_ab"], link["bps_ba"], link["delay_s"],
                 settings["p2p_queue_packets"])
    wifi = settings["wifi"]
    for bss in network["bss"]:
        r.AddBss(bss["ap"], IntVector(bss["stations"]), bss["standard"], bss["channel"],
                 bss["data_mode"], bss["short_guard"], wifi["distance_m"],
                 wifi["max_ampdu_bytes"], bss["name"], bss["spatial_streams"],
                 bss["guard_ns"])
    for change in network["changes"]:
        r.ChangeRate(change["a"], change["b"], change["at_s"], change["bps"])
    r.Build()
    for src, dst in plan["connections"]:
        r.AddConnection(src, dst)
    tasks = plan["tasks"]
    for t in tasks:
        r.AddTask(t["device"], t["op"], t["duration_s"], t["dst"], t["size_bytes"], t["conn"],
                  t["xfer"], t["signal"], t["not_before_s"], t["done_event"])
    for k, t in enumerate(tasks):
        for event in t["deps"]:
            r.AddDependency(k, event)
    r.SetEvents(plan["n_events"], IntVector(plan["xfer_event"]),
                IntVector(plan["signal_event"]))
    started = time.perf_counter()
    r.Run(settings["warm_up_bytes"], 1.0, 0.1, plan["deadline_s"])
    wall = time.perf_counter() - started
    error = str(r.Error())
    nodes = network["nodes"]
    out: dict[str, dict[str, list[list[Any]]]] = {}
    ids, xfers = plan["task_ids"], plan["xfers"]
    for k, t in enumerate(tasks):
        records = out.setdefault(nodes[t["device"]], {"mark": [], "compute": [], "send": [],
                                                      "recv": [], "signal": []})
        ready, start, end = r.TaskReady(k), r.TaskStart(k), r.TaskEnd(k)
        if end < 0:
            continue
        if t["op"] == 0:
            records["mark"].append([ids[k], end])
        elif t["op"] == 1:
            records["compute"].append([ids[k], ready, start, end])
        elif t["op"] == 2:
            records["send"].append([ids[k], xfers[t["xfer"]], ready, start, end])
            arrived = r.Arrival(t["xfer"])
            if arrived >= 0:
                out.setdefault(nodes[t["dst"]], {"mark": [], "compute": [], "send": [],
                                                 "recv": [], "signal": []})["recv"].append(
                    [xfers[t["xfer"]], arrived])
        else:
            records["signal"].append([ids[k], t["signal"], end])
    return {"results": out, "error": error, "wall_s": wall, "warm_done_s": r.WarmDone(),
            "left": r.Left(), "ended_s": r.EndedAt()}


def main(argv: list[str]) -> int:
    source, target = argv
    data = json.loads(Path(source).read_text(encoding="utf-8"))
    Runner, IntVector = _compile()
    settings = data["network"]["settings"]
    runs = [[run_plan(Runner, IntVector, data["network"], plan, settings["rng_run"] + k)
             for k in range(settings["replications"])] for plan in data["plans"]]
    Path(target).write_text(json.dumps({"runs": runs}), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
