"""The simulation of one run: a model generating tokens over a cluster, one partitioner.

:class:`Simulation` wires the pieces on one SimPy environment: a FIFO compute queue per
device, the max-min fair flow network (capacities replayed from their series), and the
token loop. Every ``decision_interval`` tokens the controller observes the instantaneous
state and asks the partitioner for a placement; every block whose device changed is
migrated as flows on the same network:

- ``blocking``: generation pauses until the migrations have arrived (the paper's
  accounting); the pause is the token's ``migration_wait_s``;
- ``live``: the old copies keep serving while the bulk (weights and the K/V cache as of
  the decision) moves; at the first token boundary after it has arrived, the K/V rows
  written meanwhile are sent (generation waits for these few rows only) and the blocks
  switch over. No new decision is taken while a live migration is in flight.

Devices may fail (``failures``: down intervals). A device that fails loses its blocks'
K/V caches (and weights). At the next token boundary the controller re-decides at once
with the device marked down; the lost blocks are rebuilt on their new devices, charged as
the token's ``recovery_s``: ``recompute`` (default) sends their weights from the
controller and re-runs the prompt and the tokens generated so far through the model
(a prefill pass over the sequence), ``resend`` sends weights and caches from replicas
the controller keeps. A token whose pass was running when a device it used failed is
computed again (its wasted time is ``lost_s``), so no token is lost or counted twice.

What runs, pass after pass, comes from a :class:`~testbed.sim.generation.Generation`: one
sequence of ``generate_tokens`` tokens, or the requests of ``requests`` served with
continuous batching (:mod:`testbed.sim.batching`), where a "token" of the decision,
migration and memory tables is a pass (an iteration of the batch). The run ends when the
workload is done; :meth:`Simulation.run` returns the :class:`~testbed.sim.records.Records`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import simpy

from testbed.cluster.topology import LinkKey, Topology
from testbed.dataflows import Dataflow, make_dataflow
from testbed.model.blocks import ATTN, Block
from testbed.model.cost import CostModel
from testbed.model.spec import ModelSpec
from testbed.partition.base import Infeasible, Partitioner
from testbed.plan.graph import TaskGraph
from testbed.plan.messages import NO_MESSAGE_COSTS, MessageCosts
from testbed.plan.migration import migration_bytes
from testbed.plan.network_view import NetworkView
from testbed.plan.observation import DeviceState, Observation
from testbed.plan.placement import Placement, PlacementError
from testbed.plan.work import DECODE, StepWork, step_work
from testbed.sim.compute import STALLED_AFTER_S, ComputeQueue
from testbed.sim.transport import WARM, TransportSpec
from testbed.sim.network import CapacityReplay, FlowRecord, Network, Resource
from testbed.sim.executor import GraphRunner
from testbed.sim.fast_pass import fast_pass
from testbed.requests.spec import RequestSpec
from testbed.sim.batching import BatchingSpec, ContinuousBatching
from testbed.sim.generation import Generation, PassTiming, SingleSequence
from testbed.sim.records import (DecisionEvent, DeviceUsage, MemorySample, MigrationRecord,
                                 OomEvent, Records)
from testbed.traces.series import Series

MIGRATION_MODES = ("blocking", "live")
FAST_RETRY = 16   # passes of a placement run event by event after a sweep was refused
CACHE_RECOVERY = ("recompute", "resend")
STALL_CHECK_S = 60.0      # how often the watchdog looks for progress (simulated s)


@dataclass
class SimConfig:
    """Everything one run needs (SI units; series values in bit/s or fractions).

    A scenario file sets each field through the key declared with ``sim=`` for it in
    :mod:`testbed.experiments.scenario_schema`; a new field needs such a key (or a place
    in the scenario's assembly), which ``tests/test_config_schema.py`` checks."""

    model: ModelSpec
    cost: CostModel
    topology: Topology
    prompt_tokens: int
    generate_tokens: int
    decision_interval: int = 1
    migration_mode: str = "blocking"
    weights_preloaded: bool = False
    controller_hosts_blocks: bool = False
    avail_compute: dict[str, Series] = field(default_factory=dict)
    avail_mem: dict[str, Series] = field(default_factory=dict)
    memory_taken: dict[str, Series] = field(default_factory=dict)  # fraction used by others
    failures: dict[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)
    cache_recovery: str = "recompute"   # or "resend" (the controller keeps cache replicas)
    goodput_factor: float | None = None  # payload share of every link's rate (transport
                                         # headers); None: each link's own (technology)
    record_jobs: bool = False
    per_block: bool = False   # reference mode: every block its own job and output flow
    dataflow: Dataflow | str | dict | None = None   # how a placement runs (head_level)
    messages: MessageCosts = NO_MESSAGE_COSTS       # per-message software overheads
    fast_path: bool = True    # sweep passes nothing can contend in (testbed.sim.fast_pass)
    transport: TransportSpec = WARM   # TCP round trips (testbed.sim.transport); off: warm
    packets: bool = False     # per-packet effects in the network (testbed.sim.network)
    requests: tuple[RequestSpec, ...] | None = None   # served requests (None: one sequence
                                                      # of prompt_tokens + generate_tokens)
    batching: BatchingSpec = BatchingSpec()           # how requests are batched

    def __post_init__(self) -> None:
        if self.migration_mode not in MIGRATION_MODES:
            raise ValueError(f"migration mode {self.migration_mode!r}; expected one of "
                             f"{MIGRATION_MODES}")
        if self.prompt_tokens < 1 or self.generate_tokens < 1 or self.decision_interval < 1:
            raise ValueError("prompt_tokens, generate_tokens and decision_interval must be >= 1")
        if self.cache_recovery not in CACHE_RECOVERY:
            raise ValueError(f"cache recovery {self.cache_recovery!r}; expected one of "
                             f"{CACHE_RECOVERY}")
        if self.topology.controller in self.failures:
            raise ValueError("the controller cannot fail: it holds the request and the LM head")


@dataclass
class _LiveMigration:
    moves: list[tuple[Block, str, str]]
    target: Placement
    arrivals: list[simpy.Event]
    snapshot_seq_len: int
    token: int
    start_s: float
    sizes: dict[str, float]


def build_network(env: simpy.Environment,
                  config: SimConfig) -> tuple[Network, dict[LinkKey, Series]]:
    """The flow network of ``config``'s topology with every link at its capacity at 0 s,
    and the links whose capacity changes over time (link -> series; the caller replays
    them)."""
    topo = config.topology
    capacity: dict[Resource, float] = {
        key: (link.series.value_at(0.0) if link.series is not None else link.capacity_bps)
        for key, link in topo.links.items()}
    latency: dict[Resource, float] = {key: link.latency_s for key, link in topo.links.items()}
    nic_tx = {n: d.nic_tx_bps for n, d in topo.devices.items() if d.nic_tx_bps}
    nic_rx = {n: d.nic_rx_bps for n, d in topo.devices.items() if d.nic_rx_bps}
    network = Network(env, topo.path, capacity, latency, nic_tx, nic_rx,
                      config.goodput_factor, media=topo.media.values(),
                      transport=config.transport, packets=config.packets,
                      link_goodput={key: link.goodput_factor for key, link in topo.links.items()})
    replayed = {key: link.series for key, link in topo.links.items()
                if link.series is not None and not link.series.is_constant}
    return network, replayed


class Simulation:
    """One run of one partitioner over one scenario."""

    def __init__(self, config: SimConfig, partitioner: Partitioner,
                 records: Records | None = None):
        self.cfg = config
        self.partitioner = partitioner
        self.env = simpy.Environment()
        self.records = records if records is not None else Records()
        topo = config.topology
        self.controller = topo.controller
        jobs = self.records.jobs if config.record_jobs else None
        self.queues = {name: ComputeQueue(self.env, spec, config.avail_compute.get(name),
                                          config.avail_mem.get(name), jobs)
                       for name, spec in topo.devices.items()}
        self.network, self._replayed = build_network(self.env, config)
        self.network.records = self.records.flows
        self._nic_tx = {n: d.nic_tx_bps for n, d in topo.devices.items() if d.nic_tx_bps}
        self._nic_rx = {n: d.nic_rx_bps for n, d in topo.devices.items() if d.nic_rx_bps}
        for key, series in self._replayed.items():
            CapacityReplay(self.env, self.network, key, series)
        self.placement: Placement | None = None
        self._live: _LiveMigration | None = None
        self._incoming_bytes: dict[str, float] = {}
        self._reserved = {name: 0.0 for name in topo.devices}
        spec = config.dataflow
        if spec is None and config.per_block:
            spec = {"name": "head_level", "per_block": True}
        self.dataflow = make_dataflow(spec)
        self._graph_key: tuple | None = None
        self._graph: TaskGraph | None = None
        self._runners: dict[int, GraphRunner] = {}   # per template: its event-driven runner
        self._fast_wait: dict[int, int] = {}         # per template: passes before a new sweep
        self.swept_passes = 0                        # passes computed by the fast sweep
        self._token = 0                              # the pass being produced
        self._idle = False                           # waiting for the next arrival
        #: called after every pass with the number of tokens generated so far
        self.on_pass: Callable[[int], None] | None = None
        self._first_work = step_work(config.cost, config.model, DECODE, 1, 0)
        self.generation: Generation = SingleSequence(
            config.cost, config.model, config.prompt_tokens, config.generate_tokens) \
            if config.requests is None else ContinuousBatching(
                config.cost, config.model, config.requests, config.batching, self.fits,
                self.records)

    # ------------------------------------------------------------------ helpers
    def observe(self, token: int, work: StepWork) -> Observation:
        """The instantaneous state, as a partitioner sees it."""
        now = self.env.now
        devices = []
        for name, queue in self.queues.items():
            c, m = queue.availability(now)
            devices.append(DeviceState(queue.spec, not self._is_down(name, now), c, m,
                                       self._reserved[name] + self._taken_bytes(name, now)))
        capacity = {key: self.network.capacity_bps(key) for key in self.cfg.topology.links}
        factor = self.cfg.goodput_factor if self.cfg.goodput_factor is not None else 1.0
        view = NetworkView(self.cfg.topology, capacity,
                           {n: bps * factor for n, bps in self._nic_tx.items()},
                           {n: bps * factor for n, bps in self._nic_rx.items()})
        return Observation(now, token, work, self.cfg.model, self.cfg.cost, tuple(devices),
                           view, self.controller, self.cfg.controller_hosts_blocks,
                           self.placement, self.cfg.decision_interval,
                           self.cfg.weights_preloaded, self.dataflow, self.cfg.messages,
                           self.generation.load())

    def fits(self, work: StepWork, anywhere: bool = False) -> bool:
        """Whether the memory ``work`` holds fits every device now, under the current
        placement (before the first, or ``anywhere``: in the total memory of the devices
        that may host blocks)."""
        now = self.env.now
        if self.placement is None or anywhere:
            hosts = self.cfg.topology.hosts(self.cfg.controller_hosts_blocks)
            free = sum(self.queues[n].spec.memory_bytes - self._reserved[n] -
                       self._taken_bytes(n, now) for n in hosts)
            return self._total_block_bytes(work) <= free
        held = self.dataflow.template(self.placement, self.controller).bind(work).memory_bytes
        return all(held.get(name, 0.0) + self._reserved[name] +
                   self._incoming_bytes.get(name, 0.0) + self._taken_bytes(name, now)
                   <= queue.spec.memory_bytes for name, queue in self.queues.items())

    def _total_block_bytes(self, work: StepWork) -> float:
        """Memory every block of the model holds for ``work`` (bytes)."""
        model = self.cfg.model
        return model.n_layers * (model.attn_blocks_per_layer * work.attn.memory_bytes +
                                 model.proj_shards * work.proj.memory_bytes +
                                 model.ffn_shards * work.ffn.memory_bytes)

    def _is_down(self, name: str, t_s: float) -> bool:
        return any(down <= t_s < up for down, up in self.cfg.failures.get(name, ()))

    def _taken_bytes(self, name: str, t_s: float) -> float:
        """Memory used by other work on the device at ``t_s`` (bytes)."""
        series = self.cfg.memory_taken.get(name)
        return 0.0 if series is None else series.value_at(t_s) * \
            self.queues[name].spec.memory_bytes

    def _failed_since(self, t0_s: float) -> set[str]:
        """Devices hosting blocks that failed in ``(t0_s, now]`` or are down now: their
        blocks' caches are gone."""
        if self.placement is None or not self.cfg.failures:
            return set()
        now = self.env.now
        hosts = set(self.placement.devices)
        return {name for name in hosts if self._is_down(name, now) or any(
            t0_s < down <= now for down, _ in self.cfg.failures.get(name, ()))}

    def _migration_bytes(self, block: Block, before: StepWork | None) -> float:
        """Bytes sent to move ``block`` (:func:`~testbed.plan.migration.migration_bytes`).
        Before the first pass is through (a re-decision during prefill) a block holds its
        weights and no cache yet: its weights move (nothing if pre-loaded)."""
        if before is None:
            if self.cfg.weights_preloaded:
                return 0.0
            return self._first_work.cost(self.dataflow.moving_part(block.kind)).weight_bytes
        return migration_bytes(self.dataflow, block.kind, before, self.cfg.weights_preloaded)

    def _send_moves(self, moves: Iterable[tuple[Block, str, str]], sizes: dict[str, float],
                    kind: str, tag: str) -> dict[tuple[str, str], simpy.Event]:
        """One flow per (old, new) pair carrying all its blocks; returns pair -> event."""
        per_pair: dict[tuple[str, str], float] = {}
        for block, old, new in moves:
            per_pair[(old, new)] = per_pair.get((old, new), 0.0) + sizes[block.id]
        return {pair: self.network.transfer(pair[0], pair[1], size, kind, tag)
                for pair, size in per_pair.items()}

    def graph(self, placement: Placement, work: StepWork) -> TaskGraph:
        """The task graph of one pass of ``work`` under ``placement`` (the template is
        built once per placement; the numbers once per step)."""
        key = (placement, work)
        graph = self._graph
        if key != self._graph_key or graph is None:
            template = self.dataflow.template(placement, self.controller)
            graph = template.bind(work)
            self._graph_key, self._graph = key, graph
        return graph

    def _pass(self, placement: Placement, work: StepWork, token: int) -> simpy.Event:
        """Start one pass event by event; returns its ``done`` event."""
        graph = self.graph(placement, work)
        template = graph.template
        runner = self._runners.get(id(template))
        if runner is None or runner.template is not template or \
                (runner.done is not None and not runner.done.triggered):
            if len(self._runners) >= 8:
                self._runners.clear()
            runner = self._runners[id(template)] = GraphRunner(
                self.env, self.network, self.queues, template, self.cfg.messages)
        return runner.run(graph, f"t{token}")

    def _run_pass(self, placement: Placement, work: StepWork,
                  token: int) -> Generator[simpy.Event, Any, tuple[float, float]]:
        """One pass; yields until it is done and returns ``(compute_s, comm_s)`` of its
        critical path. Swept in one go when nothing can contend (:mod:`.fast_pass`),
        otherwise run event by event. After a pass of a placement could not be swept, the
        next :data:`FAST_RETRY` passes of it go straight to the events."""
        network = self.network
        if self.cfg.fast_path and network.is_quiet():
            graph = self.graph(placement, work)
            key = id(graph.template)
            wait = self._fast_wait.get(key, 0)
            if wait:
                self._fast_wait[key] = wait - 1
            else:
                now = self.env.now
                swept = fast_pass(graph, f"t{token}", now, network, self.queues,
                                  self.cfg.messages, self._replayed, self.cfg.record_jobs)
                if swept is not None:
                    self.swept_passes += 1
                    swept.apply(network, self.queues,
                                self.records.jobs if self.cfg.record_jobs else None)
                    yield self.env.timeout(swept.end_s - now)
                    return swept.compute_s, swept.comm_s
                if len(self._fast_wait) >= 64:
                    self._fast_wait.clear()
                self._fast_wait[key] = FAST_RETRY
        return (yield self._pass(placement, work, token))

    def _record_memory(self, token: int, work: StepWork) -> None:
        now = self.env.now
        held_by = self.graph(self.placement, work).memory_bytes if self.placement is not None \
            else {}
        for name, queue in self.queues.items():
            held = held_by.get(name, 0)
            used = held + self._reserved[name] + self._incoming_bytes.get(name, 0.0) + \
                self._taken_bytes(name, now)
            capacity = queue.spec.memory_bytes
            self.records.memory.append(MemorySample(token, now, name, used, capacity,
                                                    name == self.controller))
            if used > capacity:
                self.records.oom.append(OomEvent(token, now, name, used, capacity))

    # ------------------------------------------------------------------ decisions
    def _decide(self, token: int, work: StepWork) -> tuple[Placement | None, float, str]:
        obs = self.observe(token, self.generation.decision_work(work))
        started = time.perf_counter()
        try:
            placement = self.partitioner.decide(obs)
        except Infeasible as why:
            wall = time.perf_counter() - started
            self.records.decisions.append(DecisionEvent(token, self.env.now, "infeasible",
                                                        str(why)))
            return None, wall, str(why)
        wall = time.perf_counter() - started
        if not isinstance(placement, Placement) or placement.model != self.cfg.model:
            raise PlacementError(f"partitioner {self.partitioner.name!r} returned "
                                 f"{placement!r}; expected a Placement of {self.cfg.model.name}")
        placement.check_devices(obs.candidates)
        outcome = "kept" if placement == self.placement else "placed"
        self.records.decisions.append(DecisionEvent(token, self.env.now, outcome,
                                                    self.partitioner.last_note))
        return placement, wall, ""

    def _migrate_blocking(self, token: int, target: Placement, before: StepWork | None,
                          lost: frozenset[str] = frozenset()
                          ) -> Generator[simpy.Event, Any, tuple[int, float]]:
        """Move every changed block (and rebuild the blocks of ``lost`` devices); returns
        (blocks moved or rebuilt, seconds spent rebuilding)."""
        current = self.placement
        assert current is not None   # a migration starts from a placement
        healthy: list[tuple[Block, str, str]] = []
        rebuilt: list[tuple[Block, str, str]] = []
        for block, old, new in zip(current, current.devices, target.devices):
            if old in lost:
                rebuilt.append((block, old, new))
            elif old != new:
                healthy.append((block, old, new))
        sizes = {b.id: self._migration_bytes(b, before) for b, _, _ in healthy}
        start = self.env.now
        events = self._send_moves(healthy, sizes, "migration", f"t{token}")
        recovery = self._rebuild_sizes(rebuilt, before)
        recovering = self._send_moves([(b, self.controller, new) for b, _, new in rebuilt],
                                      recovery, "recovery", f"t{token}")
        pending = list(events.values()) + list(recovering.values())
        if pending:
            yield self.env.all_of(pending)
        for block, old, new in healthy:
            arrived = cast(FlowRecord, events[(old, new)].value)   # a transfer's value
            self.records.migrations.append(MigrationRecord(
                token, block.id, old, new, sizes[block.id], "blocking", start,
                arrived.end_s))
        self.placement = target
        rebuild_start = self.env.now
        if rebuilt and before is not None and self.cfg.cache_recovery == "recompute":
            # re-run the prompt and the tokens so far to refill the K/V caches
            yield self._pass(self.placement, self.generation.refill_work(before), token)
        for block, old, new in rebuilt:
            self.records.migrations.append(MigrationRecord(
                token, block.id, old, new, recovery[block.id],
                f"recovery-{self.cfg.cache_recovery}", start, self.env.now))
        recovery_s = (self.env.now - rebuild_start) + \
            (rebuild_start - start if rebuilt else 0.0)
        return len(healthy) + len(rebuilt), recovery_s if rebuilt else 0.0

    def _rebuild_sizes(self, rebuilt: list[tuple[Block, str, str]],
                       before: StepWork | None) -> dict[str, float]:
        """Bytes the controller sends to rebuild each lost block: its weights (unless
        pre-loaded everywhere) and, with ``resend``, its cache and activations."""
        sizes = {}
        for block, _, _ in rebuilt:
            cost = (before or self._first_work).cost(block.kind)
            size = 0.0 if self.cfg.weights_preloaded else cost.weight_bytes
            if self.cfg.cache_recovery == "resend" and before is not None:
                size += cost.kv_bytes + cost.activation_bytes
            sizes[block.id] = size
        return sizes

    def _start_live(self, token: int, target: Placement, before: StepWork) -> int:
        moves = target.moved(self.placement)
        sizes = {b.id: self._migration_bytes(b, before) for b, _, _ in moves}
        events = self._send_moves(moves, sizes, "migration", f"t{token}")
        for block, _, new in moves:
            self._incoming_bytes[new] = self._incoming_bytes.get(new, 0.0) + sizes[block.id]
        self._live = _LiveMigration(moves, target, list(events.values()), before.seq_len,
                                    token, self.env.now, sizes)
        return len(moves)

    def _finish_live(self, token: int,
                     before: StepWork) -> Generator[simpy.Event, Any, None]:
        """Send the K/V rows written since the snapshot, then switch over."""
        live = self._live
        assert live is not None   # called while a live migration is in flight
        rows = before.seq_len - live.snapshot_seq_len
        delta = {}
        for block, _, _ in live.moves:
            if block.kind == ATTN and rows > 0:
                per_row = before.attn.kv_bytes / before.seq_len
                delta[block.id] = rows * per_row
            else:
                delta[block.id] = 0.0
        events = self._send_moves([m for m in live.moves if delta[m[0].id] > 0], delta,
                                  "migration-delta", f"t{token}")
        if events:
            yield self.env.all_of(list(events.values()))
        for block, old, new in live.moves:
            self.records.migrations.append(MigrationRecord(
                live.token, block.id, old, new, live.sizes[block.id] + delta[block.id], "live",
                live.start_s, self.env.now))
        self.placement = live.target
        self._incoming_bytes.clear()
        self._live = None

    # ------------------------------------------------------------------ token loop
    def _generate(self) -> Generator[simpy.Event, Any, None]:
        cfg, env, generation = self.cfg, self.env, self.generation
        before: StepWork | None = None
        self._reserved[self.controller] = self._first_work.lm_head.weight_bytes
        checked_s = -1.0   # failures up to this time have been handled
        iteration = 0
        while True:
            work = generation.next_pass(env.now)
            if work is None:
                break
            if not isinstance(work, StepWork):   # idle until the next arrival
                self._idle = True
                yield env.timeout(max(0.0, work - env.now))
                self._idle = False
                continue
            iteration += 1
            token = self._token = iteration
            start = env.now
            decided, wall, migrations = False, 0.0, 0
            migration_wait = recovery = lost_s = 0.0
            due = (iteration - 1) % cfg.decision_interval == 0 or generation.redecide
            generation.redecide = False
            composed_for = self.placement
            while True:
                lost = frozenset(self._failed_since(checked_s))
                checked_s = env.now
                if lost and self._live is not None:
                    self._abandon_live(token, lost)
                if (lost or due) and self._live is None:
                    usable = yield from self._until_usable(token)
                    if not usable:
                        generation.end(env.now)
                        return
                if lost or due:
                    due = False
                    if self._live is not None:
                        self.records.decisions.append(DecisionEvent(
                            token, env.now, "deferred", "live migration in flight"))
                    else:
                        decided = True
                        phase_start = env.now
                        target, spent, why = self._decide(token, work)
                        wall += spent
                        if target is None and (self.placement is None or lost):
                            self.records.outcome = f"infeasible at token {token}: {why}"
                            generation.end(env.now)
                            return
                        if target is not None and self.placement is None:
                            self.placement = target  # initial deployment: weights loaded locally
                        elif target is not None and (target != self.placement or lost):
                            if cfg.migration_mode == "blocking" or lost:
                                moved, rebuilt_s = yield from self._migrate_blocking(
                                    token, target, before, lost)
                                migrations += moved
                                recovery += rebuilt_s
                                migration_wait += env.now - phase_start - rebuilt_s
                            else:
                                # a live migration follows a first pass (at the first
                                # decision there is no placement to migrate from)
                                assert before is not None
                                migrations += self._start_live(token, target, before)
                if self._live is not None and all(e.processed for e in self._live.arrivals):
                    assert before is not None   # as when it started
                    phase_start = env.now
                    yield from self._finish_live(token, before)
                    migration_wait += env.now - phase_start
                if self.placement is not composed_for:   # re-cut the batch for it
                    work, composed_for = generation.revise(work), self.placement
                attempt_start = env.now
                assert self.placement is not None   # decided above, or infeasible returned
                compute_s, comm_s = yield from self._run_pass(self.placement, work, token)
                if not self._failed_since(checked_s):
                    break
                lost_s += env.now - attempt_start  # a device it used failed: compute it again
            timing = PassTiming(compute_s, comm_s, migration_wait, decided, migrations, wall,
                                recovery, lost_s)
            self.records.tokens.extend(generation.finish(iteration, work, start, env.now,
                                                         timing))
            if self.on_pass is not None:
                self.on_pass(len(self.records.tokens))
            self._record_memory(token, work)
            before = work
        generation.end(env.now)

    def _abandon_live(self, token: int, lost: frozenset[str]) -> None:
        """A failure during a live migration: the old placement stays the reference."""
        self.records.decisions.append(DecisionEvent(
            token, self.env.now, "abandoned",
            f"live migration abandoned: {', '.join(sorted(lost))} failed"))
        self._live = None
        self._incoming_bytes.clear()

    # ------------------------------------------------------------------ stalls
    def _until_usable(self, token: int) -> Generator[simpy.Event, Any, bool]:
        """Wait until some device that may host blocks is up with compute free of
        background load; False (the run has stalled) if none ever will be."""
        env = self.env
        while True:
            now = env.now
            hosts = self.cfg.topology.hosts(self.cfg.controller_hosts_blocks)
            if any(not self._is_down(n, now) and all(a > 0 for a in
                                                      self.queues[n].availability(now))
                   for n in hosts):
                return True
            ups = [up for n in hosts for down, up in self.cfg.failures.get(n, ())
                   if down <= now < up]
            usable = [self.queues[n].usable_from_s(now) for n in hosts
                      if not self._is_down(n, now)]
            nxt = min(ups + [u for u in usable if u > now], default=float("inf"))
            if not nxt - now <= STALLED_AFTER_S:
                self.records.outcome = (
                    f"stalled at token {token}: every device that may host blocks "
                    f"({', '.join(hosts)}) is down or at 100 % background load for good "
                    f"(from t = {now:.6g} s)")
                return False
            yield env.timeout(nxt - now)

    def _progress(self) -> tuple:
        """Changes whenever the run moves on (passes, transfers, migrations)."""
        return (len(self.records.tokens), len(self.records.flows),
                len(self.records.migrations), len(self.records.decisions))

    def _moving(self) -> bool:
        """Whether something is progressing now: bytes flowing, a device computing, or
        the served workload waiting for its next arrival."""
        now = self.env.now
        return self._idle or any(f.rate_bps > 0 for f in self.network.active_flows) or \
            any(now < q.free_at_s < float("inf") for q in self.queues.values())

    def _watchdog(self, stop: simpy.Event) -> Generator[simpy.Event, Any, None]:
        """End the run as stalled when nothing has moved for :data:`STALLED_AFTER_S`."""
        mark, since = self._progress(), self.env.now
        while True:
            yield self.env.timeout(STALL_CHECK_S)
            now = self.env.now
            if self._progress() != mark or self._moving():
                mark, since = self._progress(), now
            elif now - since >= STALLED_AFTER_S:
                self._stalled(since)
                stop.succeed()
                return

    def _stalled(self, since_s: float) -> None:
        """Record that nothing can progress any more, saying what blocks it."""
        capacity = self.network.capacity_bps
        dead = []
        for flow in self.network.active_flows:
            if flow.rate_bps == 0:
                dead += [r for r in flow.resources if capacity(r) == 0]
        names = [f"link {r[0]} -> {r[1]}" if isinstance(r, tuple) and len(r) == 2 and
                 r[0] not in ("nic-tx", "nic-rx") else f"{r[0]} {r[1]}"
                 if isinstance(r, tuple) else f"medium {r}" for r in dict.fromkeys(dead)]
        why = f"{', '.join(names)} at 0 bit/s" if names else ""
        busy = [n for n, q in self.queues.items() if q.stalled_since_s is not None]
        if busy:
            why += ("; " if why else "") + f"{', '.join(busy)} at 100 % background load"
        r = self.records
        moments = [x[-1].end_s for x in (r.tokens, r.flows) if x]
        if r.decisions:
            moments.append(r.decisions[-1].time_s)
        last = max(moments, default=since_s)
        self.records.outcome = (f"stalled at token {self._token}: "
                                f"{why or 'nothing can progress'} for good (nothing has "
                                f"moved since t = {last:.6g} s)")
        self.generation.end(self.env.now)

    def run(self) -> Records:
        """Generate every token; return the records (``outcome`` says how it ended:
        :data:`~testbed.sim.records.COMPLETED`, or why it stopped early)."""
        done = self.env.process(self._generate())
        stop = self.env.event()
        self.env.process(self._watchdog(stop))
        self.env.run(until=self.env.any_of([done, stop]))   # the watchdog always has an
                                                           # event pending
        if self.records.outcome == "ok" and self.records.oom:
            self.records.outcome = "oom"
        now = self.env.now
        self.records.devices.extend(DeviceUsage(name, queue.busy_s, now)
                                    for name, queue in self.queues.items())
        return self.records
