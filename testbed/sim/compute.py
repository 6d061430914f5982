"""One FIFO compute queue per device.

Jobs run one at a time in the order they were submitted. A job's service time is the
roofline time of its blocks, scaled by the device's available fraction of compute and
memory bandwidth *at the moment the job starts*. Since jobs are served in submission
order and availability is a known function of time, a job's start and end are fixed when
it is submitted, and the queue needs no process of its own.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import simpy

from testbed.cluster.device import DeviceSpec
from testbed.model.cost import BlockCost
from testbed.plan.graph import Parts
from testbed.traces.series import Series

if TYPE_CHECKING:
    from testbed.sim.record_log import ChunkedLog


#: Nothing moving for this long (simulated s) means nothing ever will: a device with no
#: compute free of background load never gets any back, a link at 0 bit/s never recovers.
#: The engine then ends the run as stalled; the horizon evaluator counts such work as
#: never done.
STALLED_AFTER_S = 3600.0


class JobRecord(NamedTuple):
    """One computation on a device (times in s)."""

    device: str
    label: str
    n_blocks: int
    submit_s: float
    start_s: float
    end_s: float


class ComputeQueue:
    """FIFO queue of one device; ``avail_*`` series give the free fraction over time."""

    def __init__(self, env: simpy.Environment, spec: DeviceSpec,
                 avail_compute: Series | None = None, avail_mem: Series | None = None,
                 records: list[JobRecord] | ChunkedLog[JobRecord] | None = None):
        self.env = env
        self.spec = spec
        self.avail_compute = avail_compute
        self.avail_mem = avail_mem
        self.free_at_s = 0.0
        self.busy_s = 0.0
        self.stalled_since_s: float | None = None   # when work that never ends was queued
        self.records = records
        self._block_s: dict[int, tuple[BlockCost, float, float, float]] = {}  # one block (s)

    def usable_from_s(self, t_s: float) -> float:
        """The first time from ``t_s`` at which some compute and memory bandwidth are free
        (s; inf if none within :data:`STALLED_AFTER_S`, or ever)."""
        c, m = self.availability(t_s)
        if c > 0 and m > 0:                  # the common case: usable now
            return t_s
        series = [s for s in (self.avail_compute, self.avail_mem) if s is not None]
        t = t_s
        while True:
            t = min((s.next_change_s(t) for s in series), default=math.inf)
            if not t - t_s <= STALLED_AFTER_S:
                return math.inf
            c, m = self.availability(t)
            if c > 0 and m > 0:
                return t

    def availability(self, t_s: float) -> tuple[float, float]:
        """(compute, memory-bandwidth) fractions free at ``t_s``."""
        c = self.avail_compute.value_at(t_s) if self.avail_compute is not None else 1.0
        m = self.avail_mem.value_at(t_s) if self.avail_mem is not None else 1.0
        return c, m

    def service_time_s(self, cost: BlockCost, n_blocks: float, start_s: float) -> float:
        """Time for ``n_blocks`` identical blocks run one after another from ``start_s``."""
        if self.avail_compute is None and self.avail_mem is None:
            c = m = 1.0                      # no background load (the common case)
        else:
            c, m = self.availability(start_s)
        seen = self._block_s.get(id(cost))   # a step's blocks of one kind share a cost
        if seen is not None and seen[0] is cost and seen[1] == c and seen[2] == m:
            return n_blocks * seen[3]
        block_s = self.spec.compute_time_s(cost.flops, cost.bytes_read, c, m)
        if len(self._block_s) >= 16:
            self._block_s.clear()
        self._block_s[id(cost)] = (cost, c, m, block_s)
        return n_blocks * block_s

    def parts_time_s(self, parts: Parts, start_s: float) -> float:
        """Time for a computation of ``parts`` (``((BlockCost, count), ...)``, run one
        after another) that starts at ``start_s``: the sum of their rooflines."""
        if len(parts) == 1:
            cost, count = parts[0]
            return self.service_time_s(cost, count, start_s)
        total = 0.0
        for cost, count in parts:
            total += self.service_time_s(cost, count, start_s)
        return total

    def busy_time_s(self, busy_s: float, start_s: float) -> float:
        """Time ``busy_s`` seconds of processor time take from ``start_s``, stretched by
        background load (e.g. a message's software overhead)."""
        c, _ = self.availability(start_s)
        return busy_s / c if c > 0 else (0.0 if busy_s == 0 else float("inf"))

    def submit(self, cost: BlockCost, n_blocks: int = 1, label: str = "") -> simpy.Event:
        """Queue ``n_blocks`` blocks of ``cost``; the event fires when they are done."""
        return self.submit_parts(((cost, n_blocks),), n_blocks, label)

    def submit_parts(self, parts: Parts, n_blocks: int = 1, label: str = "") -> simpy.Event:
        """Queue a computation of ``parts`` (``((BlockCost, count), ...)``, run one after
        another); the event fires when it is done. ``n_blocks`` is what the record says."""
        now = self.env.now
        start = self._start_s(now)
        return self._queue(now, start, self.parts_time_s(parts, start), n_blocks, label)

    def submit_busy(self, busy_s: float, label: str = "") -> simpy.Event:
        """Queue ``busy_s`` seconds of processor time (at full availability; stretched by
        background load), e.g. a message's software overhead."""
        now = self.env.now
        start = self._start_s(now)
        return self._queue(now, start, self.busy_time_s(busy_s, start), 0, label)

    def _start_s(self, now: float) -> float:
        """When work submitted now starts: once the queue is free and the device has some
        compute and memory bandwidth free of background load (a device at 100 % load runs
        nothing while it is)."""
        start = self.free_at_s if self.free_at_s > now else now
        if self.avail_compute is None and self.avail_mem is None:
            return start
        return self.usable_from_s(start)

    def _queue(self, now: float, start: float, service: float, n_blocks: int,
               label: str) -> simpy.Event:
        end = start + service
        if not math.isfinite(end):     # never done: an event that never fires
            self.free_at_s = math.inf
            self.stalled_since_s = now if self.stalled_since_s is None else \
                self.stalled_since_s
            return self.env.event()
        self.free_at_s = end
        self.busy_s += service
        if self.records is not None:
            self.records.append(JobRecord(self.spec.name, label, n_blocks, now, start, end))
        return self.env.timeout(end - now)
