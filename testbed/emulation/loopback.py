"""Run the workers on the loopback interface, without Mininet or root.

No link is shaped, so transfers take microseconds: this checks the plan and the workers
(every task runs, every byte arrives, the tables join), not the network model. The tests
use it; so can anyone debugging a plan on a machine without Mininet.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from testbed.emulation.executor import EmulatedRun, run_plan
from testbed.emulation.plan import TokenPlan
from testbed.emulation.resources import RunResources

LOOPBACK = "127.0.0.1"


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    try:
        for _ in range(n):
            sock = socket.socket()
            sock.bind((LOOPBACK, 0))
            socks.append(sock)
            ports.append(sock.getsockname()[1])
    finally:
        for sock in socks:
            sock.close()
    return ports


def launch_local(device: str, argv: list[str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as handle:
        return subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT,
                                start_new_session=True)


def run_on_loopback(plan: TokenPlan, resources: RunResources, tag: str = "loop"
                    ) -> EmulatedRun:
    ports = free_ports(len(plan.devices))
    addresses = {d: (LOOPBACK, p) for d, p in zip(plan.devices, ports)}
    return run_plan(plan, resources=resources, addresses=addresses, launch=launch_local,
                    tag=tag)
