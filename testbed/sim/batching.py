"""Serving many requests: iteration-level (continuous) batching, as Orca and vLLM do.

Requests arrive over time (:class:`RequestSpec`). Arrived requests wait in a FIFO queue;
before every pass the scheduler admits from its head while the batch has room
(``max_batch``) and memory allows: a request is admitted only if the K/V caches of every
running request and its own, at their final lengths (prompt + output), fit every device
under the current placement (a reservation, as Orca's scheduler makes), so a request's
cache never overflows later. A request whose cache cannot fit even alone is ``rejected``
(recorded, never silently dropped).

Each pass serves the whole batch (:func:`testbed.plan.batch.batch_work`): running requests
decode one token each; new requests read their prompts either in a pass of their own
(``prefill: separate``, vLLM's default scheduling: prefills first, decodes wait) or in
chunks riding along with the decodes (``prefill: chunked``, as Sarathi-Serve: at most
``chunk_tokens`` positions per pass, decodes first). A request's first token comes out of
the pass that reads the end of its prompt; it leaves when it has its output tokens.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from testbed.model.cost import CostModel
from testbed.model.spec import ModelSpec
from testbed.plan.observation import RequestLoad, ServingLoad
from testbed.plan.batch import PassItem, batch_work
from testbed.plan.work import StepWork
from testbed.requests.spec import RequestSpec
from testbed.sim.generation import Fits, Generation, PassTiming
from testbed.sim.records import BatchSample, Records, RequestRecord, RequestTokenRecord

PREFILL_MODES = ("separate", "chunked")


@dataclass(frozen=True)
class BatchingSpec:
    """``max_batch`` requests at most in a pass; ``prefill`` ``separate`` or ``chunked``
    (``chunk_tokens``: positions per pass, decodes included)."""

    max_batch: int = 16
    prefill: str = "separate"
    chunk_tokens: int = 512

    def __post_init__(self):
        if self.max_batch < 1 or self.chunk_tokens < 1:
            raise ValueError("max_batch and chunk_tokens must be >= 1")
        if self.prefill not in PREFILL_MODES:
            raise ValueError(f"prefill {self.prefill!r}; expected one of {PREFILL_MODES}")


class _Active:
    __slots__ = ("spec", "admitted_s", "cached", "generated", "first_token_s")

    def __init__(self, spec: RequestSpec, admitted_s: float):
        self.spec = spec
        self.admitted_s = admitted_s
        self.cached = 0          # positions in its K/V cache
        self.generated = 0       # output tokens so far
        self.first_token_s = math.nan

    @property
    def prefilling(self) -> bool:
        return self.cached < self.spec.prompt_tokens

    def final_item(self) -> PassItem:
        """Its last decode step: what its cache holds at the end (the reservation)."""
        return PassItem(self.spec.prompt_tokens + self.spec.output_tokens - 1)


class ContinuousBatching(Generation):
    """The scheduler of served requests (see the module docstring)."""

    def __init__(self, cost: CostModel, model: ModelSpec, requests: tuple[RequestSpec, ...],
                 spec: BatchingSpec, fits: Fits, records: Records):
        super().__init__(cost, model)
        if cost.prefill_cost(model, "attn", 1) is None:
            raise ValueError(f"serving requests needs a cost preset with a prefill pass; "
                             f"{cost.name!r} has none")
        self.spec = spec
        self.fits = fits
        self.records = records
        self._arrivals = deque(sorted(requests, key=lambda r: (r.arrival_s, r.request)))
        self.waiting: deque[RequestSpec] = deque()
        self.running: list[_Active] = []
        self._batch: list[tuple[_Active, PassItem]] = []

    # ------------------------------------------------------------------ scheduling
    def next_pass(self, now_s: float) -> StepWork | float | None:
        while self._arrivals and self._arrivals[0].arrival_s <= now_s:
            self.waiting.append(self._arrivals.popleft())
        self._admit(now_s)
        self._batch = self._compose()
        if self._batch:
            return batch_work(self.cost, self.model, [item for _, item in self._batch])
        if self._arrivals:
            return self._arrivals[0].arrival_s
        return None

    def _admit(self, now_s: float) -> None:
        while self.waiting and len(self.running) < self.spec.max_batch:
            candidate = _Active(self.waiting[0], now_s)
            if self._fits(self.running + [candidate]):
                self.waiting.popleft()
                self.running.append(candidate)
            elif not self.running and not self._fits([candidate]):
                self.waiting.popleft()
                self._record(candidate, "rejected", admitted=False)
            else:
                return   # first come, first served: the head waits for memory

    def _fits(self, active: list[_Active]) -> bool:
        return self.fits(batch_work(self.cost, self.model, [a.final_item() for a in active]))

    def _compose(self) -> list[tuple[_Active, PassItem]]:
        decoding = [a for a in self.running if not a.prefilling]
        prefilling = [a for a in self.running if a.prefilling]
        if self.spec.prefill == "separate":
            if prefilling:
                return [(a, PassItem(a.cached, a.spec.prompt_tokens - a.cached, True))
                        for a in prefilling]
            return [(a, PassItem(a.cached)) for a in decoding]
        batch = [(a, PassItem(a.cached)) for a in decoding]
        budget = self.spec.chunk_tokens - len(batch)   # decodes first
        for a in prefilling:
            if budget <= 0:
                break
            length = min(budget, a.spec.prompt_tokens - a.cached)
            batch.append((a, PassItem(a.cached, length, True)))
            budget -= length
        return batch

    # ------------------------------------------------------------------ accounting
    def finish(self, iteration: int, work: StepWork, start_s: float, end_s: float,
               timing: PassTiming) -> list[RequestTokenRecord]:
        out = []
        size = len(self._batch)
        for active, item in self._batch:
            active.cached = item.seq_len
            if item.prefill and active.prefilling:
                continue            # a chunk that did not reach the end of the prompt
            active.generated += 1
            if active.generated == 1:
                active.first_token_s = end_s
            out.append(RequestTokenRecord(
                active.generated, "prefill" if item.prefill else "decode", item.seq_len,
                start_s, end_s, end_s - start_s, timing.compute_s, timing.comm_s,
                timing.migration_wait_s, timing.decided, timing.migrations,
                timing.decision_wall_s, timing.recovery_s, timing.lost_s,
                request=active.spec.request, arrival_s=active.spec.arrival_s,
                iteration=iteration, batch_size=size))
        for active in [a for a in self.running if a.generated >= a.spec.output_tokens]:
            self.running.remove(active)
            self._record(active, "done", end_s=end_s)
        self._batch = []
        self.records.batches.append(BatchSample(iteration, end_s, len(self.running),
                                                len(self.waiting), work.positions))
        return out

    def decision_work(self, work: StepWork) -> StepWork:
        """Decide on the batch as it will decode: every running request one position
        further (a placement serves the whole generation; prefill activations are
        transient)."""
        if work.phase == "decode":
            return work
        items = [PassItem(max(a.cached, a.spec.prompt_tokens)) for a in self.running]
        return batch_work(self.cost, self.model, items)

    def refill_work(self, before: StepWork) -> StepWork:
        """A prefill over every running request's cached positions."""
        items = [PassItem(0, a.cached, True) for a in self.running if a.cached > 0]
        return batch_work(self.cost, self.model, items) if items else before

    def load(self) -> ServingLoad:
        return ServingLoad(tuple(RequestLoad(a.spec.request, a.spec.prompt_tokens,
                                             a.spec.output_tokens, a.cached, a.generated)
                                 for a in self.running),
                           len(self.waiting), sum(r.prompt_tokens for r in self.waiting))

    def end(self, now_s: float) -> None:
        for active in self.running:
            self._record(active, "unfinished")
        for spec in list(self.waiting) + list(self._arrivals):
            self._record(_Active(spec, math.nan), "unfinished", admitted=False)
        self.running, self.waiting, self._arrivals = [], deque(), deque()

    def _record(self, active: _Active, outcome: str, *, admitted: bool = True,
                end_s: float = math.nan) -> None:
        spec = active.spec
        self.records.requests.append(RequestRecord(
            spec.request, spec.arrival_s, spec.prompt_tokens, spec.output_tokens,
            active.admitted_s if admitted else math.nan, active.first_token_s, end_s,
            active.generated, outcome))
