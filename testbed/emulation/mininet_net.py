"""Build a :class:`~testbed.cluster.topology.Topology` in Mininet.

One Mininet host per device, one Linux bridge per switch (no controller, no Open vSwitch),
one ``TCLink`` per link with each direction shaped on its sending end (htb; with ``netem``
where the kernel has it, the link's one-way latency too). Offloads (TSO/GSO/GRO) are turned
off on every link interface and ``gso_max_segs`` is 1 (the kernel's TCP builds GSO packets of
up to 64 kB whatever ethtool says, and the sender's own shaper would pass each at once), so
that every shaper sees real frames. The queues themselves come from
:func:`testbed.emulation.shaping.queue_batch` (``fair`` or ``fifo``); addresses and routes
from :mod:`testbed.emulation.addressing`. Everything created is registered with the run's
:class:`~testbed.emulation.resources.RunResources` before it exists, so that any failure
leaves nothing behind.
"""

from __future__ import annotations

import itertools
import subprocess
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from testbed.cluster.topology import Topology
from testbed.emulation.addressing import SEGMENT_PREFIX_LEN, AddressPlan, Port, plan_addresses
from testbed.emulation.resources import RunResources
from testbed.emulation.shaping import (BURST_BYTES, initial_capacity, mbit_per_s, queue_batch,
                                       tc_rate_args, tc_rate_line)
from testbed.emulation.support import run

if TYPE_CHECKING:
    from mininet.net import Mininet

#: Mininet's TCLink refuses ``bw`` above this (Mbit/s); the exact rate is set afterwards.
MININET_BW_MAX = 1000.0
HOST_SYSCTLS = ("net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0",
                "net.ipv4.conf.default.rp_filter=0", "net.ipv4.tcp_slow_start_after_idle=0",
                "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")


class NetworkSetupError(RuntimeError):
    """A command that builds the emulated network failed."""


@dataclass
class EmulatedNetwork:
    """The Mininet network of one topology and how to reach its interfaces."""

    topology: Topology
    plan: AddressPlan
    net: Mininet
    netem: bool
    burst_bytes: int
    queueing: str = "fair"
    pids: dict[str, int] = field(default_factory=dict)   # device -> namespace shell PID

    def host(self, device: str):
        return self.net.get(self.plan.mn_name[device])

    def in_node(self, port: Port, argv: list[str]) -> list[str]:
        """``argv`` run where ``port`` lives (a host's namespace or the root one)."""
        if port.is_switch:
            return argv
        return ["mnexec", "-a", str(self.pids[port.node])] + argv

    def rate_argv(self, link: tuple[str, str], bps: float) -> list[str]:
        port = self.plan.egress(link)
        return self.in_node(port, tc_rate_args(port.name, bps, self.burst_bytes))

    def rate_command(self, link: tuple[str, str], bps: float) -> tuple[str, list[str], str]:
        """(namespace key, command prefix to run there, tc batch line) for one change."""
        port = self.plan.egress(link)
        key = "root" if port.is_switch else port.node
        return key, self.in_node(port, []), tc_rate_line(port.name, bps, self.burst_bytes)

    def set_rates(self, rates: dict[tuple[str, str], float]) -> None:
        procs = [subprocess.Popen(self.rate_argv(link, bps), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE) for link, bps in rates.items()]
        errors = []
        for proc in procs:
            _, err = proc.communicate(timeout=10)
            if proc.returncode:
                errors.append(err.decode(errors="replace").strip())
        if errors:
            raise NetworkSetupError("tc class change failed: " + "; ".join(errors))

    def reset_rates(self) -> None:
        """Every link direction back to its capacity at time 0."""
        self.set_rates(initial_capacity(self.topology))


def build_network(topology: Topology, resources: RunResources, *, netem: bool = False,
                  queueing: str = "fair", burst_bytes: int = BURST_BYTES) -> EmulatedNetwork:
    """Create hosts, bridges and shaped links; configure addresses, routes and offloads."""
    from mininet.link import TCLink
    from mininet.log import setLogLevel
    from mininet.net import Mininet
    from mininet.nodelib import LinuxBridge

    setLogLevel("critical")  # its tc warnings (htb quantum) are noise; we check ourselves
    # Mininet's first network runs fixLimits(), which raises machine-wide sysctls (socket
    # buffers, ARP table, backlog, ptys) and never restores them; a few hosts do not need it
    Mininet.inited = True
    plan = plan_addresses(topology, resources.prefix)
    resources.plan_nodes(list(plan.mn_name.values()))
    net = Mininet(topo=None, controller=None, switch=LinuxBridge, link=TCLink, build=False,
                  autoSetMacs=False, autoStaticArp=False, waitConnected=False)
    resources.net = net
    for device in topology.devices:
        net.addHost(plan.mn_name[device], ip=None)
    for j, switch in enumerate(topology.switches):
        net.addSwitch(plan.mn_name[switch], cls=LinuxBridge, dpid=f"{j + 1:016x}", stp=False)
    capacity = initial_capacity(topology)
    for u, v in plan.links:
        net.addLink(plan.mn_name[u], plan.mn_name[v], cls=TCLink,
                    intfName1=plan.ports[(u, v)].name, intfName2=plan.ports[(v, u)].name,
                    params1={"bw": _mininet_bw(capacity[(u, v)])},
                    params2={"bw": _mininet_bw(capacity[(v, u)])})
    net.build()
    net.start()
    emulated = EmulatedNetwork(topology, plan, net, netem, burst_bytes, queueing,
                               {d: net.get(plan.mn_name[d]).pid for d in topology.devices})
    _configure_hosts(emulated)
    _configure_ports(emulated)
    _configure_queues(emulated, capacity, resources)
    return emulated


def _mininet_bw(bps: float) -> float:
    """TCLink's ``bw`` (Mbit/s, at most 1000); the exact rate is set afterwards."""
    return min(mbit_per_s(bps), MININET_BW_MAX) or 1.0


def _configure_queues(emulated: EmulatedNetwork, capacity, resources: RunResources) -> None:
    """Replace TCLink's single htb class by the link class and its queues (tc -batch)."""
    for link, port in emulated.plan.ports.items():
        lines = queue_batch(port.name, capacity[link], emulated.plan.crossing.get(link, []),
                            queueing=emulated.queueing,
                            latency_s=emulated.topology.links[link].latency_s,
                            netem=emulated.netem, burst_bytes=emulated.burst_bytes)
        path = resources.run_dir / f"tc-{port.name}.batch"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        done = subprocess.run(emulated.in_node(port, ["tc", "-batch", str(path)]),
                              capture_output=True, text=True, timeout=30)
        if done.returncode:
            raise NetworkSetupError(f"tc -batch for {port.name} failed: "
                                    f"{(done.stderr or done.stdout).strip()}")


def _host_cmd(host, command: str) -> str:
    out = host.cmd(command + " ; echo __rc=$?")
    body, _, rc = out.rpartition("__rc=")
    if rc.strip() != "0":
        raise NetworkSetupError(f"{host.name}: {command!r} failed: {body.strip()}")
    return body


def _configure_hosts(emulated: EmulatedNetwork) -> None:
    plan = emulated.plan
    for device in emulated.topology.devices:
        host = emulated.host(device)
        _host_cmd(host, "sysctl -qw " + " ".join(HOST_SYSCTLS))
        _host_cmd(host, f"ip addr add {plan.identity[device]}/32 dev lo")
        for port in plan.ports.values():
            if port.node == device:
                _host_cmd(host, f"ip addr add {port.address}/{SEGMENT_PREFIX_LEN} dev "
                                f"{port.name}")
                _host_cmd(host, f"sysctl -qw net.ipv4.conf.{port.name}.rp_filter=0")
                _host_cmd(host, f"ip link set {port.name} up")
        for route in plan.routes:
            if route.device == device:
                _host_cmd(host, f"ip route replace {route.destination}/32 via {route.via} "
                                f"dev {route.dev} src {plan.identity[device]}")


def _configure_ports(emulated: EmulatedNetwork) -> None:
    """Offloads off everywhere; IPv6 off on the bridge ports (no stray packets)."""
    for port in emulated.plan.ports.values():
        argv = ["ethtool", "-K", port.name, "tso", "off", "gso", "off", "gro", "off"]
        segs = ["ip", "link", "set", "dev", port.name, "gso_max_segs", "1"]
        if port.is_switch:
            run(argv)
            run(segs)
            run(["sysctl", "-qw", f"net.ipv6.conf.{port.name}.disable_ipv6=1"], check=False)
        else:
            _host_cmd(emulated.host(port.node), " ".join(argv))
            _host_cmd(emulated.host(port.node), " ".join(segs))
    for switch in emulated.topology.switches:
        name = emulated.plan.mn_name[switch]
        run(["sysctl", "-qw", f"net.ipv6.conf.{name}.disable_ipv6=1"], check=False)


def check_reachability(emulated: EmulatedNetwork, timeout_s: int = 2) -> None:
    """Ping every device's identity from every other device; raise naming the pairs that
    fail."""
    plan, failures = emulated.plan, []
    for src, dst in itertools.permutations(emulated.topology.devices, 2):
        out = emulated.host(src).cmd(f"ping -c 1 -W {timeout_s} -I {plan.identity[src]} "
                                     f"{plan.identity[dst]} >/dev/null 2>&1; echo $?")
        if out.strip().splitlines()[-1:] != ["0"]:
            failures.append(f"{src}->{dst}")
    if failures:
        raise NetworkSetupError("no connectivity: " + ", ".join(failures))
