"""The per-token plan of a simulated run: the engine's task graph, serialised for workers.

:func:`compile_plan` does not know any forward pass. For each token it takes the placement
in force (from the partitioner's decisions), the step's work and the dataflow the run used,
builds the same :class:`~testbed.plan.graph.TaskGraph` the engine executed
(``dataflow.template(placement, controller).bind(work)``) and emits one worker task per
graph task:

- a **compute** task becomes a ``compute`` task on its device that lasts the simulated
  service time of the matching :class:`~testbed.sim.compute.JobRecord` (label
  ``t<token>.<kind>``, the same block count);
- a **transfer** becomes a ``send`` task on its source carrying the graph's
  ``size_bytes`` (rounded to whole bytes; a transfer of 0 bytes is still a message: the
  worker sends its 12-byte header alone, as the simulator's zero-byte flow still pays the
  path latency) and a :class:`TransferInfo` (``stage`` = the graph's transfer kind, e.g.
  ``input``, ``attn_out``, ``allreduce``, ``sync_qkv``; ``layer`` = the graph's layer).

**Per-message costs are replayed.** When the run had per-message software overheads, the
engine queued each transfer's send overhead on the source's compute queue (job
``t<token>.send``) before the flow and its receive overhead on the destination's
(``t<token>.recv``) after it; those jobs become ``compute`` tasks of the same duration,
before the ``send`` and after the arrival, on the same FIFO queue of the worker as the
blocks' computations. The per-link part of the message costs (a fixed delay per message and
link crossed) has no counterpart on a real link and is refused (:class:`PlanError`) when
``messages`` is given.

Matching is checked against the simulated timeline: the plan is replayed token by token
with the recorded times (a task is ready when its dependencies ended), and each graph task
takes, among the not yet claimed records of its device and label (a transfer: of its
token, source and destination), the first one submitted (started) at that ready time with
the same block count (size). A record that is missing, or left over at the end, means the
run did not execute this graph (another dataflow, a failure, live migration) and raises
:class:`PlanError`. Each :class:`TransferInfo` keeps the start and end of its flow, by which
:mod:`.compare` orders transfers between the same pair of devices.

Around the graph, per token: the controller marks the start; in ``blocking`` migration
mode the blocks that moved are sent first (the controller tells each old device to send,
each new device tells the controller it has them: out-of-band signals, instantaneous as in
the simulator); tasks of the graph without dependencies wait for that start (told by a
signal when they run on another device); the graph's last task (the LM head on the
controller) ends the token.

A task runs on one device when all its dependencies (events on that device) have
happened: ``k<task>`` when a local task finished, ``x<transfer>`` when a transfer's last
byte arrived, ``s<signal>`` when a signal arrived. A graph dependency on a task of another
device that no message carries (the engine treats dependencies as instantaneous knowledge)
becomes a signal, unless another dependency of the task already implies it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from testbed.dataflows import DEFAULT_DATAFLOW, Dataflow, make_dataflow
from testbed.model.cost import CostModel
from testbed.model.spec import ModelSpec
from testbed.plan.graph import COMPUTE, GraphTemplate, TaskGraph
from testbed.plan.messages import MessageCosts
from testbed.plan.placement import Placement, PlacementError
from testbed.plan.work import DECODE, PREFILL, StepWork, step_work

if TYPE_CHECKING:
    from testbed.sim.compute import JobRecord
    from testbed.sim.network import FlowRecord
    from testbed.sim.record_log import ChunkedLog

MIGRATION_LAYER = -1


class PlanError(ValueError):
    """The simulated run cannot be replayed (a feature the emulation does not support, or
    records that do not match the task graph)."""


@dataclass
class Task:
    id: int
    device: str
    op: str                       # "mark" | "compute" | "send" | "signal"
    deps: list[str]
    duration_s: float = 0.0       # compute: simulated service time
    xfer: int = -1                # send: transfer id
    dst: str = ""                 # send / signal: the other device
    size_bytes: int = 0           # send
    channel: str = ""             # send: "inference" or "migration"
    signal: int = -1              # signal id
    not_before_s: float = 0.0     # mark: earliest start after t0


@dataclass(frozen=True)
class TransferInfo:
    xfer: int
    token: int
    layer: int                    # the graph's layer; -1 for migrations
    stage: str                    # the graph's transfer kind ("input", "allreduce", ...)
    src: str
    dst: str
    kind: str                     # "inference" or "migration" (as the simulator's flows)
    size_bytes: int
    sim_start_s: float = 0.0      # the simulated flow's start and end (s)
    sim_end_s: float = 0.0
    flow_id: int = -1             # the simulated flow's id in the run compiled


@dataclass(frozen=True)
class ComputeInfo:
    task: int
    token: int
    layer: int
    kind: str                     # the graph's kind ("attn", "proj", ...), "send", "recv"
    device: str
    n_blocks: int
    sim_start_s: float
    sim_end_s: float

    @property
    def sim_s(self) -> float:
        return self.sim_end_s - self.sim_start_s


@dataclass(frozen=True)
class TokenInfo:
    token: int
    start_task: int
    end_task: int


@dataclass
class TokenPlan:
    """All tasks of one run, with the identifiers to join them with the simulation."""

    controller: str
    devices: list[str]
    tasks: list[Task] = field(default_factory=list)
    transfers: list[TransferInfo] = field(default_factory=list)
    computes: list[ComputeInfo] = field(default_factory=list)
    tokens: list[TokenInfo] = field(default_factory=list)
    incoming: dict[str, list[int]] = field(default_factory=dict)       # device -> transfer ids
    signals_in: dict[str, list[int]] = field(default_factory=dict)     # device -> signal ids
    sim_duration_s: float = 0.0
    dataflow: str = DEFAULT_DATAFLOW   # the dataflow whose graphs the plan serialises

    def device_part(self, device: str) -> dict:
        """What one worker needs: its tasks, what it will receive, whom it sends to."""
        tasks = [asdict(t) for t in self.tasks if t.device == device]
        out = sorted({(t.dst, t.channel) for t in self.tasks
                      if t.device == device and t.op == "send"})
        peers_in = sorted({(t.device, t.channel) for t in self.tasks
                           if t.op == "send" and t.dst == device})
        return {"tasks": tasks, "xfers_in": self.incoming.get(device, []),
                "signals_in": self.signals_in.get(device, []),
                "connections": [list(pair) for pair in out], "peers_in": len(peers_in)}

    def transfer_bytes(self) -> int:
        return sum(t.size_bytes for t in self.transfers)


def step_of(cost: CostModel, model: ModelSpec, prompt_tokens: int, token: int) -> StepWork:
    """The forward pass that produces ``token`` (1-based), as the simulator chooses it."""
    if token == 1 and cost.prefill_cost(model, "attn", prompt_tokens) is not None:
        return step_work(cost, model, PREFILL, prompt_tokens, 0)
    return step_work(cost, model, DECODE, prompt_tokens + token - 1, token - 1)


def _near(a: float, b: float) -> bool:
    """Equal simulated instants (up to the rounding of ``now + (end - now)``)."""
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


class _Records:
    """The simulation's computations and inference flows, claimed one by one by the plan."""

    def __init__(self, jobs: list[JobRecord] | ChunkedLog[JobRecord],
                 flows: list[FlowRecord] | ChunkedLog[FlowRecord], dataflow: str):
        self.dataflow = dataflow
        self.jobs: dict[tuple[str, str], list] = defaultdict(list)
        for job in jobs:                                   # submission order
            self.jobs[(job.device, job.label)].append(job)
        self.flows: dict[tuple[str, str, str], list] = defaultdict(list)
        for flow in sorted(flows, key=lambda f: (f.start_s, f.flow_id)):
            if flow.kind == "inference":
                self.flows[(flow.tag, flow.src, flow.dst)].append(flow)

    def has_jobs(self, device: str, label: str) -> bool:
        return bool(self.jobs.get((device, label)))

    def take_job(self, device: str, label: str, n_blocks: int, at_s: float):
        """The first unclaimed computation ``label`` on ``device`` submitted at ``at_s``."""
        queue = self.jobs.get((device, label))
        if not queue:
            raise PlanError(f"the simulation recorded no computation {label!r} on {device!r} "
                            "for this step of the plan (run it with record_jobs=True, and "
                            f"with the dataflow {self.dataflow!r})")
        found = [k for k, job in enumerate(queue) if _near(job.submit_s, at_s)]
        for k in found:
            if queue[k].n_blocks == n_blocks:
                return queue.pop(k)
        if found:
            raise PlanError(f"computation {label!r} on {device!r}: the simulation ran "
                            f"{queue[found[0]].n_blocks} block(s) where the plan has "
                            f"{n_blocks}")
        raise PlanError(f"computation {label!r} on {device!r}: the task graph of "
                        f"{self.dataflow!r} submits it at {at_s:.9g} s, the simulation at "
                        f"{', '.join(f'{j.submit_s:.9g}' for j in queue[:3])} s; the run did "
                        "not execute this graph")

    def take_flow(self, tag: str, src: str, dst: str, size_bytes: float, at_s: float):
        """The first unclaimed inference flow ``src -> dst`` of ``tag`` of ``size_bytes``
        started at ``at_s``."""
        queue = self.flows.get((tag, src, dst), [])
        for k, flow in enumerate(queue):
            if _near(flow.start_s, at_s) and \
                    abs(flow.size_bytes - size_bytes) <= 0.5 + 1e-9 * size_bytes:
                return queue.pop(k)
        seen = ", ".join(f"{f.size_bytes:.0f} B at {f.start_s:.9g} s" for f in queue[:3])
        raise PlanError(f"token {tag[1:]}: the task graph of {self.dataflow!r} sends "
                        f"{size_bytes:.0f} B {src}->{dst} at {at_s:.9g} s; the simulation "
                        f"has {seen or 'no such flow'}; the run did not execute this graph")

    def left(self) -> tuple[int, int]:
        return (sum(len(q) for q in self.jobs.values()),
                sum(len(q) for q in self.flows.values()))


@dataclass(frozen=True)
class _Shape:
    """What the plan needs of a template beyond the template itself."""

    home: tuple[str, ...]               # where a task's end is known: device or destination
    deps: tuple[tuple[int, ...], ...]   # dependencies, minus remote ones others imply


def _shape(template: GraphTemplate) -> _Shape:
    home = tuple(template.device[i] if op == COMPUTE else template.dst[i]
                 for i, op in enumerate(template.op))
    deps = []
    for i, own in enumerate(template.deps):
        here = template.device[i]
        kept = tuple(d for d in own if home[d] == here or
                     not any(_reaches(template, d, other) for other in own if other != d))
        deps.append(kept)
    return _Shape(home, tuple(deps))


def _reaches(template: GraphTemplate, ancestor: int, task: int) -> bool:
    """True if ``task`` depends, directly or not, on ``ancestor`` (topological order:
    ancestors have smaller indices)."""
    stack, seen = [task], set()
    while stack:
        node = stack.pop()
        for d in template.deps[node]:
            if d == ancestor:
                return True
            if d > ancestor and d not in seen:
                seen.add(d)
                stack.append(d)
    return False


class _Builder:
    def __init__(self, plan: TokenPlan, records: _Records):
        self.plan = plan
        self.records = records
        self._signals = 0

    def task(self, device: str, op: str, deps: list[str], **params) -> Task:
        task = Task(len(self.plan.tasks), device, op, list(deps), **params)
        self.plan.tasks.append(task)
        return task

    def mark(self, device: str, deps: list[str], not_before_s: float = 0.0) -> Task:
        return self.task(device, "mark", deps, not_before_s=not_before_s)

    def transfer(self, src: str, dst: str, size_bytes: float, deps: list[str], token: int,
                 layer: int, stage: str, kind: str, flow) -> str:
        """Send ``size_bytes`` once ``deps`` (on ``src``) happened, as the simulated
        ``flow`` did; returns the event on ``dst`` that means it arrived."""
        if src == dst:
            raise PlanError(f"token {token}: a {stage} transfer from {src!r} to itself "
                            "(the task graph should not contain one)")
        xfer = len(self.plan.transfers)
        size = int(round(size_bytes))
        self.task(src, "send", deps, xfer=xfer, dst=dst, size_bytes=size, channel=kind)
        self.plan.transfers.append(TransferInfo(xfer, token, layer, stage, src, dst, kind,
                                                size, flow.start_s, flow.end_s,
                                                flow.flow_id))
        self.plan.incoming.setdefault(dst, []).append(xfer)
        return f"x{xfer}"

    def signal(self, src: str, dst: str, deps: list[str]) -> list[str]:
        if src == dst:
            return list(deps)
        sid = self._signals
        self._signals += 1
        self.task(src, "signal", deps, dst=dst, signal=sid)
        self.plan.signals_in.setdefault(dst, []).append(sid)
        return [f"s{sid}"]

    def compute(self, device: str, kind: str, n_blocks: int, deps: list[str], token: int,
                layer: int, at_s: float):
        """The simulated computation ``t<token>.<kind>`` submitted at ``at_s``, as a task;
        returns (its event, its simulated end)."""
        job = self.records.take_job(device, f"t{token}.{kind}", n_blocks, at_s)
        task = self.task(device, "compute", deps, duration_s=job.end_s - job.start_s)
        self.plan.computes.append(ComputeInfo(task.id, token, layer, kind, device, n_blocks,
                                              job.start_s, job.end_s))
        return f"k{task.id}", job.end_s

    def graph(self, graph: TaskGraph, shape: _Shape, ready: list[str], start_s: float,
              token: int) -> tuple[Task, float]:
        """One pass: the tasks of ``graph`` from ``ready`` (events on the controller,
        at simulated time ``start_s``); returns the task that ends it and its simulated
        end."""
        t = graph.template
        controller = self.plan.controller
        tag = f"t{token}"
        event: list[str] = [""] * len(t)          # on shape.home[i]: task i is done
        end_s = [0.0] * len(t)                    # simulated end of task i
        relayed: dict[tuple[object, str], list[str]] = {}

        def on(device: str, deps: tuple[int, ...]) -> list[str]:
            """The events on ``device`` that stand for ``deps`` (signals where remote)."""
            if not deps:
                key: tuple[object, str] = ("start", device)
                if key not in relayed:
                    relayed[key] = self.signal(controller, device, ready)
                return relayed[key]
            out = []
            for d in deps:
                if shape.home[d] == device:
                    out.append(event[d])
                else:
                    key = (d, device)
                    if key not in relayed:
                        relayed[key] = self.signal(shape.home[d], device, [event[d]])
                    out += relayed[key]
            return out

        for i, op in enumerate(t.op):
            at_s = max((end_s[d] for d in t.deps[i]), default=start_s)
            device, layer, kind = t.device[i], t.layer[i], t.kind[i]
            deps = on(device, shape.deps[i])
            if op == COMPUTE:
                event[i], end_s[i] = self.compute(device, kind, t.blocks[i], deps, token,
                                                  layer, at_s)
                continue
            dst = t.dst[i]
            if self.records.has_jobs(device, f"{tag}.send"):   # per-message send overhead
                sent, at_s = self.compute(device, "send", 0, deps, token, layer, at_s)
                deps = [sent]
            flow = self.records.take_flow(tag, device, dst, graph.size_bytes[i], at_s)
            event[i] = self.transfer(device, dst, graph.size_bytes[i], deps, token, layer,
                                     kind, "inference", flow)
            end_s[i] = flow.end_s
            if self.records.has_jobs(dst, f"{tag}.recv"):      # per-message receive overhead
                event[i], end_s[i] = self.compute(dst, "recv", 0, [event[i]], token, layer,
                                                  end_s[i])
        sink = t.sink
        if t.op[sink] != COMPUTE or t.device[sink] != controller:
            raise PlanError(f"the task graph of {t.dataflow!r} ends with a {t.kind[sink]} "
                            f"{t.op[sink]} on {t.device[sink]!r}; the emulation ends a token "
                            f"with a computation on the controller {controller!r}")
        return self.plan.tasks[int(event[sink][1:])], end_s[sink]


def placement_per_token(decisions: list[tuple[int, Placement]], n_tokens: int
                        ) -> dict[int, Placement]:
    """The placement in force at each token, from the partitioner's successful decisions
    ``(token, placement)`` (a blocking migration applies before the token it was decided at)."""
    by_token = {}
    current = None
    pending = sorted(decisions, key=lambda d: d[0])
    i = 0
    for token in range(1, n_tokens + 1):
        while i < len(pending) and pending[i][0] <= token:
            current = pending[i][1]
            i += 1
        if current is None:
            raise PlanError(f"no placement was in force at token {token}")
        by_token[token] = current
    return by_token


def compile_plan(*, model: ModelSpec, cost: CostModel, controller: str, devices: list[str],
                 prompt_tokens: int, tokens: list,
                 flows: list[FlowRecord] | ChunkedLog[FlowRecord],
                 jobs: list[JobRecord] | ChunkedLog[JobRecord],
                 decisions: list[tuple[int, Placement]], migration_mode: str = "blocking",
                 dataflow: Dataflow | str | dict | None = None,
                 messages: MessageCosts | None = None
                 ) -> TokenPlan:
    """The worker tasks of a simulated run.

    ``tokens``, ``flows``, ``jobs``: the simulation's ``TokenRecord``, ``FlowRecord`` and
    ``JobRecord`` lists (``record_jobs=True``); ``decisions``: ``(token, placement)`` of each
    successful partitioner call; ``dataflow``: the run's (a name, a mapping or a
    :class:`~testbed.dataflows.Dataflow`, as :func:`~testbed.dataflows.make_dataflow`
    takes; default ``head_level``); ``messages``: the run's
    :class:`~testbed.plan.messages.MessageCosts`, if known (per-link delays are refused).
    """
    if migration_mode != "blocking":
        raise PlanError(f"migration mode {migration_mode!r} is not supported by the emulation "
                        "(only 'blocking')")
    if messages is not None and any(v > 0 for v in messages.link_s.values()):
        raise PlanError("the simulation delays every message on each link it crosses "
                        "(per-link message costs); a real link has no such delay, so the "
                        "emulation does not replay it (set per_link to 0)")
    unsupported = sorted({f.kind for f in flows} - {"inference", "migration"})
    if unsupported:
        raise PlanError(f"the simulation sent {', '.join(unsupported)} flows, which the "
                        "emulation does not replay (device failures are not supported)")
    if any(getattr(t, "lost_s", 0.0) or getattr(t, "recovery_s", 0.0) for t in tokens):
        raise PlanError("the simulation recomputed or rebuilt blocks after a failure; the "
                        "emulation does not replay failures")
    flow_spec = make_dataflow(dataflow)
    plan = TokenPlan(controller, list(devices), dataflow=flow_spec.describe())
    records = _Records(jobs, flows, flow_spec.describe())
    builder = _Builder(plan, records)
    placements = placement_per_token(decisions, len(tokens))
    shapes: dict[Placement, _Shape] = {}
    migrations: dict[int, list] = defaultdict(list)
    for flow in sorted(flows, key=lambda f: (f.start_s, f.flow_id)):
        if flow.kind == "migration":
            migrations[int(flow.tag[1:])].append(flow)
    previous_end: list[str] = []
    for record in tokens:
        token = record.token
        start = builder.mark(controller, previous_end)
        ready = [f"k{start.id}"]
        moves = migrations.get(token, [])
        if moves:
            acks: list[str] = []
            for flow in moves:
                go = builder.signal(controller, flow.src, ready)
                arrived = builder.transfer(flow.src, flow.dst, flow.size_bytes, go, token,
                                           MIGRATION_LAYER, "migration", "migration", flow)
                acks += builder.signal(flow.dst, controller, [arrived])
            ready = [f"k{builder.mark(controller, acks).id}"]
        try:
            template = flow_spec.template(placements[token], controller)
        except PlacementError as error:
            raise PlanError(f"token {token}: the placement does not run under "
                            f"{flow_spec.describe()}: {error}") from None
        shape = shapes.get(placements[token])
        if shape is None:
            shape = shapes[placements[token]] = _shape(template)
        graph = template.bind(step_of(cost, model, prompt_tokens, token))
        end, end_s = builder.graph(graph, shape, ready,
                                   record.start_s + record.migration_wait_s, token)
        if not _near(end_s, record.end_s):
            raise PlanError(f"token {token}: the task graph of {flow_spec.describe()!r} ends "
                            f"at {end_s:.9g} s, the simulated token at {record.end_s:.9g} s")
        plan.tokens.append(TokenInfo(token, start.id, end.id))
        previous_end = [f"k{end.id}"]
    jobs_left, flows_left = records.left()
    if jobs_left or flows_left:
        raise PlanError(f"{jobs_left} simulated computation(s) and {flows_left} inference "
                        f"flow(s) have no place in the plan of {flow_spec.describe()!r}; the "
                        "run is not a plain token loop of this dataflow")
    plan.sim_duration_s = max((t.end_s for t in tokens), default=0.0)
    return plan
