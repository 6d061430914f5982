"""What a simulation leaves behind: tidy tables, one row per token / flow / migration /
device sample / out-of-memory event / computation. Times in s, sizes in bytes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import pandas as pd

from testbed.sim.compute import JobRecord
from testbed.sim.network import FlowRecord
from testbed.sim.record_log import ChunkedLog


@dataclass(frozen=True)
class TokenRecord:
    token: int                 # 1 = the first generated token (the prefill pass, if any)
    phase: str                 # "prefill" or "decode"
    seq_len: int
    start_s: float
    end_s: float
    latency_s: float
    compute_s: float           # on the critical path
    comm_s: float              # on the critical path
    migration_wait_s: float    # generation paused for migrations before this token
    decided: bool              # the partitioner was called before this token
    migrations: int            # blocks whose device changed at this token
    decision_wall_s: float     # wall-clock time the partitioner took (not simulated time)
    recovery_s: float = 0.0    # rebuilding the blocks of failed devices
    lost_s: float = 0.0        # passes thrown away because a device they used failed


@dataclass(frozen=True)
class RequestTokenRecord(TokenRecord):
    """A token of one of several served requests. ``token`` counts within the request;
    ``start_s``/``end_s`` are those of the iteration (the batched pass) that produced it,
    whose timing columns it shares with the rest of the batch."""

    request: int = 0
    arrival_s: float = 0.0     # when the request arrived
    iteration: int = 0         # the pass (also the ``token`` of the other tables)
    batch_size: int = 1        # requests in that pass


@dataclass(frozen=True)
class RequestRecord:
    """One served request (s): ``outcome`` is ``done``, ``rejected`` (its K/V cache can
    never fit) or ``unfinished`` (still in the system when the run ended)."""

    request: int
    arrival_s: float
    prompt_tokens: int
    output_tokens: int
    admitted_s: float          # NaN if never admitted
    first_token_s: float       # NaN if no token
    end_s: float               # its last token, NaN if not done
    generated: int
    outcome: str
    preemptions: int = 0       # times its cache was dropped to free memory (recomputed)


@dataclass(frozen=True)
class BatchSample:
    """The serving state at the end of one iteration: requests running (admitted) and
    waiting (arrived, not admitted), positions computed by the pass."""

    iteration: int
    time_s: float
    running: int
    waiting: int
    positions: int


@dataclass(frozen=True)
class MigrationRecord:
    token: int                 # decided before this token
    block: str
    src: str
    dst: str
    size_bytes: float
    mode: str                  # "blocking" or "live"
    start_s: float
    end_s: float               # when the block serves from its new device


@dataclass(frozen=True)
class MemorySample:
    token: int
    time_s: float
    device: str
    used_bytes: float
    capacity_bytes: float
    controller: bool = False   # the device holds the embedding and LM head


@dataclass(frozen=True)
class OomEvent:
    token: int
    time_s: float
    device: str
    used_bytes: float
    capacity_bytes: float


@dataclass(frozen=True)
class DeviceUsage:
    """One device over a whole run: how long its processor was busy (s) within ``run_s``."""

    device: str
    busy_s: float
    run_s: float


@dataclass(frozen=True)
class DecisionEvent:
    token: int
    time_s: float
    outcome: str               # "placed", "kept", "infeasible", "deferred", "abandoned"
    detail: str


def _frame(rows: list, cls: type[Any]) -> pd.DataFrame:
    if hasattr(cls, "_fields"):          # a named tuple: the rows are the records
        columns = list(cls._fields)
        return pd.DataFrame.from_records(rows, columns=columns) if rows else \
            pd.DataFrame(columns=columns)
    columns = [f.name for f in fields(cls)]
    if not rows:
        return pd.DataFrame(columns=columns)
    # a tuple row is a named tuple: its ``_asdict`` (which ``tuple`` does not declare)
    return pd.DataFrame([asdict(r) if not isinstance(r, tuple) else getattr(r, "_asdict")()
                         for r in rows],
                        columns=columns) if not hasattr(rows[0], "__dataclass_fields__") \
        else pd.DataFrame.from_records([tuple(getattr(r, c) for c in columns) for r in rows],
                                       columns=columns)


#: The tables a run records, in the order results folders list them.
TABLE_NAMES = ("tokens", "flows", "migrations", "memory", "oom", "decisions", "jobs",
               "devices", "requests", "batches")

#: Outcomes of runs that generated every token: "ok", or "oom" when some device's memory
#: overflowed on the way (recorded in ``oom``). Any other outcome says why the run stopped
#: early: "infeasible at token k: ..." or "stalled at token k: ... (nothing has moved
#: since t = ... s)".
COMPLETED = ("ok", "oom")


def completed(outcome: str) -> bool:
    """Whether a run with ``outcome`` generated every token."""
    return outcome in COMPLETED


@dataclass
class Records:
    """Everything one run recorded, plus its outcome (see :data:`COMPLETED`)."""

    tokens: list[TokenRecord] = field(default_factory=list)
    flows: ChunkedLog[FlowRecord] = field(default_factory=lambda: ChunkedLog(FlowRecord))
    migrations: list[MigrationRecord] = field(default_factory=list)
    memory: list[MemorySample] = field(default_factory=list)
    oom: list[OomEvent] = field(default_factory=list)
    decisions: list[DecisionEvent] = field(default_factory=list)
    jobs: ChunkedLog[JobRecord] = field(default_factory=lambda: ChunkedLog(JobRecord))
    devices: list[DeviceUsage] = field(default_factory=list)
    requests: list[RequestRecord] = field(default_factory=list)
    batches: list[BatchSample] = field(default_factory=list)
    outcome: str = "ok"

    def frames(self, skip: tuple[str, ...] = ()) -> dict[str, pd.DataFrame]:
        """Every table but ``skip`` as a DataFrame (empty tables keep their columns)."""
        token_cls = type(self.tokens[0]) if self.tokens else TokenRecord
        makers = {
            "tokens": lambda: _frame(self.tokens, token_cls),
            "flows": self.flows.frame,
            "migrations": lambda: _frame(self.migrations, MigrationRecord),
            "memory": lambda: _frame(self.memory, MemorySample),
            "oom": lambda: _frame(self.oom, OomEvent),
            "decisions": lambda: _frame(self.decisions, DecisionEvent),
            "jobs": self.jobs.frame,
            "devices": lambda: _frame(self.devices, DeviceUsage),
            "requests": lambda: _frame(self.requests, RequestRecord),
            "batches": lambda: _frame(self.batches, BatchSample),
        }
        return {name: make() for name, make in makers.items() if name not in skip}
