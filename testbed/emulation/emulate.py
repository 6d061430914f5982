"""Execute token plans on the Mininet network of a topology.

:func:`emulate_plans` builds the network once (:mod:`.mininet_net`), then for each plan
resets every link to its capacity at time 0, starts one worker per device inside its
host, replays the links' capacity series from the run's ``t0`` (:mod:`.shaping`) and
collects the emulated tables (:mod:`.executor`). Everything it creates belongs to the
given :class:`~testbed.emulation.resources.RunResources`, which the caller closes.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from testbed.cluster.topology import Topology
from testbed.emulation.executor import deadline_s, emulated_tables, run_plan
from testbed.emulation.mininet_net import EmulatedNetwork, build_network, check_reachability
from testbed.emulation.plan import TokenPlan
from testbed.emulation.resources import RunResources
from testbed.emulation.shaping import CapacityReplayer, schedule

WORKER_PORT = 47100


@dataclass
class EmulatedResult:
    label: str
    tables: dict[str, pd.DataFrame]   # tokens, transfers, computes, capacity
    wall_s: float


def _launcher(network: EmulatedNetwork):
    def launch(device: str, argv: list[str], log: Path) -> subprocess.Popen:
        with open(log, "wb") as handle:
            return network.host(device).popen(argv, stdout=handle, stderr=subprocess.STDOUT)
    return launch


def emulate_plans(topology: Topology, plans: list[tuple[str, TokenPlan]],
                  resources: RunResources, *, netem: bool = False, queueing: str = "fair",
                  progress=lambda text: None) -> list[EmulatedResult]:
    progress(f"building the network in Mininet (prefix {resources.prefix}): "
             f"{len(topology.devices)} hosts, {len(topology.switches)} bridges, "
             f"{len(topology.links) // 2} links, {queueing} queues")
    network = build_network(topology, resources, netem=netem, queueing=queueing)
    check_reachability(network)
    addresses = {d: (network.plan.identity[d], WORKER_PORT) for d in topology.devices}
    results = []
    for k, (label, plan) in enumerate(plans):
        network.reset_rates()
        changes = schedule(topology, deadline_s(plan))
        replayers: list[CapacityReplayer] = []

        def start_replay(t0: float, changes=changes, replayers=replayers) -> None:
            replayer = CapacityReplayer(changes, t0, network.rate_command,
                                        str(resources.run_dir / f"p{k}-tc.log"),
                                        lambda proc: resources.add_worker(proc, "-batch"))
            replayers.append(replayer)
            resources.on_close(replayer.stop)
            replayer.start()

        progress(f"emulating {label}: {len(plan.tokens)} tokens, {len(plan.transfers)} "
                 f"transfers, {len(changes)} capacity changes scheduled "
                 f"(~{plan.sim_duration_s:.1f} s simulated)")
        try:
            run = run_plan(plan, resources=resources, addresses=addresses,
                           launch=_launcher(network), tag=f"p{k}", on_start=start_replay)
        finally:
            for replayer in replayers:
                replayer.stop()
        tables = emulated_tables(plan, run)
        applied = replayers[0].applied if replayers else []
        tables["capacity"] = pd.DataFrame(
            [{"src": c.link[0], "dst": c.link[1], "at_s": c.at_s, "bps": c.bps,
              "applied_start_s": c.applied_start_s, "applied_end_s": c.applied_end_s,
              "ok": c.ok, "error": c.error} for c in applied],
            columns=["src", "dst", "at_s", "bps", "applied_start_s", "applied_end_s", "ok",
                     "error"])
        results.append(EmulatedResult(label, tables, run.wall_s))
    return results
