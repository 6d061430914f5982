"""IP addresses and static routes that make Mininet forward along the topology's routes.

Every device gets an *identity* address (``/32`` on its loopback) that the workers use;
every device interface gets an address in its segment's subnet. A segment is either a
device-to-device link (a point-to-point subnet) or a tree of switches with the devices
attached to it (one subnet, forwarded by Linux bridges). Each device then gets one route
per destination identity, along the topology's fixed route (:meth:`Topology.path`):
``ip route replace <identity>/32 via <next device's address> dev <interface>``.

This needs routes that depend only on the destination at every hop (true of the
shortest-latency routes of trees, lines, stars and meshes); a topology whose routes do not
is rejected with the pair that conflicts, as are loops of switches (bridges without
spanning tree would flood them forever).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from testbed.cluster.topology import Topology
from testbed.emulation.naming import host_name, intf_name, switch_name

IDENTITY_NET = (10, 255)      # identities: 10.255.x.y/32
SEGMENT_NET = 100             # segment k: 10.(100 + k // 250).(k % 250).0/24
SEGMENT_PREFIX_LEN = 24


class AddressingError(ValueError):
    """The topology cannot be forwarded with destination-based static routes."""


@dataclass(frozen=True)
class Port:
    """One end of a link: ``node``'s interface towards ``peer``."""

    node: str                 # topology node name (device or switch)
    peer: str
    mn_node: str              # Mininet node name
    name: str                 # interface name
    address: str | None       # dotted quad on devices, None on switches
    is_switch: bool


@dataclass(frozen=True)
class Route:
    device: str
    destination: str          # identity address of the destination device
    via: str                  # next hop's address on the shared segment
    dev: str                  # outgoing interface name


@dataclass
class AddressPlan:
    """Names, addresses and routes of one topology in Mininet."""

    prefix: str
    mn_name: dict[str, str]                   # topology node -> Mininet node name
    identity: dict[str, str]                  # device -> identity address
    ports: dict[tuple[str, str], Port]        # directed link (u, v) -> u's port
    routes: list[Route] = field(default_factory=list)
    #: directed link -> (source identity, destination identity) of the routes crossing it
    crossing: dict[tuple[str, str], list[tuple[str, str]]] = field(default_factory=dict)

    @property
    def links(self) -> list[tuple[str, str]]:
        """Each undirected link once, as (u, v) in the order the ports were numbered."""
        seen, out = set(), []
        for u, v in self.ports:
            if frozenset((u, v)) not in seen:
                seen.add(frozenset((u, v)))
                out.append((u, v))
        return out

    def egress(self, link: tuple[str, str]) -> Port:
        """The port whose queue shapes direction ``link`` = (u, v): u's end."""
        return self.ports[link]


def plan_addresses(topology: Topology, prefix: str) -> AddressPlan:
    devices = list(topology.devices)
    switches = list(topology.switches)
    mn_name = {d: host_name(prefix, i) for i, d in enumerate(devices)}
    mn_name.update({s: switch_name(prefix, j) for j, s in enumerate(switches)})
    identity = {d: f"{IDENTITY_NET[0]}.{IDENTITY_NET[1]}.{i // 250}.{i % 250 + 1}"
                for i, d in enumerate(devices)}
    _check_switch_forest(topology)

    # ports, numbered per node in link order
    next_port = {node: 0 for node in mn_name}
    undirected = []
    for u, v in topology.links:
        if (v, u) not in undirected:
            undirected.append((u, v))
    names: dict[tuple[str, str], str] = {}
    for u, v in undirected:
        for a, b in ((u, v), (v, u)):
            names[(a, b)] = intf_name(mn_name[a], next_port[a])
            next_port[a] += 1

    # segments: one per device-device link, one per tree of switches
    segment_of: dict[tuple[str, str], int] = {}
    switch_graph = nx.Graph()
    switch_graph.add_nodes_from(switches)
    switch_graph.add_edges_from((u, v) for u, v in undirected
                                if u in topology.switches and v in topology.switches)
    tree_index = {}
    for k, part in enumerate(nx.connected_components(switch_graph)):
        for s in part:
            tree_index[s] = k
    n_trees = len(set(tree_index.values()))
    p2p = n_trees
    for u, v in undirected:
        if u in topology.devices and v in topology.devices:
            segment_of[(u, v)] = segment_of[(v, u)] = p2p
            p2p += 1
        elif u in topology.devices or v in topology.devices:
            switch = v if u in topology.devices else u
            segment_of[(u, v)] = segment_of[(v, u)] = tree_index[switch]
    attached: dict[tuple[str, int], int] = {}
    members: dict[int, int] = {}
    addresses: dict[tuple[str, str], str] = {}
    for (u, v), k in segment_of.items():
        if u not in topology.devices:
            continue
        if (u, k) in attached:
            raise AddressingError(f"device {u!r} has two links into the same switched "
                                  "network; give it one")
        members[k] = members.get(k, 0) + 1
        if members[k] > 253:
            raise AddressingError("more than 253 devices on one switched network")
        attached[(u, k)] = members[k]
        addresses[(u, v)] = (f"10.{SEGMENT_NET + k // 250}.{k % 250}.{members[k]}")
    ports = {(u, v): Port(u, v, mn_name[u], names[(u, v)], addresses.get((u, v)),
                          u in topology.switches)
             for (u, v) in names}
    plan = AddressPlan(prefix, mn_name, identity, ports)
    plan.routes = _routes(topology, plan)
    for src in topology.devices:
        for dst in topology.devices:
            if src != dst:
                for link in topology.path(src, dst):
                    plan.crossing.setdefault(link, []).append((identity[src], identity[dst]))
    return plan


def _check_switch_forest(topology: Topology) -> None:
    graph = nx.Graph()
    graph.add_nodes_from(topology.switches)
    graph.add_edges_from((u, v) for u, v in topology.links
                         if u in topology.switches and v in topology.switches)
    if graph.number_of_nodes() and not nx.is_forest(graph):
        cycle = nx.find_cycle(graph)
        raise AddressingError("switches form a loop (" + " - ".join(u for u, _ in cycle)
                              + "); Linux bridges without spanning tree cannot forward it")


def _routes(topology: Topology, plan: AddressPlan) -> list[Route]:
    """One route per (device, destination) along the topology's fixed routes."""
    table: dict[tuple[str, str], tuple[Route, tuple[str, str]]] = {}
    for src in topology.devices:
        for dst in topology.devices:
            if src == dst:
                continue
            links = topology.path(src, dst)
            current = src
            first: tuple[str, str] | None = links[0]   # the link leaving ``current``
            for u, v in links:
                if v not in topology.devices:
                    continue
                arriving = plan.ports[(v, u)]
                # v is a device (its ports have addresses), and not past dst
                assert arriving.address is not None and first is not None
                route = Route(current, plan.identity[dst], arriving.address,
                              plan.ports[first].name)
                key = (current, dst)
                known = table.get(key)
                if known is not None and known[0] != route:
                    raise AddressingError(
                        f"routes to {dst!r} leave {current!r} by two different next hops "
                        f"(on the way from {known[1][0]!r} and from {src!r}); the emulation "
                        "needs routes that depend on the destination only")
                table[key] = (route, (src, dst))
                current = v
                first = None
                if v != dst:
                    idx = links.index((u, v))
                    first = links[idx + 1]
    return [route for route, _ in table.values()]
