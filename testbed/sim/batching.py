"""Serving many requests: iteration-level (continuous) batching, as Orca and vLLM do.

Requests arrive over time (:class:`RequestSpec`). Arrived requests wait in a FIFO queue;
before every pass the scheduler admits from its head while the batch has room
(``max_batch``) and memory allows: a request is admitted only if the pass it would join
(every running request's K/V cache, its own, and the pass's activations) and the decode
step after its prompt fit every device under the current placement; a prefill that does not
fit is cut down (fewer prompts per pass, then shorter chunks, also in ``separate`` mode:
the token budget follows memory, as vLLM sizes ``max_num_batched_tokens`` to it). Caches
grow; when the next pass would no longer fit, the most recently admitted request is
preempted, as vLLM does by recomputation: its cache is dropped, it goes back to the head of
the queue, and when readmitted it reads its prompt and the tokens it had generated again (a
prefill) before it decodes on. When nothing runs and the request at the head does not fit
the current placement, it is admitted if the devices' memory could hold it under another,
and the placement is re-decided at once; a request that cannot fit even then is
``rejected`` (recorded, never silently dropped). A lone request whose pass does not fit
runs anyway, and the overflow is recorded as out-of-memory, as for a single sequence.

Each pass serves the whole batch (:func:`testbed.plan.batch.batch_work`): running requests
decode one token each; new requests read their prompts either in passes of their own
(``prefill: separate``, vLLM's default scheduling: prefills first, decodes wait; whole
prompts up to ``chunk_tokens`` positions per pass) or in chunks riding along with the
decodes (``prefill: chunked``, as Sarathi-Serve: at most ``chunk_tokens`` positions per
pass, decodes first). The partitioner decides on the next decode step of the running
requests and the head of the queue (the observation's ``load``); like a single sequence's,
its memory view covers the growth until the next decision. A request's first token comes
out of the pass that reads the end of its prompt; it leaves when it has its output tokens.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from testbed import config_schema as cs
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
    """``max_batch`` requests at most running; ``prefill`` ``separate`` or ``chunked``;
    ``chunk_tokens``: positions a pass computes at most (vLLM's
    ``max_num_batched_tokens``; a prompt longer than it runs whole in a separate pass).
    Also a scenario's ``batching`` section."""

    max_batch: int = cs.setting(16, cs.integer(1), "requests running at most in one pass")
    prefill: str = cs.setting("separate", cs.one_of(PREFILL_MODES),
                              "prompts in passes of their own (separate, as vLLM) or in "
                              "chunks riding with the decodes (chunked, as Sarathi-Serve)")
    chunk_tokens: int = cs.setting(512, cs.integer(1), "positions a pass computes at most")

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.chunk_tokens < 1:
            raise ValueError("max_batch and chunk_tokens must be >= 1")
        if self.prefill not in PREFILL_MODES:
            raise ValueError(f"prefill {self.prefill!r}; expected one of {PREFILL_MODES}")


class _Active:
    """A request in the system and its progress (positions, tokens)."""

    __slots__ = ("spec", "admitted_s", "cached", "target", "generated", "first_token_s",
                 "preemptions")

    def __init__(self, spec: RequestSpec):
        self.spec = spec
        self.admitted_s = math.nan
        self.cached = 0                      # positions in its K/V cache
        self.target = spec.prompt_tokens     # positions to read before it decodes
        self.generated = 0                   # output tokens so far
        self.first_token_s = math.nan
        self.preemptions = 0

    @property
    def prefilling(self) -> bool:
        return self.cached < self.target

    def next_item(self, budget: int | None = None) -> PassItem:
        """Its part of the next pass (a prefill of at most ``budget`` positions)."""
        if not self.prefilling:
            return PassItem(self.cached)
        length = self.target - self.cached
        return PassItem(self.cached, length if budget is None else min(length, budget), True)


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
        self.waiting: deque[_Active] = deque()
        self.running: list[_Active] = []
        self._batch: list[tuple[_Active, PassItem]] = []

    # ------------------------------------------------------------------ scheduling
    def next_pass(self, now_s: float) -> StepWork | float | None:
        while self._arrivals and self._arrivals[0].arrival_s <= now_s:
            self.waiting.append(_Active(self._arrivals.popleft()))
        self._batch = self._admit(now_s, self._running_batch())
        if self._batch:
            return self._work(self._batch)
        if self._arrivals:
            return self._arrivals[0].arrival_s
        return None

    def revise(self, work: StepWork) -> StepWork:
        self._batch = self._running_batch()
        return self._work(self._batch) if self._batch else work

    def _running_batch(self) -> list[tuple[_Active, PassItem]]:
        """The next pass of the running requests, preempting the latest admitted until it
        fits (a lone request that does not fit runs anyway: its overflow is recorded)."""
        batch = self._fitting(self.running)
        while batch is None and len(self.running) > 1:
            self._preempt(self.running.pop())
            batch = self._fitting(self.running)
        return self._compose(self.running) if batch is None else batch

    def _work(self, batch: list[tuple[_Active, PassItem]]) -> StepWork:
        return batch_work(self.cost, self.model, [item for _, item in batch])

    def _fitting(self, active: list[_Active],
                 anywhere: bool = False) -> list[tuple[_Active, PassItem]] | None:
        """The next pass of ``active`` if it fits the cluster's memory, its prefill cut
        down until it does if need be (fewer prompts, then shorter chunks); None if even
        a one-position prefill does not fit."""
        batch = self._compose(active)
        while batch and not self.fits(self._work(batch), anywhere=anywhere):
            decodes = sum(not item.prefill for _, item in batch)
            prefill = sum(item.length for _, item in batch if item.prefill)
            if prefill <= 1:
                return None
            batch = self._compose(active, decodes + prefill // 2, cut=True)
        return batch

    def _decode_after(self, active: list[_Active]) -> StepWork:
        """The decode step of ``active`` once every prompt is read."""
        return batch_work(self.cost, self.model,
                          [PassItem(max(a.cached, a.target)) for a in active])

    def _preempt(self, victim: _Active) -> None:
        """Drop ``victim``'s cache to free memory; it reads its prompt and the tokens it
        generated again when readmitted (vLLM's recompute preemption)."""
        victim.target = victim.spec.prompt_tokens + victim.generated
        victim.cached = 0
        victim.preemptions += 1
        self.waiting.appendleft(victim)

    def _admit(self, now_s: float, batch: list[tuple[_Active, PassItem]]
               ) -> list[tuple[_Active, PassItem]]:
        """Admit from the head of the queue while the pass with it fits; the pass."""
        while self.waiting and len(self.running) < self.spec.max_batch:
            candidate = self.waiting[0]
            grown = self._fitting(self.running + [candidate])
            if grown is not None and not self.fits(self._decode_after(
                    self.running + [candidate])):
                grown = None      # it would be preempted as soon as its prompt is read
            if grown is None and self.running:
                break    # first come, first served: the head waits for memory
            if grown is None:
                if self._fitting([candidate], anywhere=True) is None or not self.fits(
                        self._decode_after([candidate]), anywhere=True):
                    self.waiting.popleft()
                    self._record(candidate, "rejected", admitted=False)
                    continue
                # nothing runs and it does not fit this placement, but the cluster could
                # hold it under another: admit it and have the placement re-decided
                self.redecide = True
                grown = self._compose([candidate])
            self.waiting.popleft()
            if math.isnan(candidate.admitted_s):
                candidate.admitted_s = now_s
            self.running.append(candidate)
            batch = grown
        return batch

    def _compose(self, active: list[_Active], budget: int | None = None,
                 cut: bool = False) -> list[tuple[_Active, PassItem]]:
        """The pass of ``active``: at most ``budget`` positions (default ``chunk_tokens``;
        the first prompt of a separate prefill runs whole unless ``cut``)."""
        budget = self.spec.chunk_tokens if budget is None else budget
        decoding = [a for a in active if not a.prefilling]
        prefilling = [a for a in active if a.prefilling]
        if self.spec.prefill == "separate":
            if not prefilling:
                return [(a, a.next_item()) for a in decoding]
            batch: list[tuple[_Active, PassItem]] = []
            for a in prefilling:      # whole prompts, within the budget (the first always)
                item = a.next_item(budget if cut and not batch else None)
                if batch and item.length > budget:
                    break
                batch.append((a, item))
                budget -= item.length
            return batch
        batch = [(a, a.next_item()) for a in decoding]
        budget -= len(batch)   # decodes first
        for a in prefilling:
            if budget <= 0:
                break
            item = a.next_item(budget)
            batch.append((a, item))
            budget -= item.length
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
        """Decide on the next decode step of the batch the scheduler wants: the running
        requests and those waiting at the head of the queue (up to ``max_batch``), each
        one position further (for one request: the single sequence's own decision)."""
        starts = self._wanted_starts()
        return batch_work(self.cost, self.model, [PassItem(s) for s in starts]) \
            if starts else work

    def _wanted_starts(self) -> tuple[int, ...]:
        room = max(0, self.spec.max_batch - len(self.running))
        wanted = self.running + list(self.waiting)[:room]
        return tuple(max(a.cached, a.target) for a in wanted)

    def refill_work(self, before: StepWork) -> StepWork:
        """A prefill over every running request's cached positions."""
        items = [PassItem(0, a.cached, True) for a in self.running if a.cached > 0]
        return batch_work(self.cost, self.model, items) if items else before

    def load(self) -> ServingLoad:
        return ServingLoad(tuple(RequestLoad(a.spec.request, a.spec.prompt_tokens,
                                             a.spec.output_tokens, a.cached, a.generated)
                                 for a in self.running),
                           len(self.waiting), sum(a.target for a in self.waiting),
                           self._wanted_starts())

    def end(self, now_s: float) -> None:
        for active in self.running:
            self._record(active, "unfinished")
        for active in list(self.waiting) + [_Active(r) for r in self._arrivals]:
            self._record(active, "unfinished", admitted=not math.isnan(active.admitted_s))
        self.running, self.waiting, self._arrivals = [], deque(), deque()

    def _record(self, active: _Active, outcome: str, *, admitted: bool = True,
                end_s: float = math.nan) -> None:
        spec = active.spec
        self.records.requests.append(RequestRecord(
            spec.request, spec.arrival_s, spec.prompt_tokens, spec.output_tokens,
            active.admitted_s if admitted else math.nan, active.first_token_s, end_s,
            active.generated, outcome, active.preemptions))
