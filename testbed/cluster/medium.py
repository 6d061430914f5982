"""Shared media: link directions that take turns on one channel (a Wi-Fi BSS).

A medium's member link directions (every uplink and downlink of an access point's stations)
share one channel's airtime. A flow at rate ``r`` over a member whose capacity (the payload
rate it gets alone, bit/s) is ``G`` uses ``r / G`` of the airtime; the flows' airtime adds up
to at most 1. A station -> access point -> station relay crosses the air twice. Each
transmission also pays a fixed air time: its PHY header (``preamble_s``) always, and
``contention_s`` (AIFS, backoff, SIFS and BlockAck) when other flows are on the air.
"""

from __future__ import annotations

from dataclasses import dataclass

LinkKey = tuple[str, str]


@dataclass(frozen=True)
class MediumSpec:
    """One shared channel: ``members`` are directed link keys; times in s."""

    name: str
    members: frozenset[LinkKey]
    preamble_s: float = 0.0
    contention_s: float = 0.0
    technology: str = ""
    access_point: str = ""

    def air_hops(self, path) -> tuple[LinkKey, ...]:
        """The member links a path (directed link keys) crosses, in path order."""
        return tuple(link for link in path if link in self.members)

    @property
    def stations(self) -> tuple[str, ...]:
        """The nodes on the other end of the access point's member links."""
        ap = self.access_point
        return tuple(sorted({b for a, b in self.members if a == ap} |
                            {a for a, b in self.members if b == ap}))


def airtime_per_bit(capacity_bps, hops) -> float:
    """Seconds of airtime per bit of a flow crossing member links ``hops`` (``capacity_bps``
    maps a link to its current payload rate); inf if one of them is at 0 bit/s."""
    total = 0.0
    for link in hops:
        capacity = capacity_bps[link]
        if capacity <= 0:
            return float("inf")
        total += 1.0 / capacity
    return total
