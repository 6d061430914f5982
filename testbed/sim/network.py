"""Flow-level network: transfers share capacity max-min fairly over the whole network.

A transfer is a *flow* on a fixed path of directed links (plus the sender's NIC transmit
and the receiver's NIC receive limits, when a device has them). All active flows share
capacity max-min fairly (progressive filling). Rates are recomputed whenever a flow
starts, a flow ends, or a capacity changes, and the next completion is rescheduled. A
flow's bytes drain at its fluid rate; the last byte then needs the path's propagation
latency to arrive, so a lone flow of ``S`` bytes over capacity ``C`` bit/s on a path of
latency ``l`` takes exactly ``l + 8*S/C`` seconds.

``goodput_factor`` scales every capacity to the payload rate a transport achieves on it
(e.g. 1448/1514 = 0.9564 for TCP with timestamps over 1500-byte Ethernet frames, the
factor the Mininet validation measures); 1.0 (default) is the line rate; None takes each
link's own from ``link_goodput`` (its technology's). It leaves the member links of media
alone: their capacity is already a station's TCP goodput.

**Shared media** (:mod:`testbed.cluster.medium`): a flow crossing member links of a medium
(a Wi-Fi BSS) also uses the medium's airtime, ``r * sum(1 / G_l)`` over the member links
``l`` it crosses at rate ``r`` (``G_l``: the link's current payload capacity); the airtime of
all flows on a medium is at most 1, and rates are max-min fair under link and airtime
constraints together (weighted progressive filling), so a slow station takes more airtime
per bit and slows every other station of its medium (the 802.11 performance anomaly). Each
message also pays a fixed air time per member link it crosses: the medium's PHY header, plus
its contention overhead when other flows are on the medium as it starts. That air time is
added to the flow as bits (``air time / airtime per bit``), so it is shared like the rest: a
lone flow of ``S`` bytes over one member link of capacity ``G`` on an idle medium takes
``l + 8*S/G + preamble``. A sender's messages of at most ``txop_bytes`` over a medium go
one after another in the order they started (one A-MPDU per channel access), the later
ones waiting at rate 0 (not counted as stalled).

``packets=True`` adds two per-packet effects to the fluid model: a message's first packet
(``min(S, MSS)``) is stored and forwarded whole by every wired link of its route but the
slowest (:meth:`Network.packet_latency_s`), and a sender's messages of at most one initial
window (``transport``'s, 10 segments) leave its own link in the order they started.

Capacities are in bit/s, sizes in bytes, times in seconds. Flows are kept in the order
they started, so ties are resolved the same way every run.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Hashable, NamedTuple

import simpy

from testbed.cluster.medium import MediumSpec, airtime_per_bit
from testbed.sim.transport import WARM, TransportSpec, TransportState
from testbed.units import BITS_PER_BYTE

if TYPE_CHECKING:
    from testbed.sim.record_log import ChunkedLog
    from testbed.traces.series import Series

Resource = Hashable  # a directed link (u, v), ("nic-tx", node) / ("nic-rx", node), or
                     # ("medium", name): a shared channel's airtime (capacity 1)

#: A flow that ran alone, as :meth:`Network.record_lone_flows` takes it: ``(src, dst,
#: size_bytes, tag, hops, start_s, fluid_end_s, end_s)``.
LoneFlow = tuple[str, str, float, str, int, float, float, float]

#: Two finish times closer than this (relative) are the same instant.
_TIME_RTOL = 1e-12


@dataclass(eq=False, slots=True)
class Flow:
    """One transfer in progress."""

    flow_id: int
    src: str
    dst: str
    size_bytes: float
    kind: str
    tag: str
    resources: tuple[Resource, ...]
    latency_s: float
    start_s: float
    done: simpy.Event
    hops: int = 0
    remaining_bits: float = 0.0      # as of ``updated_s``
    updated_s: float = 0.0
    rate_bps: float = 0.0
    finish_s: float = math.inf       # projected end of the fluid phase at the current rate
    stalled_s: float = 0.0           # time spent at rate 0 (e.g. during an outage)
    fluid_end_s: float = math.nan
    air: tuple = ()                  # (medium resource, member links crossed) per medium
    wired: tuple = ()                # its resources that are not media
    turns: tuple = ()                # (medium, sender) queues its short messages wait in
    queued: bool = False             # waiting behind another short message of its sender
    stalled_since_s: float = math.nan  # when its rate last dropped to 0 (transport RTO)
    hold_until_s: float = 0.0        # held at rate 0 until TCP retransmits (transport RTO)


class FlowRecord(NamedTuple):
    """What a finished flow leaves in the records (times in s, size in bytes); a named
    tuple, because every run makes hundreds of thousands."""

    flow_id: int
    src: str
    dst: str
    kind: str
    tag: str
    size_bytes: float
    hops: int
    start_s: float
    fluid_end_s: float
    end_s: float
    stalled_s: float


class Network:
    """Max-min fair sharing of link and NIC capacity among concurrent flows.

    ``paths[(src, dst)]`` gives the directed links of the fixed route; ``capacity_bps``
    the initial capacity of every resource; ``latency_s[(u, v)]`` each link's latency.
    """

    def __init__(self, env: simpy.Environment, paths: Callable[[str, str], tuple],
                 capacity_bps: dict[Resource, float], latency_s: dict[Resource, float],
                 nic_tx_bps: dict[str, float] | None = None,
                 nic_rx_bps: dict[str, float] | None = None,
                 goodput_factor: float | None = 1.0, media: Iterable[MediumSpec] = (),
                 transport: TransportSpec = WARM, packets: bool = False,
                 link_goodput: dict[Resource, float] | None = None):
        factors = [goodput_factor] if goodput_factor is not None else []
        factors += list((link_goodput or {}).values())
        if any(not 0.0 < f <= 1.0 for f in factors):
            raise ValueError(f"goodput factors must be in (0, 1], got {factors!r}")
        self.env = env
        self._paths = paths
        self.goodput_factor = goodput_factor
        self._link_goodput = dict(link_goodput or {})
        self._media: dict[tuple, MediumSpec] = {}
        self._medium_of: dict[Resource, tuple] = {}
        for medium in media:
            key = ("medium", medium.name)
            self._media[key] = medium
            for link in medium.members:
                self._medium_of[link] = key
        self._capacity = {key: bps * self._factor(key) for key, bps in capacity_bps.items()}
        for key in self._media:
            self._capacity[key] = 1.0
        self._latency = dict(latency_s)
        for node, bps in (nic_tx_bps or {}).items():
            self._capacity[("nic-tx", node)] = bps * self._factor(("nic-tx", node))
        for node, bps in (nic_rx_bps or {}).items():
            self._capacity[("nic-rx", node)] = bps * self._factor(("nic-rx", node))
        self.transport = transport
        #: per-packet effects (store-and-forward of a message's first packet at every hop
        #: but the bottleneck; a sender's messages of one initial window leave in order)
        self._packet_bytes = float(transport.mss_bytes) if packets else 0.0
        self._window_bytes = transport.initial_window_bytes if packets else 0.0
        self._links_of: dict[tuple, tuple] = {}   # resources of a route -> its wired links
        self._transport = TransportState(transport)
        self._round_trips = transport.adds_round_trips
        self._extras = bool(self._media or self._packet_bytes or self._round_trips)  # _shape
        self._weighted = bool(self._media or self._packet_bytes)   # _fill_weighted
        self._rto = transport.rto_min_s is not None
        self._air: dict[tuple, tuple] = {}    # resources of a route -> its air part
        self._path_of: dict[tuple, tuple] = {}  # ... and its links
        self._route_cache: dict[tuple[str, str], tuple[tuple[Resource, ...], float, int]] = {}
        self._flows: dict[int, Flow] = {}
        self._next_id = 0
        self._wakeup_version = 0
        self._wakeup_at_s = math.inf
        self._reallocation_pending = False
        self._joining: list[Flow] = []  # started at this instant, not yet shared
        self._load: dict[Resource, int] = {}  # flows (active or joining) per resource
        self.records: list[FlowRecord] | ChunkedLog[FlowRecord] = []
        #: Called after every reallocation with the active flows (for tests and probes).
        self.observers: list[Callable[[list[Flow], dict[Resource, float]], None]] = []

    def _factor(self, resource: Resource) -> float:
        """The goodput factor of a resource: 1 for a medium's member links (their capacity
        is already a station's TCP goodput, headers included), else ``goodput_factor``, or
        when that is None the link's own (``link_goodput``, default 1)."""
        if resource in self._medium_of:
            return 1.0
        if self.goodput_factor is None:
            return self._link_goodput.get(resource, 1.0)
        return self.goodput_factor

    # ----------------------------------------------------------------- public API
    def capacity_bps(self, resource: Resource) -> float:
        """Payload rate a resource offers now (line rate x goodput factor, bit/s)."""
        return self._capacity[resource]

    @property
    def has_media(self) -> bool:
        """True when some links share a medium's airtime."""
        return bool(self._media)

    @property
    def has_packets(self) -> bool:
        """True when per-packet effects are on (``packets``)."""
        return bool(self._packet_bytes)

    @property
    def active_flows(self) -> list[Flow]:
        return list(self._flows.values())

    def is_quiet(self) -> bool:
        """True when no flow is in flight or about to be shared, nothing observes the
        rates, and :meth:`transfer` is this class's own: a pass can then be computed from
        lone-flow times (:mod:`testbed.sim.fast_pass`)."""
        return not (self._flows or self._joining or self._reallocation_pending or
                    self.observers or "transfer" in self.__dict__ or self._round_trips)

    def lone_rate_bps(self, resources: tuple[Resource, ...]) -> float:
        """The rate a flow crossing ``resources`` gets when it shares none (bit/s)."""
        capacity = self._capacity
        air = self._air.get(resources) if self._media else None
        if air:
            rates = [capacity[res] for res in resources if res not in self._media]
            rates += [1.0 / airtime_per_bit(capacity, hops) for _, hops in air]
            return min(rates)
        return min([capacity[res] for res in resources]) if len(resources) > 1 \
            else capacity[resources[0]]

    def air_overhead_bits(self, resources: tuple[Resource, ...], contended: bool,
                          size_bytes: float) -> float:
        """The fixed air time of one message of ``size_bytes`` over ``resources``
        (MediumSpec.air_time_s; its first hop contends if ``contended``) as bits of the
        flow: 0 off media."""
        air = self._air.get(resources) if self._media else None
        if not air:
            return 0.0
        bits = 0.0
        path = self._path_of[resources]
        for res, hops in air:
            per_bit = airtime_per_bit(self._capacity, hops)
            if 0.0 < per_bit < math.inf:
                bits += self._media[res].air_time_s(path, size_bytes, contended) / per_bit
        return bits

    def packet_latency_s(self, resources: tuple[Resource, ...], size_bytes: float) -> float:
        """Store-and-forward of a message's first packet (s; 0 unless ``packets``): every
        wired link of the route but the slowest receives it whole before sending it on,
        which the fluid model's pipelining leaves out: ``min(S, MSS) * 8 / C`` per such
        link (``C``: its payload rate now)."""
        if not self._packet_bytes or size_bytes <= 0:
            return 0.0
        links = self._links_of[resources]
        if len(links) < 2:
            return 0.0
        capacity = self._capacity
        rates = [capacity[link] for link in links]
        if min(rates) <= 0:
            return 0.0
        bits = min(float(size_bytes), self._packet_bytes) * BITS_PER_BYTE
        slowest = rates.index(min(rates))
        return sum(bits / rate for k, rate in enumerate(rates) if k != slowest)

    def airtime(self, medium: str) -> float:
        """The share of ``medium``'s airtime the active flows use now (at most 1)."""
        key = ("medium", medium)
        total = 0.0
        for flow in self._flows.values():
            for res, hops in flow.air:
                if res == key and flow.rate_bps > 0:
                    total += flow.rate_bps * airtime_per_bit(self._capacity, hops)
        return total

    def record_lone_flows(self, flows: Sequence[LoneFlow]) -> None:
        """Records of flows that ran alone and were computed without events: ``flows``
        are ``(src, dst, size_bytes, tag, hops, start_s, fluid_end_s, end_s)`` (kind
        ``inference``). Ids follow the order the flows started, records the order their
        fluid phases ended, as :meth:`transfer` would have left them."""
        first = self._next_id
        ids = [0] * len(flows)
        starts = [f[5] for f in flows]
        for rank, k in enumerate(sorted(range(len(flows)), key=starts.__getitem__)):
            ids[k] = first + rank
        ends = [(f[6], ids[k]) for k, f in enumerate(flows)]
        append, make = self.records.append, FlowRecord._make
        for k in sorted(range(len(flows)), key=ends.__getitem__):
            src, dst, size, tag, hops, start, fluid_end, end = flows[k]
            append(make((ids[k], src, dst, "inference", tag, size, hops, start, fluid_end,
                         end, 0.0)))
        self._next_id = first + len(flows)

    def route(self, src: str, dst: str) -> tuple[tuple[Resource, ...], float, int]:
        """(resources crossed, path latency in s, hop count) from ``src`` to ``dst``."""
        key = (src, dst)
        cached = self._route_cache.get(key)
        if cached is None:
            links = tuple(self._paths(src, dst))
            resources: list[Resource] = list(links)
            if ("nic-tx", src) in self._capacity:
                resources.append(("nic-tx", src))
            if ("nic-rx", dst) in self._capacity:
                resources.append(("nic-rx", dst))
            latency = sum(self._latency[link] for link in links)
            air: dict[tuple, list] = {}
            for link in links:
                medium = self._medium_of.get(link)
                if medium is not None:
                    air.setdefault(medium, []).append(link)
            resources.extend(air)
            self._links_of[tuple(resources)] = tuple(
                link for link in links if link not in self._medium_of)
            if air:
                self._air[tuple(resources)] = tuple((res, tuple(hops))
                                                    for res, hops in air.items())
                self._path_of[tuple(resources)] = links
            cached = (tuple(resources), latency, len(links))
            self._route_cache[key] = cached
        return cached

    def transfer(self, src: str, dst: str, size_bytes: float, kind: str = "inference",
                 tag: str = "", extra_latency_s: float = 0.0) -> simpy.Event:
        """Start sending ``size_bytes`` from ``src`` to ``dst``; the event fires on arrival.

        The event's value is the :class:`FlowRecord`. A transfer to the same node
        completes at once and leaves no record. ``extra_latency_s`` is added to the path's
        latency (e.g. per-message forwarding or medium-access delays).
        """
        if size_bytes < 0 or not math.isfinite(size_bytes):
            raise ValueError(f"transfer size must be finite and >= 0 bytes, got {size_bytes!r}")
        done = self.env.event()
        if src == dst:
            done.succeed(None)
            return done
        route = self._route_cache.get((src, dst))
        resources, latency, hops = route if route is not None else self.route(src, dst)
        if extra_latency_s:
            latency += extra_latency_s
        now = self.env.now
        flow = Flow(self._next_id, src, dst, float(size_bytes), kind, tag, resources, latency,
                    now, done, hops, remaining_bits=float(size_bytes) * BITS_PER_BYTE,
                    updated_s=now)
        self._next_id += 1
        load = self._load
        if self._extras:
            self._shape(flow, load)
        if flow.remaining_bits == 0.0:
            self._finish_fluid(flow)
            return done
        isolated = True
        for res in resources:
            count = load.get(res, 0)
            isolated = isolated and count == 0
            load[res] = count + 1
        if isolated:
            # Max-min sharing splits into independent parts along shared resources; a
            # flow that shares nothing gets its bottleneck and changes nobody's rate.
            self._flows[flow.flow_id] = flow
            self._set_rate(flow, self.lone_rate_bps(resources), now)
            if self._rto and flow.rate_bps == 0:
                flow.stalled_since_s = now
            if self.observers:
                self._notify()
            if flow.finish_s < self._wakeup_at_s:
                self._schedule_wakeup(flow.finish_s)
        else:
            self._joining.append(flow)
            self._request_reallocation()
        return done

    def _shape(self, flow: Flow, load: dict) -> None:
        """What media, packets and transport add to a new flow: latency (store-and-forward,
        round trips), its TXOP queues, its air time as bits."""
        resources, size = flow.resources, flow.size_bytes
        if self._packet_bytes:
            flow.latency_s += self.packet_latency_s(resources, size)
            if 0 < size <= self._window_bytes:
                first = self._links_of[resources][:1]
                if first and first[0][0] == flow.src:    # the sender's own wired link
                    flow.turns = ((first[0], flow.src),)
        if self._round_trips and size > 0:
            rtt = 2 * self._route_cache[(flow.src, flow.dst)][1]
            flow.latency_s += self._transport.extra_s(flow.src, flow.dst, size,
                                                      self.lone_rate_bps(resources), rtt,
                                                      flow.start_s)
        if self._media or self._packet_bytes:
            flow.wired = tuple(res for res in resources if res not in self._media)
            air = self._air.get(resources)
            if air:
                flow.air = air
                flow.turns += tuple((res, hops[0][0]) for res, hops in air
                                    if 0 < self._media[res].txop_bytes and
                                    size <= self._media[res].txop_bytes)
                contended = any(load.get(res, 0) for res, _ in air)
                flow.remaining_bits += self.air_overhead_bits(resources, contended, size)

    def set_capacity(self, resource: Resource, bps: float) -> None:
        """Change one resource's line rate now (bit/s) and re-share every flow."""
        if bps < 0 or math.isnan(bps):
            raise ValueError(f"capacity must be >= 0 bit/s, got {bps!r}")
        bps *= self._factor(resource)
        if self._capacity.get(resource) == bps:
            return
        self._advance()
        self._capacity[resource] = bps
        if self._load.get(resource, 0) or self._joining or self._reallocation_pending:
            # re-share once every change of this instant is in (traces of several links
            # often change together): the same rates, a fraction of the work
            self._request_reallocation()
        else:
            # No flow crosses the resource: max-min rates are unchanged, so only re-base
            # the projected ends as a reallocation would (the same numbers, less work).
            self._rebase()

    def _rebase(self) -> None:
        """Keep every rate, project each flow's end from now, re-arm the wake-up."""
        now = self.env.now
        next_finish = math.inf
        for flow in self._flows.values():
            self._set_rate(flow, flow.rate_bps, now)
            if flow.finish_s < next_finish:
                next_finish = flow.finish_s
        self._notify()
        self._schedule_wakeup(next_finish)

    # ----------------------------------------------------------------- mechanics
    def _request_reallocation(self) -> None:
        """Re-share once all flows starting at this instant have joined (no time passes,
        so the rates are the same as re-sharing after each one, at a fraction of the cost)."""
        if not self._reallocation_pending:
            self._reallocation_pending = True
            self.env.timeout(0).callbacks.append(self._deferred_reallocation)

    def _deferred_reallocation(self, _event: simpy.Event) -> None:
        if self._reallocation_pending:
            self._advance()
            self._reallocate()

    def _admit_joining(self) -> None:
        """Flows that started at this instant join the shared set (after draining the rest)."""
        for flow in self._joining:
            self._flows[flow.flow_id] = flow
        self._joining.clear()

    def _advance(self) -> None:
        """Drain every active flow at its current rate up to now."""
        now = self.env.now
        for flow in self._flows.values():
            elapsed = now - flow.updated_s
            if elapsed > 0:
                if flow.rate_bps > 0:
                    flow.remaining_bits = max(flow.remaining_bits - flow.rate_bps * elapsed, 0.0)
                elif not flow.queued:
                    flow.stalled_s += elapsed
                flow.updated_s = now

    @staticmethod
    def _set_rate(flow: Flow, rate_bps: float, now: float) -> None:
        flow.rate_bps = rate_bps
        flow.finish_s = now + flow.remaining_bits / rate_bps if rate_bps > 0 else math.inf

    def _notify(self) -> None:
        if self.observers:
            flows = list(self._flows.values())
            for observer in self.observers:
                observer(flows, self._capacity)

    def _reallocate(self) -> None:
        """Max-min fair rates by progressive filling, then schedule the next completion."""
        self._reallocation_pending = False
        if self._joining:
            self._admit_joining()
        everyone = flows = list(self._flows.values())
        if self._rto:                  # flows waiting for their retransmission take nothing
            now = self.env.now
            if any(f.hold_until_s > now for f in flows):
                flows = [f for f in flows if f.hold_until_s <= now]
        if self._weighted:
            self._fill_weighted(flows)
            return self._rates_set(everyone)
        for flow in flows:
            flow.rate_bps = -1.0  # not yet fixed
        remaining = {}
        users: dict[Resource, list[Flow]] = {}
        for flow in flows:
            for res in flow.resources:
                if res not in users:
                    users[res] = []
                    remaining[res] = self._capacity[res]
                users[res].append(flow)
        unfixed = {res: len(fl) for res, fl in users.items()}
        n_left = len(flows)
        if len(unfixed) == sum(len(flow.resources) for flow in flows):
            # no resource is shared: each flow gets its own bottleneck's capacity
            for flow in flows:
                flow.rate_bps = max(min(remaining[res] for res in flow.resources), 0.0)
            n_left = 0
        while n_left:
            # The resource whose fair share is smallest is the next bottleneck.
            bottleneck, share = None, math.inf
            for res, count in unfixed.items():
                if count:
                    s = remaining[res] / count
                    if s < share:
                        bottleneck, share = res, s
            share = max(share, 0.0)
            for flow in users[bottleneck]:
                if flow.rate_bps >= 0:
                    continue
                flow.rate_bps = share
                n_left -= 1
                for res in flow.resources:
                    remaining[res] -= share
                    unfixed[res] -= 1
        self._rates_set(everyone)

    def _fill_weighted(self, flows: list[Flow]) -> None:
        """Max-min fair rates when some resources are media: a flow uses weight 1 of a link
        and ``sum(1 / G_l)`` (airtime per bit) of a medium; a flow crossing a resource at 0
        bit/s gets rate 0 and takes nothing; a sender's short messages on a medium (or, with
        ``packets``, on its own link) after its first wait (``queued``, rate 0)."""
        capacity = self._capacity
        remaining: dict[Resource, float] = {}
        weight_sum: dict[Resource, float] = {}
        unfixed: dict[Resource, int] = {}
        users: dict[Resource, list[Flow]] = {}
        weights: dict[int, list[tuple[Resource, float]]] = {}
        senders: set = set()
        n_left = 0
        for flow in flows:
            flow.queued = False
            if flow.turns:
                # one A-MPDU per channel access: a sender's short messages go one by one
                for key in flow.turns:
                    if key in senders:
                        flow.queued = True
                    senders.add(key)
                if flow.queued:
                    flow.rate_bps = 0.0
                    continue
            own = []
            for res in flow.wired:
                if capacity[res] <= 0:
                    break
                own.append((res, 1.0))
            else:
                for res, hops in flow.air:
                    w = 0.0
                    for link in hops:
                        c = capacity[link]
                        if c <= 0:
                            break
                        w += 1.0 / c
                    else:
                        own.append((res, w))
                        continue
                    break
                else:
                    flow.rate_bps = -1.0
                    weights[flow.flow_id] = own
                    n_left += 1
                    for res, w in own:
                        if res in remaining:
                            weight_sum[res] += w
                            unfixed[res] += 1
                            users[res].append(flow)
                        else:
                            remaining[res] = capacity[res]
                            weight_sum[res] = w
                            unfixed[res] = 1
                            users[res] = [flow]
                    continue
            flow.rate_bps = 0.0                 # a resource on its route is at 0 bit/s
        while n_left:
            bottleneck, share = None, math.inf
            for res, count in unfixed.items():
                if count:
                    s = remaining[res] / weight_sum[res]
                    if s < share:
                        bottleneck, share = res, s
            if share < 0.0:
                share = 0.0
            for flow in users[bottleneck]:
                if flow.rate_bps >= 0:
                    continue
                flow.rate_bps = share
                n_left -= 1
                for res, w in weights[flow.flow_id]:
                    remaining[res] -= w * share
                    weight_sum[res] -= w
                    unfixed[res] -= 1

    def _rates_set(self, flows: list[Flow]) -> None:
        """Project every flow's end at its new rate, tell observers, arm the wake-up."""
        now = self.env.now
        if self._rto:
            self._retransmission_timers(flows, now)
        next_finish = math.inf
        for flow in flows:
            self._set_rate(flow, flow.rate_bps, now)
            if flow.finish_s < next_finish:
                next_finish = flow.finish_s
        self._notify()
        self._schedule_wakeup(next_finish)

    def _retransmission_timers(self, flows: list[Flow], now: float) -> None:
        """TCP's retransmission timer (transport ``rto_min_s``): a flow whose rate dropped
        to 0 resumes only at its next retransmission; until then it is held at rate 0."""
        for flow in flows:
            if flow.hold_until_s > now:
                flow.rate_bps = 0.0
            elif flow.rate_bps == 0 and not flow.queued:
                if math.isnan(flow.stalled_since_s):
                    flow.stalled_since_s = now
            elif not math.isnan(flow.stalled_since_s):
                resume = self._transport.next_retransmission_s(flow.stalled_since_s, now)
                flow.stalled_since_s = math.nan
                if resume > now:
                    flow.hold_until_s = resume
                    flow.rate_bps = 0.0
                    self.env.timeout(resume - now).callbacks.append(self._release)

    def _release(self, _event: simpy.Event) -> None:
        """A held flow's retransmission is due: re-share."""
        self._advance()
        self._reallocate()

    def _schedule_wakeup(self, at_s: float) -> None:
        """Make sure a wake-up happens at ``at_s``; an earlier pending one is kept (it
        finds nothing to finish and re-arms), a later one is superseded."""
        if at_s >= self._wakeup_at_s or at_s == math.inf:
            return
        self._wakeup_version += 1
        self._wakeup_at_s = at_s
        version = self._wakeup_version
        wake = self.env.timeout(at_s - self.env.now)
        wake.callbacks.append(lambda _ev: self._on_wakeup(version))

    def _on_wakeup(self, version: int) -> None:
        if version != self._wakeup_version:
            return  # superseded by an earlier wake-up
        self._wakeup_at_s = math.inf
        now = self.env.now
        limit = now + _TIME_RTOL * max(1.0, abs(now))
        finished = [f for f in self._flows.values() if f.finish_s <= limit]
        if not finished:  # rates dropped since this was armed: re-arm for the new first end
            self._schedule_wakeup(min((f.finish_s for f in self._flows.values()),
                                      default=math.inf))
            return
        self._advance()
        shared = False
        load = self._load
        for flow in finished:
            del self._flows[flow.flow_id]
            flow.remaining_bits = 0.0
            for res in flow.resources:
                load[res] -= 1
                shared = shared or load[res] > 0
            self._finish_fluid(flow)
        if shared or self._joining:
            self._reallocate()
        else:  # the finished flows shared nothing: everybody else keeps their rate
            self._notify()
            self._schedule_wakeup(min((f.finish_s for f in self._flows.values()),
                                      default=math.inf))

    def _finish_fluid(self, flow: Flow) -> None:
        now = self.env.now
        if self._round_trips:
            self._transport.finished(flow.src, flow.dst, now + flow.latency_s)
        flow.fluid_end_s = now
        flow.rate_bps = 0.0
        record = FlowRecord(flow.flow_id, flow.src, flow.dst, flow.kind, flow.tag,
                            flow.size_bytes, flow.hops, flow.start_s, now,
                            now + flow.latency_s, flow.stalled_s)
        self.records.append(record)
        # Trigger ``done`` after the propagation latency, as a Timeout would, without a
        # second event (the hot path of every run).
        done = flow.done
        done._ok = True
        done._value = record
        self.env.schedule(done, delay=flow.latency_s)


class CapacityReplay:
    """Sets ``resource``'s capacity to ``series`` (bit/s) at each of its breakpoints, for
    as long as the simulation runs: the events and their order of
    :func:`replay_capacity`, as timeout callbacks rather than a process (cheaper per
    breakpoint; long traces have thousands)."""

    __slots__ = ("env", "network", "resource", "series")

    def __init__(self, env: simpy.Environment, network: Network, resource: Resource,
                 series: Series):
        self.env, self.network, self.resource, self.series = env, network, resource, series
        self._arm()

    def _arm(self) -> None:
        env = self.env
        nxt = self.series.next_change_s(env.now)
        if not math.isinf(nxt):
            env.timeout(nxt - env.now).callbacks.append(self._change)

    def _change(self, _event: simpy.Event) -> None:
        self.network.set_capacity(self.resource, self.series.value_at(self.env.now))
        self._arm()


def replay_capacity(env: simpy.Environment, network: Network, resource: Resource,
                    series: Series) -> Generator[simpy.Event, Any, None]:
    """A SimPy process: set ``resource``'s capacity to ``series`` (bit/s) at each of its
    breakpoints, for as long as the simulation runs (``series`` is a
    :class:`testbed.traces.series.Series`)."""
    while True:
        nxt = series.next_change_s(env.now)
        if math.isinf(nxt):
            return
        yield env.timeout(nxt - env.now)
        network.set_capacity(resource, series.value_at(env.now))
