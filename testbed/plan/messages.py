"""What each message costs besides its bytes: LogP's software overhead ``o`` per device.

Sending a message costs its sender ``send_s`` of processor time (system call, protocol
stack, driver) and its receiver ``recv_s``; a transfer of ``m`` messages costs ``m`` times
each. The overhead occupies the device's compute queue (the cores that run the kernels also
run the network stack on CPU-based edge runtimes), so a device sending to many peers pays
for them one after another, and a computation waits behind them. ``link_s`` adds a fixed
delay per message on each link direction it crosses (per-hop forwarding, medium access).

Defaults come from :mod:`testbed.cluster.message_costs` (per device class and link
technology, with their sources); a scenario can turn them off (``network:
{message_costs: false}``) or set its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MessageCosts:
    """Per-message overheads (s): by sending device, by receiving device, by link."""

    send_s: Mapping[str, float] = field(default_factory=dict)
    recv_s: Mapping[str, float] = field(default_factory=dict)
    link_s: Mapping[tuple[str, str], float] = field(default_factory=dict)

    def send(self, device: str) -> float:
        return self.send_s.get(device, 0.0)

    def recv(self, device: str) -> float:
        return self.recv_s.get(device, 0.0)

    def link_delay_s(self, links: Iterable[Any]) -> float:
        """Delay one message gets from crossing ``links`` (directed link keys; other
        resources cost nothing)."""
        link_s = self.link_s
        return sum(link_s.get(link, 0.0) for link in links) if link_s else 0.0

    @property
    def any(self) -> bool:
        """True if some message costs something beyond bytes and latency."""
        return any(v > 0 for m in (self.send_s, self.recv_s, self.link_s) for v in m.values())


NO_MESSAGE_COSTS = MessageCosts()
