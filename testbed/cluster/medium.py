"""Shared media: link directions that take turns on one channel (a Wi-Fi BSS).

A medium's member link directions (every uplink and downlink of an access point's stations)
share one channel's airtime. A flow at rate ``r`` over a member whose capacity (the payload
rate it gets alone, bit/s) is ``G`` uses ``r / G`` of the airtime; the flows' airtime adds up
to at most 1. A station -> access point -> station relay crosses the air twice. Each
transmission also pays a fixed air time: its PHY header (``preamble_s``) always, and
``contention_s`` (AIFS, backoff, SIFS and BlockAck) when other flows are on the air and when a
message of several TCP
segments (``segment_bytes``, 0: no segments) reaches the access point from a wire (its
first segment leaves alone, the rest in a second access); an access point relaying what it
just received waits ``relay_s`` (SIFS, BlockAck, AIFS): :meth:`MediumSpec.air_time_s`.

A transmitter sends one A-MPDU per channel access (TXOP): messages of at most
``txop_bytes`` that one node sends over the medium go out one after another, in the order
they were sent (the 802.11 transmit queue), not side by side; longer ones share the
airtime. ``txop_bytes = 0`` turns this off (a generic channel).
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
    txop_bytes: float = 0.0
    segment_bytes: float = 0.0
    relay_s: float = 0.0

    def air_time_s(self, path, size_bytes: float, contended: bool) -> float:
        """The fixed air time of one message of ``size_bytes`` along ``path`` (directed
        link keys) on this medium (s). Per member hop, by what feeds it:

        - the message's source transmits: one PHY header (its segments are all queued:
          one A-MPDU);
        - the hop before is on the air (the access point relays): it waits for the
          BlockAck and AIFS (``relay_s``; no backoff: its own last transmission is
          long past), then sends: a PHY header;
        - the hop before is a wire and the message has more than one segment: its first
          segment reaches the access point alone and goes out at once, the rest in a
          second, contended access: two PHY headers and the contention overhead (one of
          each if it had to wait for the medium anyway: its segments then leave together).

        The first hop also contends when the medium is busy as the message starts
        (``contended``).
        """
        total = 0.0
        first = True
        for k, link in enumerate(path):
            if link not in self.members:
                continue
            waits = first and contended                 # the medium is busy as it starts
            relayed = k > 0 and path[k - 1] in self.members
            split = (k > 0 and not relayed and not waits and self.segment_bytes > 0
                     and size_bytes > self.segment_bytes)
            total += self.preamble_s * (1 + split)
            total += self.contention_s * (waits + split) + self.relay_s * relayed
            first = False
        return total

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
