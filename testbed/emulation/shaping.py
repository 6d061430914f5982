"""Link shaping: the queues of each link direction, and the replay of its capacity.

A link direction ``(u, v)`` is shaped on ``u``'s end of the veth pair (its egress queue),
by an htb root ``5:`` whose class ``5:1`` has the link's rate; the rate is changed on
schedule with ``tc class change``, which keeps the queued packets (Mininet's
``intf.config(bw=...)`` rebuilds the qdisc and drops them). ``burst`` and ``cburst`` are
one full frame: a token bucket lets its burst through at once after an idle period, which
a serialising link does not, so the smaller the closer (zero makes htb fall behind its
rate). Two queueing disciplines under ``5:1``:

- ``fair`` (default): one leaf class per (source, destination) device pair whose route
  crosses the link, selected by ``u32`` filters on the identity addresses, served round
  robin one frame at a time: per-flow fair queueing, as ``fq_codel`` hosts and Wi-Fi
  access points do, and as the simulator's max-min fair sharing assumes;
- ``fifo``: one drop-tail queue, served in arrival order.

With ``netem`` in the kernel, each leaf also delays its packets by the link's latency.

:class:`CapacityReplayer` applies every change of the links' capacity series at
``t0 + t`` (``t0``: the emulation's start on the monotonic clock), on a thread of its own,
through one long-running ``tc -batch`` per network namespace, and records when each change
was handed to ``tc``.
"""

from __future__ import annotations

import math
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Callable

from testbed.cluster.topology import Topology
from testbed.units import rate_unit_factor

#: htb burst and cburst (bytes): one Ethernet frame with some slack.
BURST_BYTES = 1600
#: Lowest rate tc is given (bit/s): a series value of 0 (an outage) becomes this.
MIN_RATE_BPS = 64e3
TC_TIMEOUT_S = 5.0
LinkKey = tuple[str, str]


def mbit_per_s(bps: float) -> float:
    """bit/s -> Mbit/s, the unit of Mininet's ``bw`` parameter."""
    return bps / rate_unit_factor("Mbit/s")


QUEUEING = ("fair", "fifo")
#: Leaves borrow everything from ``5:1``: a token rate of their own, the frame as quantum.
LEAF = "htb rate 8kbit ceil 100gbit quantum 1514"
FIRST_LEAF = 10


def _rate(bps: float) -> str:
    return f"{max(float(bps), MIN_RATE_BPS):.0f}bit"


def tc_rate_args(interface: str, bps: float, burst_bytes: int = BURST_BYTES) -> list[str]:
    """``tc`` arguments that set the link class of ``interface`` to ``bps`` bit/s."""
    return ["tc", "class", "change", "dev", interface, "parent", "5:", "classid", "5:1",
            "htb", "rate", _rate(bps), "burst", str(burst_bytes), "cburst", str(burst_bytes),
            "quantum", "1514"]


def tc_rate_line(interface: str, bps: float, burst_bytes: int = BURST_BYTES) -> str:
    """The same change as a ``tc -batch`` line."""
    return " ".join(tc_rate_args(interface, bps, burst_bytes)[1:])


def queue_batch(interface: str, bps: float, pairs: list[tuple[str, str]], *,
                queueing: str = "fair", latency_s: float = 0.0, netem: bool = False,
                burst_bytes: int = BURST_BYTES) -> list[str]:
    """``tc -batch`` lines that (re)build the queues of ``interface``: the link class at
    ``bps`` bit/s and, for ``fair``, a leaf per (source address, destination address) of
    ``pairs``. Replaces the root qdisc the interface has (TCLink's)."""
    if queueing not in QUEUEING:
        raise ValueError(f"queueing {queueing!r}; expected one of {QUEUEING}")
    dev = f"dev {interface}"
    default = 2 if queueing == "fair" else 1
    lines = [f"qdisc del {dev} root", f"qdisc add {dev} root handle 5: htb default {default}",
             f"class add {dev} parent 5: classid 5:1 htb rate {_rate(bps)} "
             f"burst {burst_bytes} cburst {burst_bytes} quantum 1514"]
    leaves = ["5:1"]
    if queueing == "fair":
        leaves = ["5:2"]
        lines.append(f"class add {dev} parent 5:1 classid 5:2 {LEAF}")
        for k, (src, dst) in enumerate(pairs):
            leaf = f"5:{FIRST_LEAF + k:x}"
            leaves.append(leaf)
            lines.append(f"class add {dev} parent 5:1 classid {leaf} {LEAF}")
            lines.append(f"filter add {dev} parent 5: protocol ip prio 1 u32 "
                         f"match ip src {src}/32 match ip dst {dst}/32 flowid {leaf}")
    if netem and latency_s > 0:
        for i, leaf in enumerate(leaves):
            lines.append(f"qdisc add {dev} parent {leaf} handle {0x100 + i:x}: netem "
                         f"delay {latency_s * 1e3:.6f}ms limit 10000")
    return lines


@dataclass(frozen=True)
class CapacityChange:
    link: LinkKey
    at_s: float          # scheduled, relative to t0
    bps: float


@dataclass(frozen=True)
class AppliedChange:
    link: LinkKey
    at_s: float
    bps: float
    applied_start_s: float
    applied_end_s: float
    ok: bool
    error: str = ""


def initial_capacity(topology: Topology) -> dict[LinkKey, float]:
    """Capacity (bit/s) of every link direction at time 0."""
    return {key: link.capacity_at(0.0) for key, link in topology.links.items()}


def schedule(topology: Topology, horizon_s: float) -> list[CapacityChange]:
    """Every capacity change in ``(0, horizon_s]``, in time order (ties by link order)."""
    changes = []
    order = {key: i for i, key in enumerate(topology.links)}
    for key, link in topology.links.items():
        series = link.series
        if series is None or series.is_constant:
            continue
        t = series.next_change_s(0.0)
        value = series.value_at(0.0)
        while t <= horizon_s and math.isfinite(t):
            new = series.value_at(t)
            if new != value:
                changes.append(CapacityChange(key, t, new))
                value = new
            t = series.next_change_s(t)
    changes.sort(key=lambda c: (c.at_s, order[c.link]))
    return changes


class TcSession:
    """A long-running ``tc -force -batch -`` (in one network namespace) fed line by line:
    a change then takes well under a millisecond instead of a process start (~5 ms)."""

    def __init__(self, argv: list[str], log_path: str):
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(argv + ["tc", "-force", "-batch", "-"],
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=self._log)
        stdin = self.proc.stdin
        assert stdin is not None   # opened with stdin=PIPE
        self._stdin = stdin

    def send(self, line: str) -> None:
        self._stdin.write(line.encode() + b"\n")
        self._stdin.flush()

    def close(self, timeout_s: float = TC_TIMEOUT_S) -> int | None:
        try:
            self._stdin.close()
        except OSError:
            pass
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(timeout=timeout_s)
        self._log.close()
        return code


class CapacityReplayer(threading.Thread):
    """Applies ``changes`` at ``t0 + at_s``: ``command_for(link, bps)`` gives the session
    key (the namespace), the command that starts a ``tc`` there, and the batch line."""

    def __init__(self, changes: list[CapacityChange], t0: float,
                 command_for: Callable[[LinkKey, float], tuple[str, list[str], str]],
                 log_path: str, on_process: Callable[[subprocess.Popen], None] = lambda p: None):
        super().__init__(name="capacity-replayer", daemon=True)
        self.changes = changes
        self.t0 = t0
        self.command_for = command_for
        self.log_path = log_path
        self.on_process = on_process
        self.applied: list[AppliedChange] = []
        self.sessions: dict[str, TcSession] = {}
        self._halt = threading.Event()
        for change in changes:  # start every session before t0
            self._session(*self.command_for(change.link, change.bps)[:2])

    def _session(self, key: str, argv: list[str]) -> TcSession:
        session = self.sessions.get(key)
        if session is None:
            session = self.sessions[key] = TcSession(argv, self.log_path)
            self.on_process(session.proc)
        return session

    def stop(self, timeout_s: float = 10.0) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout_s)
        for session in self.sessions.values():
            session.close()

    def run(self) -> None:
        i = 0
        while i < len(self.changes) and not self._halt.is_set():
            at = self.changes[i].at_s
            batch = []
            while i < len(self.changes) and self.changes[i].at_s == at:
                batch.append(self.changes[i])
                i += 1
            wait = self.t0 + at - time.monotonic()
            if wait > 0 and self._halt.wait(wait):
                return
            self._apply(batch)

    def _apply(self, batch: list[CapacityChange]) -> None:
        started = time.monotonic()
        for change in batch:
            key, argv, line = self.command_for(change.link, change.bps)
            try:
                self._session(key, argv).send(line)
                ok, error = True, ""
            except OSError as failure:
                ok, error = False, str(failure)
            self.applied.append(AppliedChange(change.link, change.at_s, change.bps,
                                              started - self.t0, time.monotonic() - self.t0,
                                              ok, error))
