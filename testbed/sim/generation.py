"""What the token loop runs, pass after pass: one sequence, or a batch of requests.

The engine (:mod:`testbed.sim.engine`) owns the cluster, the network, the decisions and
the migrations; a :class:`Generation` owns the workload. Before every pass the engine asks
it for the next pass's :class:`~testbed.plan.work.StepWork` (or the time at which there
will be one), and after the pass hands it the pass's timing, from which it makes the
token records. :class:`SingleSequence` is one prompt generating a fixed number of tokens
(the paper's setting); :class:`~testbed.sim.batching.ContinuousBatching` serves requests
that arrive over time.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from collections.abc import Sequence
from typing import Callable

from testbed.model.cost import CostModel
from testbed.model.spec import ModelSpec
from testbed.plan.observation import ServingLoad
from testbed.plan.work import DECODE, PREFILL, StepWork, step_work
from testbed.sim.records import TokenRecord

Fits = Callable[..., bool]
"""``fits(work, anywhere=False)``: whether the memory ``work`` holds fits every device now
under the current placement (``anywhere``: in the devices' total memory, under some
placement); the engine's check."""


@dataclass(frozen=True)
class PassTiming:
    """How one pass went (s): its critical path split, and what came before it."""

    compute_s: float
    comm_s: float
    migration_wait_s: float
    decided: bool
    migrations: int
    decision_wall_s: float
    recovery_s: float
    lost_s: float


class Generation(abc.ABC):
    """The workload side of the token loop."""

    redecide = False   # set when the next pass needs a decision whatever the interval

    def __init__(self, cost: CostModel, model: ModelSpec):
        self.cost = cost
        self.model = model

    @abc.abstractmethod
    def next_pass(self, now_s: float) -> StepWork | float | None:
        """The next pass's work; a time (s) if nothing can run before it; None when done."""

    @abc.abstractmethod
    def finish(self, iteration: int, work: StepWork, start_s: float, end_s: float,
               timing: PassTiming) -> Sequence[TokenRecord]:
        """Account for the pass returned last; its token records."""

    def decision_work(self, work: StepWork) -> StepWork:
        """The work a partitioner decides on before ``work`` runs: a placement serves the
        whole generation, so a prefill is decided on the decode step that follows it (its
        transient activations may still exceed a device's memory: recorded as OOM)."""
        if work.phase != PREFILL:
            return work
        return step_work(self.cost, self.model, DECODE, work.seq_len + 1, 1)

    def refill_work(self, before: StepWork) -> StepWork:
        """The pass that refills the K/V caches of rebuilt blocks after a failure: a
        prefill over every position cached so far."""
        if self.cost.prefill_cost(self.model, "attn", 1) is None:
            return before
        return step_work(self.cost, self.model, PREFILL, before.seq_len, 0)

    def revise(self, work: StepWork) -> StepWork:
        """The next pass again, for the placement that changed since :meth:`next_pass`
        composed it (a batch is re-cut to fit it); one sequence's pass is unchanged."""
        return work

    def load(self) -> ServingLoad | None:
        """The requests in the system, as a partitioner sees them (None: one sequence)."""
        return None

    def end(self, now_s: float) -> None:
        """The run is over at ``now_s`` (requests still in the system are recorded)."""


class SingleSequence(Generation):
    """One prompt of ``prompt_tokens`` generating ``generate_tokens`` tokens: a prefill
    pass (when the cost preset has one) gives the first token, decode steps the rest."""

    def __init__(self, cost: CostModel, model: ModelSpec, prompt_tokens: int,
                 generate_tokens: int):
        super().__init__(cost, model)
        self.prompt_tokens = prompt_tokens
        self.generate_tokens = generate_tokens
        self.done = 0
        self._last: tuple[tuple, StepWork] | None = None

    def step_of(self, token: int) -> StepWork:
        """The forward pass that produces ``token`` (1-based)."""
        if token == 1 and self.cost.prefill_cost(self.model, "attn", self.prompt_tokens) \
                is not None:
            key: tuple = (PREFILL, self.prompt_tokens, 0)
        else:
            key = (DECODE, self.prompt_tokens + token - 1, token - 1)
        if self._last is None or self._last[0] != key:
            self._last = (key, step_work(self.cost, self.model, *key))
        return self._last[1]

    def next_pass(self, now_s: float) -> StepWork | None:
        if self.done >= self.generate_tokens:
            return None
        return self.step_of(self.done + 1)

    def finish(self, iteration: int, work: StepWork, start_s: float, end_s: float,
               timing: PassTiming) -> list[TokenRecord]:
        self.done += 1
        return [TokenRecord(self.done, work.phase, work.seq_len, start_s, end_s,
                            end_s - start_s, timing.compute_s, timing.comm_s,
                            timing.migration_wait_s, timing.decided, timing.migrations,
                            timing.decision_wall_s, timing.recovery_s, timing.lost_s)]
