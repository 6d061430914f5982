"""Transport round trips: TCP's initial window, slow start, connection set-up, and its
retransmission timer after an outage. Off unless a scenario has a ``network.transport``
section (:data:`WARM`: no round trips added).

A fluid flow sends at its max-min rate from its first byte. TCP does not when its window is
small: on a new connection, or one idle long enough for the window to restart, it sends an
initial window (``initial_window`` segments of ``mss_bytes``, RFC 6928: 10), waits a round
trip, sends twice as much, and so on. A round in which the window is below the path's
bandwidth-delay product costs a whole round trip instead of ``window / rate``; once the
window covers the product (or the rest of the message) the message flows at its rate. So a
message of ``S`` bytes over a path of round-trip time ``rtt`` at ``rate`` pays, on top of
its fluid time,

    sum over rounds with w < min(S_left, rate * rtt): rtt - w / rate,   w = IW, 2 IW, 4 IW ...

(Cardwell, Savage & Anderson, INFOCOM 2000, without losses). The window a connection ends a
message with is kept for its next message (slow start grows it by one segment per segment
acknowledged). Against ns-3 3.44 (TCP CUBIC, as Linux; a fresh connection over 100 Mbit/s
with a 10 ms round trip) the model is within 4.2 % from 16 KiB to 8 MiB where the fluid time
is 3.5-62 % short (tests/test_emulation_ns3.py).

``connections``:

- ``warm`` (:data:`WARM`, a scenario without ``network.transport``): persistent
  connections whose window already covers any path: no round trips are added (the fluid
  model as it is);
- ``persistent`` (the section's default): one connection per device pair, opened on first
  use (a handshake round trip when ``handshake``) and kept; its window restarts from the
  initial window after ``idle_restart_s`` without traffic (Linux's
  ``tcp_slow_start_after_idle``: one RTO, at least 200 ms); ``warm_up_bytes`` sent on
  each connection before the run (as the emulation backends do) start it with a larger
  window;
- ``new``: a new connection per message: a handshake and slow start every time.

**Retransmission timer** (``rto_min_s``, Linux: 200 ms; None: off). A flow whose rate drops
to 0 (an outage) loses what was in flight; TCP retransmits after ``rto_min_s``, then after
doubling intervals, so after the capacity returns the flow resumes only at the next of
``stall start + rto_min_s * (2^k - 1)``, k = 1, 2, ... (the network holds it at rate 0 until
then).

Round-trip time of a path: twice its one-way latency (s). Sizes in bytes, rates in bit/s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from testbed import config_schema as cs
from testbed.units import BITS_PER_BYTE

CONNECTIONS = ("warm", "persistent", "new")


def _mss(value: object, source: str, field: str) -> int:
    return int(cs.size_bytes()(value, source, field))


def _idle(value: object, source: str, field: str) -> float:
    seconds = cs.duration(none=True)(value, source, field)
    return math.inf if seconds is None else seconds


@dataclass(frozen=True)
class TransportSpec:
    """TCP's round trips; also a scenario's ``network.transport`` section."""

    connections: str = cs.setting("persistent", cs.one_of(CONNECTIONS),
                                  "warm (no round trips), persistent (one connection per "
                                  "device pair) or new (one per message)")
    initial_window: int = cs.setting(10, cs.integer(1),
                                     "initial congestion window (segments; RFC 6928)")
    mss_bytes: int = cs.setting("1448 B", _mss, "maximum segment size", key="mss")
    handshake: bool = cs.setting(True, cs.boolean, "a new connection pays a round trip")
    idle_restart_s: float = cs.setting("none", _idle, "idle time after which the window "
                                       "restarts (none: never; Linux: one RTO)",
                                       key="idle_restart")
    warm_up_bytes: float = cs.setting("0 B", cs.size_bytes(allow_zero=True),
                                      "bytes sent on each connection before the run",
                                      key="warm_up")
    rto_min_s: float | None = cs.setting("none", cs.duration(none=True),
                                         "retransmission timer after an outage (none: off; "
                                         "Linux: 200 ms)", key="rto_min")

    def __post_init__(self) -> None:
        if self.connections not in CONNECTIONS:
            raise ValueError(f"connections {self.connections!r}; expected one of "
                             f"{', '.join(CONNECTIONS)}")
        if self.initial_window < 1 or self.mss_bytes < 1:
            raise ValueError("initial_window and mss_bytes must be >= 1")
        if self.rto_min_s is not None and not self.rto_min_s > 0:
            raise ValueError(f"rto_min_s must be > 0 s, got {self.rto_min_s!r}")

    @property
    def adds_round_trips(self) -> bool:
        return self.connections != "warm"

    @property
    def initial_window_bytes(self) -> float:
        return float(self.initial_window * self.mss_bytes)


WARM = TransportSpec(connections="warm")


def slow_start_s(size_bytes: float, window_bytes: float, rate_bps: float,
                 rtt_s: float) -> tuple[float, float]:
    """(extra time in s, window in bytes afterwards) of sending ``size_bytes`` starting
    from ``window_bytes`` (module docstring)."""
    if size_bytes <= 0 or rate_bps <= 0 or rtt_s <= 0:
        return 0.0, window_bytes
    bdp_bytes = rate_bps * rtt_s / BITS_PER_BYTE
    left, window, extra = float(size_bytes), float(window_bytes), 0.0
    while left > window and window < bdp_bytes:
        extra += rtt_s - window * BITS_PER_BYTE / rate_bps
        left -= window
        window *= 2
    return extra, window


class TransportState:
    """The connections of one run: their windows and when they last carried data."""

    def __init__(self, spec: TransportSpec):
        self.spec = spec
        self._window: dict[tuple[str, str], float] = {}
        self._last_s: dict[tuple[str, str], float] = {}

    def extra_s(self, src: str, dst: str, size_bytes: float, rate_bps: float, rtt_s: float,
                now_s: float) -> float:
        """The round trips a message of ``size_bytes`` adds to its fluid time (s)."""
        spec = self.spec
        if not spec.adds_round_trips:
            return 0.0
        key = (src, dst)
        extra = 0.0
        window = self._window.get(key)
        if spec.connections == "new" or window is None:
            if spec.handshake:
                extra += rtt_s
            window = spec.initial_window_bytes
            if spec.connections == "persistent" and spec.warm_up_bytes > 0:
                window = self._grown(window, spec.warm_up_bytes)
        elif now_s - min(self._last_s.get(key, now_s), now_s) > spec.idle_restart_s:
            window = spec.initial_window_bytes
        more, _ = slow_start_s(size_bytes, window, rate_bps, rtt_s)
        self._window[key] = self._grown(window, size_bytes)
        self._last_s[key] = math.inf        # busy until finished() says otherwise
        return extra + more

    def finished(self, src: str, dst: str, now_s: float) -> None:
        """A message from ``src`` to ``dst`` has been delivered at ``now_s``."""
        if (src, dst) in self._last_s:
            self._last_s[(src, dst)] = now_s

    def _grown(self, window: float, sent_bytes: float) -> float:
        """Slow start: one segment more per segment acknowledged."""
        mss = self.spec.mss_bytes
        return window + math.ceil(sent_bytes / mss) * mss

    def next_retransmission_s(self, stalled_since_s: float, now_s: float) -> float:
        """The first retransmission at or after ``now_s`` of a flow stalled since
        ``stalled_since_s`` (s): ``stalled_since + rto * (2^k - 1)``."""
        rto = self.spec.rto_min_s
        if rto is None:
            return now_s
        k, at = 1, stalled_since_s + rto
        while at < now_s:
            k += 1
            at = stalled_since_s + rto * (2 ** k - 1)
        return at
