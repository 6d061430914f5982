"""Network-model corrections measured against the emulation, without changing the simulator.

Real TCP over Ethernet moves less payload than the link's bit rate: every segment of at
most ``MSS_BYTES`` of payload carries ``HEADER_BYTES`` of Ethernet, IP and TCP headers
(with timestamps), so a long transfer reaches ``MSS / (MSS + headers)`` = 1448/1514 of the
link rate. The simulator's fluid model sends the payload at the full rate. Two ways to
model it, evaluated here by replaying the same placements in a patched simulation:

- ``goodput``: every link capacity times :data:`GOODPUT_FACTOR` (the asymptote);
- ``headers``: every transfer of ``S`` bytes puts ``S + ceil(S / MSS) * HEADER_BYTES`` bytes
  on the links (exact per segment, so also right for transfers of a few segments).

When the kernel has no ``netem`` the emulated links have no propagation latency, so the
simulation compared with them runs with zero link latency (:func:`zero_latency`), keeping
the topology's routes.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import simpy

from testbed.cluster.topology import Topology
from testbed.sim.engine import Simulation

MSS_BYTES = 1448        # TCP payload per segment: 1500 MTU - 20 IP - 20 TCP - 12 timestamps
HEADER_BYTES = 66       # per frame on the link as htb counts it: 14 Ethernet + 20 IP + 32 TCP
GOODPUT_FACTOR = MSS_BYTES / (MSS_BYTES + HEADER_BYTES)
CORRECTIONS = ("goodput", "headers")


def wire_bytes(size_bytes: float) -> float:
    """Bytes a TCP transfer of ``size_bytes`` of payload puts on an Ethernet link."""
    if size_bytes <= 0:
        return 0.0
    return size_bytes + math.ceil(size_bytes / MSS_BYTES) * HEADER_BYTES


def zero_latency(topology: Topology) -> Topology:
    """A copy of ``topology`` whose links have no latency; routes stay as they were."""
    new = copy.copy(topology)
    new.links = {key: dataclasses.replace(link, latency_s=0.0)
                 for key, link in topology.links.items()}
    return new


def scaled_capacity(topology: Topology, factor: float) -> Topology:
    """A copy whose link capacities (and capacity series) are multiplied by ``factor``."""
    new = copy.copy(topology)
    new.links = {key: dataclasses.replace(
        link, capacity_bps=link.capacity_bps * factor,
        series=None if link.series is None else link.series.scaled(factor))
        for key, link in topology.links.items()}
    return new


def add_header_overhead(simulation: Simulation) -> None:
    """Make every flow of ``simulation`` carry its TCP/IP/Ethernet headers."""
    network = simulation.network
    transfer = network.transfer

    def with_headers(src: str, dst: str, size_bytes: float, kind: str = "inference",
                     tag: str = "", extra_latency_s: float = 0.0) -> simpy.Event:
        return transfer(src, dst, wire_bytes(size_bytes), kind, tag,
                        extra_latency_s=extra_latency_s)

    # a per-instance override on purpose (Network.is_quiet sees it and turns the fast
    # sweep off, which computes transfers without calling it)
    network.transfer = with_headers  # type: ignore[method-assign]
