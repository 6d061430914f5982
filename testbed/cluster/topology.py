"""A network of devices and switches joined by full-duplex links, with fixed routes.

Compute nodes carry a :class:`DeviceSpec`; switches (a Wi-Fi access point, an Ethernet
switch) only forward traffic and host no blocks. Every link has one :class:`LinkSpec` per
direction. Routes are fixed when the topology is built (see :mod:`testbed.cluster.routing`)
and every node may forward traffic. Files and generators that build topologies live in
:mod:`testbed.cluster.topology_file` and :mod:`testbed.cluster.generators`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass

import networkx as nx

from testbed.cluster.device import DeviceSpec
from testbed.cluster.medium import MediumSpec
from testbed.cluster.wifi import WifiPhy
from testbed.cluster.routing import all_routes
from testbed.errors import ConfigError, bad_value
from testbed.traces.series import Series

LinkKey = tuple[str, str]


@dataclass(frozen=True)
class LinkSpec:
    """One direction ``src -> dst`` of a full-duplex link.

    ``capacity_bps``: nominal capacity (bit/s). ``latency_s``: one-way propagation latency
    (s). ``series``: capacity over time (bit/s); when set it replaces the constant.
    ``technology``: the link table row it was drawn from (e.g. ``wifi5``), or "".
    ``wifi``: the station's 802.11 PHY on a Wi-Fi link (what an ns-3 BSS is configured with).
    ``goodput_factor``: the payload share of ``capacity_bps`` a transport gets, used when the
    scenario's ``network.goodput_factor`` is ``technology`` (the default): below 1 for a line
    rate given for an Ethernet link, else 1 (:func:`~testbed.cluster.link_catalog.
    line_rate_goodput_factor`).
    """

    src: str
    dst: str
    capacity_bps: float
    latency_s: float
    series: Series | None = None
    technology: str = ""
    wifi: WifiPhy | None = None
    goodput_factor: float = 1.0

    def __post_init__(self):
        where = f"links[{self.src}->{self.dst}]"
        capacity, latency = self.capacity_bps, self.latency_s
        if not _is_number(capacity) or not (math.isfinite(capacity) and capacity > 0):
            raise bad_value(capacity, "a finite capacity > 0 bit/s", field=f"{where}.capacity_bps")
        if not _is_number(latency) or not (math.isfinite(latency) and latency >= 0):
            raise bad_value(latency, "a finite latency >= 0 s", field=f"{where}.latency_s")
        if self.series is not None and not isinstance(self.series, Series):
            raise bad_value(self.series, "a Series of capacities in bit/s",
                            field=f"{where}.series")

    @property
    def key(self) -> LinkKey:
        return (self.src, self.dst)

    def capacity_at(self, t_s: float) -> float:
        """Capacity (bit/s) at simulated time ``t_s`` (s)."""
        return self.series.value_at(t_s) if self.series is not None else self.capacity_bps


class Topology:
    """Devices, switches and links; read-only once built.

    ``nodes`` lists the nodes in order: a :class:`DeviceSpec` is a compute node, a string
    names a switch. ``links`` are directed; a link given in one direction only is mirrored
    (same figures) in the other. ``controller`` (default: the first device) issues requests
    and holds the embedding and LM head. ``source`` names the file it came from.
    ``media`` are shared channels (:mod:`testbed.cluster.medium`) over some of the links;
    a link direction belongs to at most one.
    """

    def __init__(self, nodes: Iterable[DeviceSpec | str], links: Iterable[LinkSpec], *,
                 name: str = "topology", controller: str | None = None,
                 source: str = "<generated>", media: Iterable[MediumSpec] = ()):
        self.name = name
        self.source = source
        self.devices: dict[str, DeviceSpec] = {}
        self.graph = nx.Graph(name=name)
        switches: list[str] = []
        index: dict[str, int] = {}
        for i, node in enumerate(nodes):
            node_name = node.name if isinstance(node, DeviceSpec) else node
            if not isinstance(node_name, str) or not node_name:
                raise self._error(bad_value(node, "a DeviceSpec or a switch name"), f"nodes[{i}]")
            if node_name in index:
                raise self._error(ConfigError(f"got duplicate node name {node_name!r} (also "
                                              f"nodes[{index[node_name]}])"), f"nodes[{i}].name")
            index[node_name] = i
            if isinstance(node, DeviceSpec):
                self.devices[node_name] = node
                self.graph.add_node(node_name, kind="device", device=node)
            else:
                switches.append(node_name)
                self.graph.add_node(node_name, kind="switch")
        self.switches: tuple[str, ...] = tuple(switches)
        if not self.devices:
            raise self._error(ConfigError("got no compute device; expected at least one node "
                                          "with a device"), "nodes")
        self.links: dict[LinkKey, LinkSpec] = self._check_links(links)
        for src, dst in self.links:
            self.graph.add_edge(src, dst)
        self._check_connected()
        self.media: dict[str, MediumSpec] = self._check_media(media)
        self.controller = self._check_controller(controller)
        latency = {key: link.latency_s for key, link in self.links.items()}
        self._routes = {pair: tuple(zip(nodes_on_path, nodes_on_path[1:]))
                        for pair, nodes_on_path in all_routes(latency).items()}

    # ----- queries ---------------------------------------------------------------------------

    @property
    def device_names(self) -> list[str]:
        """Names of the compute nodes, in file order."""
        return list(self.devices)

    def path(self, src: str, dst: str) -> tuple[LinkKey, ...]:
        """The fixed route from ``src`` to ``dst`` as directed link keys (empty if equal)."""
        if src == dst:
            self._check_node(src)
            return ()
        try:
            return self._routes[(src, dst)]
        except KeyError:
            self._check_node(src)
            self._check_node(dst)
            raise

    def path_latency_s(self, src: str, dst: str) -> float:
        """Total one-way latency (s) along the route from ``src`` to ``dst``."""
        return math.fsum(self.links[key].latency_s for key in self.path(src, dst))

    def bottleneck_bps(self, src: str, dst: str, t_s: float = 0.0) -> float:
        """Smallest link capacity (bit/s) on the route at time ``t_s`` (s); inf if equal."""
        return min((self.links[key].capacity_at(t_s) for key in self.path(src, dst)),
                   default=math.inf)

    def with_link_series(self, src: str, dst: str, series: Series | None,
                         goodput_factor: float | None = None) -> "Topology":
        """A copy whose ``src -> dst`` direction follows ``series`` (bit/s over time)
        (and has ``goodput_factor``, when given)."""
        return self._with_link(src, dst, goodput_factor, series=series)

    def with_link_capacity(self, src: str, dst: str, capacity_bps: float,
                           goodput_factor: float | None = None) -> "Topology":
        """A copy whose ``src -> dst`` direction has a constant capacity (bit/s) (and
        ``goodput_factor``, when given)."""
        return self._with_link(src, dst, goodput_factor, capacity_bps=capacity_bps,
                               series=None)

    def _with_link(self, src: str, dst: str, goodput_factor: float | None,
                   **changes) -> "Topology":
        if (src, dst) not in self.links:
            raise KeyError(f"topology {self.name!r} has no link {src}->{dst}")
        if goodput_factor is not None:
            changes["goodput_factor"] = goodput_factor
        new = copy.copy(self)
        new.links = dict(self.links)
        new.links[(src, dst)] = dataclasses.replace(self.links[(src, dst)], **changes)
        return new

    def for_dtype(self, dtype: str) -> "Topology":
        """This topology running weights in ``dtype``: every device is
        ``spec.for_dtype(dtype)`` (its calibrated efficiencies for that dtype, if any; see
        :meth:`DeviceSpec.for_dtype`). ``self`` when no device has a profile for it."""
        devices = {name: spec.for_dtype(dtype) for name, spec in self.devices.items()}
        if all(devices[name] is spec for name, spec in self.devices.items()):
            return self
        new = copy.copy(self)
        new.devices = devices
        new.graph = self.graph.copy()
        for name, spec in devices.items():
            new.graph.nodes[name]["device"] = spec
        return new

    def with_latency_scale(self, factor: float) -> "Topology":
        """A copy whose every link's propagation latency is ``factor`` times its own
        (``factor`` >= 0; routes stay those of the unscaled latencies). Per-message costs
        and a medium's access delays are not link latency and do not change."""
        if not (isinstance(factor, (int, float)) and not isinstance(factor, bool)
                and math.isfinite(factor) and factor >= 0):
            raise ValueError(f"latency scale {factor!r}; expected a number >= 0")
        new = copy.copy(self)
        new.links = {key: dataclasses.replace(link, latency_s=link.latency_s * factor)
                     for key, link in self.links.items()}
        return new

    def without_media(self) -> "Topology":
        """A copy with no shared medium: every link its own wire at its capacity (the
        model before shared airtime, and what Mininet emulates)."""
        new = copy.copy(self)
        new.media = {}
        return new

    def hosts(self, controller_hosts_blocks: bool = False) -> list[str]:
        """The devices that may host blocks: every device, or all but the controller."""
        return [name for name in self.devices
                if controller_hosts_blocks or name != self.controller]

    def with_controller(self, controller: str) -> "Topology":
        """A copy whose controller is ``controller`` (a device name)."""
        new = copy.copy(self)
        new.controller = self._check_controller(controller)
        return new

    def __repr__(self) -> str:
        return (f"Topology({self.name!r}: {len(self.devices)} devices, {len(self.switches)} "
                f"switches, {self.graph.number_of_edges()} links, source={self.source!r})")

    # ----- validation ------------------------------------------------------------------------

    def _error(self, error: ConfigError, field: str | None = None) -> ConfigError:
        return ConfigError(error.message, source=self.source, field=field or error.field,
                           value=error.value, expected=error.expected)

    def _check_node(self, name: str) -> None:
        if name not in self.graph:
            raise KeyError(f"topology {self.name!r} has no node {name!r}")

    def _check_links(self, links: Iterable[LinkSpec]) -> dict[LinkKey, LinkSpec]:
        given: dict[LinkKey, LinkSpec] = {}
        for link in links:
            if not isinstance(link, LinkSpec):
                raise self._error(bad_value(link, "a LinkSpec"), "links")
            where = f"links[{link.src}->{link.dst}]"
            for end in ("src", "dst"):
                if getattr(link, end) not in self.graph:
                    raise self._error(ConfigError(
                        f"got unknown node {getattr(link, end)!r}; expected one of "
                        f"{', '.join(self.graph)}"), f"{where}.{end}")
            if link.src == link.dst:
                raise self._error(ConfigError(f"got a self-loop on {link.src!r}; expected a "
                                              "link between two different nodes"), where)
            if link.key in given:
                raise self._error(ConfigError("got this direction twice"), where)
            given[link.key] = link
        both = dict(given)
        for (src, dst), link in given.items():
            if (dst, src) not in both:
                both[(dst, src)] = dataclasses.replace(link, src=dst, dst=src)
        return both

    def _check_media(self, media: Iterable[MediumSpec]) -> dict[str, MediumSpec]:
        found: dict[str, MediumSpec] = {}
        owner: dict[LinkKey, str] = {}
        for i, medium in enumerate(media):
            if not isinstance(medium, MediumSpec):
                raise self._error(bad_value(medium, "a MediumSpec"), f"media[{i}]")
            if medium.name in found:
                raise self._error(ConfigError(f"got duplicate medium name {medium.name!r}"),
                                  f"media[{i}].name")
            if not medium.members:
                raise self._error(ConfigError("got a medium with no member link"),
                                  f"media[{i}]")
            for link in sorted(medium.members):
                if link not in self.links:
                    raise self._error(ConfigError(f"got member link {link[0]}->{link[1]}, "
                                                  "which the topology does not have"),
                                      f"media[{i}].members")
                if link in owner:
                    raise self._error(ConfigError(f"link {link[0]}->{link[1]} is in media "
                                                  f"{owner[link]!r} and {medium.name!r}; "
                                                  "expected at most one"), f"media[{i}]")
                owner[link] = medium.name
            found[medium.name] = medium
        return found

    def medium_of(self, link: LinkKey) -> MediumSpec | None:
        """The medium a directed link belongs to, or None."""
        for medium in self.media.values():
            if link in medium.members:
                return medium
        return None

    def _check_connected(self) -> None:
        if nx.is_connected(self.graph):
            return
        order = {node: i for i, node in enumerate(self.graph)}
        parts = [sorted(part, key=order.__getitem__)
                 for part in nx.connected_components(self.graph)]
        parts.sort(key=lambda part: order[part[0]])
        listing = " | ".join("{" + ", ".join(part) + "}" for part in parts)
        raise self._error(ConfigError(f"got {len(parts)} separate parts: {listing}; expected "
                                      "one connected network"), "links")

    def _check_controller(self, controller: str | None) -> str:
        if controller is None:
            return next(iter(self.devices))
        if controller not in self.devices:
            kind = "a switch" if controller in self.switches else "not a node"
            raise self._error(ConfigError(
                f"got {controller!r} ({kind}); expected one of the devices: "
                f"{', '.join(self.devices)}", value=controller), "controller")
        return controller


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
