"""The per-token plan of a simulated run as a task graph that workers execute.

:func:`compile_plan` turns what a simulation decided and recorded (the placement in force
at each token, the migration flows it sent, the service time of every computation) into
tasks per device, mirroring :class:`testbed.sim.pipeline.ForwardPass` step for step:

- per token the controller marks the start; in ``blocking`` migration mode the blocks that
  moved are sent first (the controller tells each old device to send, each new device tells
  the controller it has them: out-of-band signals, instantaneous as in the simulator);
- per layer the hidden state goes from the previous ffn device (the controller for layer
  0) to every device hosting attention blocks of the layer, each computes its blocks and
  sends their outputs to the proj device, proj computes and sends to the ffn device, ffn
  computes; after the last layer the hidden state returns to the controller for the LM
  head, whose end is the token's end.

A task runs on one device when all its dependencies (events on that device) have
happened: ``k<task>`` when a local task finished, ``x<transfer>`` when a transfer's last
byte arrived, ``s<signal>`` when a signal arrived. Every transfer carries identifiers
(token, layer, stage, src, dst, kind) under which it is joined with the simulator's flow.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import asdict, dataclass, field

from testbed.model.cost import CostModel
from testbed.model.spec import ModelSpec
from testbed.plan.placement import Placement
from testbed.plan.work import DECODE, PREFILL, StepWork, step_work

MIGRATION_LAYER = -1


class PlanError(ValueError):
    """The simulated run cannot be replayed (a feature the emulation does not support, or
    records that do not match the pipeline)."""


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
    layer: int                    # -1 for migrations, n_layers for the return to the controller
    stage: str                    # "input", "attn_out", "proj_out", "output", "migration"
    src: str
    dst: str
    kind: str                     # "inference" or "migration" (as the simulator's flows)
    size_bytes: int


@dataclass(frozen=True)
class ComputeInfo:
    task: int
    token: int
    layer: int
    kind: str                     # "attn", "proj", "ffn", "lm_head"
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


class _JobTimes:
    """The simulator's computations per (device, label), in submission order."""

    def __init__(self, jobs: list):
        self._queues: dict[tuple[str, str], deque] = defaultdict(deque)
        for job in jobs:
            self._queues[(job.device, job.label)].append(job)

    def take(self, device: str, label: str, n_blocks: int):
        queue = self._queues.get((device, label))
        if not queue:
            raise PlanError(f"the simulation recorded no computation {label!r} on {device!r} "
                            "for this step of the plan (run it with record_jobs=True)")
        job = queue.popleft()
        if job.n_blocks != n_blocks:
            raise PlanError(f"computation {label!r} on {device!r}: the simulation ran "
                            f"{job.n_blocks} block(s) where the plan has {n_blocks}")
        return job

    def left(self) -> int:
        return sum(len(q) for q in self._queues.values())


class _Builder:
    def __init__(self, plan: TokenPlan, jobs: _JobTimes):
        self.plan = plan
        self.jobs = jobs
        self._signals = 0

    def task(self, device: str, op: str, deps: list[str], **params) -> Task:
        task = Task(len(self.plan.tasks), device, op, list(deps), **params)
        self.plan.tasks.append(task)
        return task

    def mark(self, device: str, deps: list[str], not_before_s: float = 0.0) -> Task:
        return self.task(device, "mark", deps, not_before_s=not_before_s)

    def transfer(self, src: str, dst: str, size_bytes: float, deps: list[str], token: int,
                 layer: int, stage: str, kind: str = "inference") -> list[str]:
        """Send ``size_bytes`` once ``deps`` (on ``src``) happened; returns the events on
        ``dst`` that mean it arrived (``deps`` themselves when ``src == dst``: no flow)."""
        if src == dst:
            return list(deps)
        xfer = len(self.plan.transfers)
        size = int(round(size_bytes))
        self.task(src, "send", deps, xfer=xfer, dst=dst, size_bytes=size, channel=kind)
        self.plan.transfers.append(TransferInfo(xfer, token, layer, stage, src, dst, kind, size))
        self.plan.incoming.setdefault(dst, []).append(xfer)
        return [f"x{xfer}"]

    def signal(self, src: str, dst: str, deps: list[str]) -> list[str]:
        if src == dst:
            return list(deps)
        sid = self._signals
        self._signals += 1
        self.task(src, "signal", deps, dst=dst, signal=sid)
        self.plan.signals_in.setdefault(dst, []).append(sid)
        return [f"s{sid}"]

    def compute(self, device: str, kind: str, n_blocks: int, deps: list[str], token: int,
                layer: int) -> list[str]:
        job = self.jobs.take(device, f"t{token}.{kind}", n_blocks)
        task = self.task(device, "compute", deps, duration_s=job.end_s - job.start_s)
        self.plan.computes.append(ComputeInfo(task.id, token, layer, kind, device, n_blocks,
                                              job.start_s, job.end_s))
        return [f"k{task.id}"]

    def forward(self, placement: Placement, work: StepWork, ready: list[str],
                token: int) -> Task:
        """One forward pass from the controller (``ready``: events on the controller)."""
        controller = self.plan.controller
        src, deps = controller, ready
        layers = placement.layers
        for layer in layers:
            index = layer.layer
            at_proj: list[str] = []
            for device, n in layer.attn_hosts:
                arrived = self.transfer(src, device, work.input_bytes, deps, token, index,
                                        "input")
                done = self.compute(device, "attn", n, arrived, token, index)
                at_proj += self.transfer(device, layer.proj, n * work.attn.output_bytes, done,
                                         token, index, "attn_out")
            projected = self.compute(layer.proj, "proj", 1, at_proj, token, index)
            at_ffn = self.transfer(layer.proj, layer.ffn, work.proj.output_bytes, projected,
                                   token, index, "proj_out")
            deps = self.compute(layer.ffn, "ffn", 1, at_ffn, token, index)
            src = layer.ffn
        back = self.transfer(src, controller, work.output_bytes, deps, token, len(layers),
                             "output")
        done = self.compute(controller, "lm_head", 1, back, token, len(layers))
        return self.plan.tasks[int(done[0][1:])]


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
                 prompt_tokens: int, tokens: list, flows: list, jobs: list,
                 decisions: list[tuple[int, Placement]], migration_mode: str = "blocking"
                 ) -> TokenPlan:
    """The task graph of a simulated run.

    ``tokens``, ``flows``, ``jobs``: the simulation's ``TokenRecord``, ``FlowRecord`` and
    ``JobRecord`` lists (``record_jobs=True``); ``decisions``: ``(token, placement)`` of each
    successful partitioner call.
    """
    if migration_mode != "blocking":
        raise PlanError(f"migration mode {migration_mode!r} is not supported by the emulation "
                        "(only 'blocking')")
    unsupported = sorted({f.kind for f in flows} - {"inference", "migration"})
    if unsupported:
        raise PlanError(f"the simulation sent {', '.join(unsupported)} flows, which the "
                        "emulation does not replay (device failures are not supported)")
    if any(getattr(t, "lost_s", 0.0) or getattr(t, "recovery_s", 0.0) for t in tokens):
        raise PlanError("the simulation recomputed or rebuilt blocks after a failure; the "
                        "emulation does not replay failures")
    plan = TokenPlan(controller, list(devices))
    builder = _Builder(plan, _JobTimes(jobs))
    placements = placement_per_token(decisions, len(tokens))
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
                                           MIGRATION_LAYER, "migration", "migration")
                acks += builder.signal(flow.dst, controller, arrived)
            ready = [f"k{builder.mark(controller, acks).id}"]
        work = step_of(cost, model, prompt_tokens, token)
        end = builder.forward(placements[token], work, ready, token)
        plan.tokens.append(TokenInfo(token, start.id, end.id))
        previous_end = [f"k{end.id}"]
    if builder.jobs.left():
        raise PlanError(f"{builder.jobs.left()} simulated computation(s) have no place in the "
                        "plan; the run is not a plain token loop")
    plan.sim_duration_s = max((t.end_s for t in tokens), default=0.0)
    return plan
