"""The time a sequence of placements takes, knowing the whole future of the cluster.

:class:`HorizonEvaluator` judges one run of a scenario (one sequence, ``blocking``
migrations, no failures) the way the engine runs it, decision after decision: at the
first token and then every ``decision_interval`` tokens a placement is chosen; every
block whose device changed is migrated first (one flow per (old, new) device pair, as the
engine sends them, generation waiting for the last), then the interval's passes run one
after another, each a sweep of its task graph.

Every duration follows the rates of the moment it covers, not of the moment it starts:
a transfer is through when the integral of its route's lone-flow rate reaches its bits
(:class:`~testbed.horizon.profile.RateProfile`), a computation when the integral of its
device's progress rate (one over its roofline time at the availability of each instant)
reaches 1. Each task starts when its last dependency ends, so the end of anything is a
non-decreasing function of its start, and so is the end of a whole interval: starting
later never finishes sooner. That is what lets :mod:`testbed.horizon.optimum` keep only
the earliest arrival at each placement.

What it leaves out, for every sequence alike (so regret compares like with like): the
sharing of a link between flows in flight together (each gets its lone rate; a blocking
migration also waits for the bytes that cross each link at that link's own rate, a lower
bound of max-min sharing), a device's queue of ready work (each task starts when its
inputs are in; message overheads are stretched by background load but not queued), TCP
round trips. With constant rates, no two flows on a link and one task at a time per
device it equals the engine; ``regret.csv`` gives the engine's time beside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import simpy

from testbed.dataflows import make_dataflow
from testbed.errors import ConfigError
from testbed.model.blocks import blocks_of
from testbed.horizon.profile import HORIZON_LIMIT_S, RateProfile
from testbed.plan.graph import GraphTemplate, TaskGraph
from testbed.plan.migration import migration_bytes
from testbed.plan.placement import Placement
from testbed.sim.compute import STALLED_AFTER_S
from testbed.sim.engine import SimConfig, build_network
from testbed.sim.generation import SingleSequence
from testbed.units import BITS_PER_BYTE


class HorizonEvaluator:
    """Times of placement sequences for ``config`` (see the module docstring)."""

    def __init__(self, config: SimConfig):
        _check_supported(config)
        self.cfg = config
        self.model = config.model
        self.controller = config.topology.controller
        self.dataflow = make_dataflow(config.dataflow)
        sequence = SingleSequence(config.cost, config.model, config.prompt_tokens,
                                  config.generate_tokens)
        self.works = [sequence.step_of(k) for k in range(1, config.generate_tokens + 1)]
        interval = config.decision_interval
        #: first token (1-based) of each decision's interval
        self.decision_tokens = list(range(1, config.generate_tokens + 1, interval))
        self.devices = list(config.topology.devices)
        self.index = {name: i for i, name in enumerate(self.devices)}
        self.network, self._replayed = build_network(simpy.Environment(), config)
        self._routes: dict[tuple[str, str], tuple] = {}
        self._pair_rate: dict[tuple[str, str], RateProfile] = {}
        self._link_rate: dict[tuple, RateProfile] = {}
        self._availability: dict[str, _Availability] = {}
        self._templates: dict[Placement, GraphTemplate] = {}
        self._graphs: dict[tuple[Placement, int], TaskGraph] = {}
        self._sizes: dict[int, np.ndarray] = {}
        self._kinds = [block.kind for block in blocks_of(self.model)]

    # ------------------------------------------------------------------ the future
    def _route(self, src: str, dst: str) -> tuple:
        """(resources crossed, path latency in s, the topology links among them)."""
        route = self._routes.get((src, dst))
        if route is None:
            resources, latency, _ = self.network.route(src, dst)
            links = tuple(r for r in resources if r in self.cfg.topology.links)
            route = self._routes[(src, dst)] = (resources, latency, links)
        return route

    def _set_capacities(self, links, t_s: float) -> None:
        for link in links:
            series = self._replayed.get(link)
            if series is not None:
                self.network.set_capacity(link, series.value_at(t_s))

    def _next_change(self, links, t_s: float) -> float:
        return min((self._replayed[link].next_change_s(t_s) for link in links
                    if link in self._replayed), default=math.inf)

    def pair_rate(self, src: str, dst: str) -> RateProfile:
        """The rate a lone flow from ``src`` to ``dst`` gets over time (bit/s)."""
        profile = self._pair_rate.get((src, dst))
        if profile is None:
            resources, _, links = self._route(src, dst)

            def rate_at(t_s: float) -> float:
                self._set_capacities(links, t_s)
                return self.network.lone_rate_bps(resources)
            profile = self._pair_rate[(src, dst)] = RateProfile(
                rate_at, lambda t_s: self._next_change(links, t_s))
        return profile

    def link_rate(self, link: tuple) -> RateProfile:
        """The payload rate of one link direction over time (bit/s)."""
        profile = self._link_rate.get(link)
        if profile is None:
            def rate_at(t_s: float) -> float:
                self._set_capacities((link,), t_s)
                return self.network.lone_rate_bps((link,))
            profile = self._link_rate[link] = RateProfile(
                rate_at, lambda t_s: self._next_change((link,), t_s))
        return profile

    def availability(self, device: str) -> "_Availability":
        found = self._availability.get(device)
        if found is None:
            found = self._availability[device] = _Availability(
                self.cfg.topology.devices[device], self.cfg.avail_compute.get(device),
                self.cfg.avail_mem.get(device))
        return found

    def transfer_end_s(self, src: str, dst: str, size_bytes: float, start_s: float,
                       messages: int = 1) -> float:
        """When ``size_bytes`` sent from ``src`` at ``start_s`` have arrived (s)."""
        if src == dst:
            return start_s
        resources, latency, links = self._route(src, dst)
        bits = size_bytes * BITS_PER_BYTE
        network = self.network
        if network.has_media:
            self._set_capacities(links, start_s)
            bits += network.air_overhead_bits(resources, False, size_bytes)
        # every message pays each link's fixed delay, as in the engine's passes
        extra = messages * self.cfg.messages.link_delay_s(resources)
        if network.has_packets:
            extra += network.packet_latency_s(resources, size_bytes)
        end = self.pair_rate(src, dst).end_s(start_s, bits) if bits > 0 else start_s
        return end + latency + extra

    # ------------------------------------------------------------------ passes
    def graph(self, placement: Placement, token: int) -> TaskGraph:
        """The task graph of the pass that produces ``token`` under ``placement``."""
        key = (placement, token)
        graph = self._graphs.get(key)
        if graph is None:
            template = self._templates.get(placement)
            if template is None:
                if len(self._templates) > 4096:
                    self._templates.clear()
                template = self._templates[placement] = self.dataflow.template(
                    placement, self.controller)
            if len(self._graphs) > 4096:
                self._graphs.clear()
            graph = self._graphs[key] = template.bind(self.works[token - 1])
        return graph

    def pass_end_s(self, placement: Placement, token: int, start_s: float) -> float:
        """When the pass of ``token`` started at ``start_s`` under ``placement`` ends (s)."""
        graph = self.graph(placement, token)
        t = graph.template
        send, recv = self.cfg.messages.send_s, self.cfg.messages.recv_s
        finish = [0.0] * len(t)
        for i in range(len(t)):
            ready = start_s
            for d in t.deps[i]:
                if finish[d] > ready:
                    ready = finish[d]
            device = t.device[i]
            if t.computes[i]:
                finish[i] = self.availability(device).parts_end_s(graph.parts[i], ready)
                continue
            count, dst = t.messages[i], t.dst[i]
            begin = self.availability(device).busy_end_s(count * send.get(device, 0.0), ready)
            arrived = self.transfer_end_s(device, dst, graph.size_bytes[i], begin, count)
            finish[i] = self.availability(dst).busy_end_s(count * recv.get(dst, 0.0), arrived)
        return finish[t.sink]

    def segment_end_s(self, decision: int, placement: Placement, start_s: float) -> float:
        """When the passes of decision ``decision``'s interval, run from ``start_s`` under
        ``placement``, are done (s)."""
        end = start_s
        for token in self._interval(decision):
            end = self.pass_end_s(placement, token, end)
            if not math.isfinite(end):
                break
        return end

    def _interval(self, decision: int) -> range:
        first = self.decision_tokens[decision]
        return range(first, min(first + self.cfg.decision_interval,
                                self.cfg.generate_tokens + 1))

    # ------------------------------------------------------------------ migrations
    def block_sizes(self, decision: int) -> np.ndarray:
        """Bytes each block (in model order) sends if it moves at ``decision`` (>= 1)."""
        sizes = self._sizes.get(decision)
        if sizes is None:
            before = self.works[self.decision_tokens[decision] - 2]
            per_kind = {kind: migration_bytes(self.dataflow, kind, before,
                                              self.cfg.weights_preloaded)
                        for kind in set(self._kinds)}
            sizes = self._sizes[decision] = np.array([per_kind[k] for k in self._kinds])
        return sizes

    def migration_ends_s(self, decision: int, before: np.ndarray, after: np.ndarray,
                         start_s: float) -> np.ndarray:
        """When the migrations from placement ``before`` to each row of ``after`` (device
        indices per block, see :meth:`as_indices`), started at ``start_s``, have arrived
        (s, one per row): the last (old, new) pair's flow and, for every link, the bytes
        crossing it at its own rate."""
        sizes = self.block_sizes(decision)
        n_dev = len(self.devices)
        moved = np.zeros((after.shape[0], n_dev, n_dev))
        for block, old in enumerate(before):
            moved[np.arange(after.shape[0]), old, after[:, block]] += sizes[block]
        idx = np.arange(n_dev)
        moved[:, idx, idx] = 0.0
        ends = np.full(after.shape[0], start_s)
        per_link: dict[tuple, np.ndarray] = {}
        for a, b in zip(*np.nonzero(moved.any(axis=0))):
            src, dst = self.devices[a], self.devices[b]
            size = moved[:, a, b]
            resources, latency, links = self._route(src, dst)
            bits = size * BITS_PER_BYTE
            if self.network.has_media:
                self._set_capacities(links, start_s)
                bits = bits + np.array([self.network.air_overhead_bits(resources, False, s)
                                        if s > 0 else 0.0 for s in size])
            arrive = self.pair_rate(src, dst).ends_s(start_s, bits) + latency
            ends = np.maximum(ends, np.where(size > 0, arrive, start_s))
            for link in links:
                per_link[link] = per_link.get(link, 0.0) + size
        for link, size in per_link.items():
            through = self.link_rate(link).ends_s(start_s, size * BITS_PER_BYTE)
            ends = np.maximum(ends, through)
        return ends

    # ------------------------------------------------------------------ sequences
    def as_indices(self, placement: Placement) -> np.ndarray:
        """The device index of each block, in model order."""
        return np.array([self.index[d] for d in placement.devices], dtype=np.int64)

    def sequence_time_s(self, placements: Sequence[Placement]) -> float:
        """Total generation time (s) of one placement per decision, from 0 s."""
        if len(placements) != len(self.decision_tokens):
            raise ValueError(f"got {len(placements)} placements; expected one per decision "
                             f"({len(self.decision_tokens)})")
        end = self.segment_end_s(0, placements[0], 0.0)
        for j in range(1, len(placements)):
            if placements[j] != placements[j - 1]:
                end = float(self.migration_ends_s(j, self.as_indices(placements[j - 1]),
                                                  self.as_indices(placements[j])[None, :],
                                                  end)[0])
            end = self.segment_end_s(j, placements[j], end)
        return end

    def fits(self, decision: int, placement: Placement) -> bool:
        """Whether ``placement`` holds its interval's largest pass in every device's
        memory (blocks, the controller's LM head, the most other work ever takes)."""
        last = self._interval(decision)[-1]
        held = self.graph(placement, last).memory_bytes
        head = self.works[last - 1].lm_head.weight_bytes
        for name, spec in self.cfg.topology.devices.items():
            taken = self.cfg.memory_taken.get(name)
            other = max(taken.values) * spec.memory_bytes if taken is not None else 0.0
            used = held.get(name, 0.0) + other + (head if name == self.controller else 0.0)
            if used > spec.memory_bytes:
                return False
        return True


class _Availability:
    """A device's free fraction of compute and memory bandwidth over time."""

    def __init__(self, spec, avail_compute, avail_mem):
        self.spec = spec
        self.series = [s for s in (avail_compute, avail_mem) if s is not None]
        self.c, self.m = avail_compute, avail_mem

    def _at(self, t_s: float) -> tuple[float, float]:
        return (self.c.value_at(t_s) if self.c is not None else 1.0,
                self.m.value_at(t_s) if self.m is not None else 1.0)

    def _next(self, t_s: float) -> float:
        return min((s.next_change_s(t_s) for s in self.series), default=math.inf)

    def _end_s(self, duration, start_s: float) -> float:
        """When work taking ``duration(c, m)`` seconds at availability (c, m) is done."""
        if not self.series:
            return start_s + duration(1.0, 1.0)
        t, left = start_s, 1.0
        stalled_since = None
        while t < HORIZON_LIMIT_S:
            c, m = self._at(t)
            seconds = duration(c, m)
            if seconds <= 0:
                return t
            nxt = self._next(t)
            if math.isfinite(seconds):
                stalled_since = None
                if t + left * seconds <= nxt:
                    return t + left * seconds
                left -= (nxt - t) / seconds
            elif stalled_since is None:
                stalled_since = t
            elif t - stalled_since > STALLED_AFTER_S:
                return math.inf       # no progress for an hour: as the rate profiles
            if not math.isfinite(nxt):
                return math.inf
            t = nxt
        return math.inf

    def parts_end_s(self, parts, start_s: float) -> float:
        """When a computation of ``parts`` (``((BlockCost, count), ...)``) started at
        ``start_s`` is done (s)."""
        spec = self.spec

        def duration(c: float, m: float) -> float:
            return sum(count * spec.compute_time_s(cost.flops, cost.bytes_read, c, m)
                       for cost, count in parts)
        return self._end_s(duration, start_s)

    def busy_end_s(self, busy_s: float, start_s: float) -> float:
        """When ``busy_s`` seconds of processor time (at full availability) started at
        ``start_s`` are done (s)."""
        if not busy_s:
            return start_s
        return self._end_s(lambda c, m: busy_s / c if c > 0 else math.inf, start_s)


def _check_supported(config: SimConfig) -> None:
    """The horizon optimum covers one sequence with blocking migrations, no failures."""
    if config.requests is not None:
        raise ConfigError("the horizon optimum covers one sequence, not served requests; "
                          "remove 'requests'", field="requests")
    if config.migration_mode != "blocking":
        raise ConfigError(f"the horizon optimum evaluates blocking migrations; got "
                          f"{config.migration_mode!r}", field="migration.mode",
                          value=config.migration_mode)
    if config.failures:
        raise ConfigError("the horizon optimum does not model device failures; remove the "
                          "devices' 'failures'", field="devices")
    if config.transport.adds_round_trips or config.transport.rto_min_s is not None:
        raise ConfigError("the horizon optimum assumes warm connections; turn "
                          "network.transport off", field="network.transport")
