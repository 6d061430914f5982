"""Topologies made from a list of devices: full mesh, star around a switch, line.

Every link gets the same capacity (bit/s, each direction) and one-way latency (s), and
optionally the name of its ``technology`` in the link table (which gives per-message costs
their defaults; see :mod:`testbed.cluster.message_costs`). Register a new shape with
``@TOPOLOGY_GENERATORS.register("name")``: a function taking ``devices``, ``bandwidth_bps``
and ``latency_s`` (plus optional keywords) and returning a Topology.
"""

from __future__ import annotations

from collections.abc import Sequence

from testbed.cluster.device import DeviceSpec
from testbed.cluster.topology import LinkSpec, Topology
from testbed.registry import Registry

TOPOLOGY_GENERATORS: Registry = Registry("topology generator")


@TOPOLOGY_GENERATORS.register("full_mesh")
def full_mesh(devices: Sequence[DeviceSpec], bandwidth_bps: float, latency_s: float, *,
              name: str | None = None, controller: str | None = None,
              technology: str = "") -> Topology:
    """Every pair of devices joined by a direct link."""
    devices = list(devices)
    links = [LinkSpec(a.name, b.name, bandwidth_bps, latency_s, technology=technology)
             for i, a in enumerate(devices) for b in devices[i + 1:]]
    return Topology(devices, links, name=name or f"full-mesh-{len(devices)}",
                    controller=controller)


@TOPOLOGY_GENERATORS.register("star")
def star(devices: Sequence[DeviceSpec], bandwidth_bps: float, latency_s: float,
         hub: str = "ap", *, name: str | None = None,
         controller: str | None = None, technology: str = "") -> Topology:
    """Every device linked to one switch node ``hub`` (e.g. a Wi-Fi access point)."""
    devices = list(devices)
    links = [LinkSpec(device.name, hub, bandwidth_bps, latency_s, technology=technology)
             for device in devices]
    return Topology([*devices, hub], links, name=name or f"star-{len(devices)}",
                    controller=controller)


@TOPOLOGY_GENERATORS.register("line")
def line(devices: Sequence[DeviceSpec], bandwidth_bps: float, latency_s: float, *,
         name: str | None = None, controller: str | None = None,
         technology: str = "") -> Topology:
    """Devices in a chain, each linked to the next."""
    devices = list(devices)
    links = [LinkSpec(a.name, b.name, bandwidth_bps, latency_s, technology=technology)
             for a, b in zip(devices, devices[1:])]
    return Topology(devices, links, name=name or f"line-{len(devices)}", controller=controller)
