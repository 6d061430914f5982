"""What a partitioner knows of the network at one instant: capacities now, fixed routes."""

from __future__ import annotations

from collections.abc import Mapping

from testbed.cluster.medium import airtime_per_bit
from testbed.cluster.topology import Topology
from testbed.units import BITS_PER_BYTE


class NetworkView:
    """Bottleneck bandwidth (bit/s), latency (s) and lone-transfer time between devices."""

    def __init__(self, topology: Topology, capacity_bps: Mapping[tuple[str, str], float],
                 nic_tx_bps: Mapping[str, float] | None = None,
                 nic_rx_bps: Mapping[str, float] | None = None):
        self.topology = topology
        self.capacity_bps = dict(capacity_bps)
        self._nic_tx = dict(nic_tx_bps or {})
        self._nic_rx = dict(nic_rx_bps or {})
        self._bottleneck: dict[tuple[str, str], float] = {}

    def bandwidth_bps(self, src: str, dst: str) -> float:
        """Rate a lone flow from ``src`` to ``dst`` gets now (bit/s; inf for src == dst)."""
        key = (src, dst)
        bw = self._bottleneck.get(key)
        if bw is None:
            bw = min((self.capacity_bps[link] for link in self.topology.path(src, dst)),
                     default=float("inf"))
            bw = min(bw, self._nic_tx.get(src, bw), self._nic_rx.get(dst, bw)) if src != dst \
                else float("inf")
            for medium in self.topology.media.values():
                hops = medium.air_hops(self.topology.path(src, dst))
                if hops:
                    bw = min(bw, 1.0 / airtime_per_bit(self.capacity_bps, hops))
            self._bottleneck[key] = bw
        return bw

    def air_overhead_s(self, src: str, dst: str, size_bytes: float) -> float:
        """The fixed air time a message pays on idle media (s; MediumSpec.air_time_s)."""
        path = self.topology.path(src, dst)
        return sum(medium.air_time_s(path, size_bytes, False)
                   for medium in self.topology.media.values())

    def latency_s(self, src: str, dst: str) -> float:
        return self.topology.path_latency_s(src, dst) if src != dst else 0.0

    def transfer_time_s(self, src: str, dst: str, size_bytes: float) -> float:
        """Latency plus fluid time of a lone transfer (s); 0 within one device."""
        if src == dst:
            return 0.0
        bw = self.bandwidth_bps(src, dst)
        if bw <= 0:
            return float("inf")
        time = self.latency_s(src, dst) + size_bytes * BITS_PER_BYTE / bw
        return time + self.air_overhead_s(src, dst, size_bytes) if self.topology.media \
            else time
