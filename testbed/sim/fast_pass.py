"""A pass computed in one sweep when nothing can contend: the engine's shortcut.

When no flow is in flight, no link a pass uses changes capacity during it, and no two of
its flows are ever on a link (or NIC) at the same time, max-min sharing gives every flow
its lone bottleneck rate, so the events of the pass follow from its task graph alone: each
task starts when its last dependency ends, a device runs its work in the order it arrives
(FIFO, as :class:`~testbed.sim.compute.ComputeQueue`), a flow of ``S`` bytes at rate ``C``
arrives ``latency + 8 S / C`` after it starts. :func:`fast_pass` computes those times in one
sweep over the tasks (in task order) and, only if every condition held, returns them with
the records the event-driven run would have left (flows, computations); otherwise None and
the engine runs the pass event by event (:class:`~testbed.sim.executor.GraphRunner`).

What is checked, each failing check meaning "run it event by event": a flow at rate 0,
or work on a device with nothing free of background load;
two flows sharing a resource whose fluid phases overlap or touch; a capacity change on a
flow's route before the flow is through (a change on a link nothing is crossing changes
nothing); a device receiving work out of task order, or two
pieces of work reaching one device at the same instant for different reasons, unless the
first is what the second waited for (otherwise which goes first would follow the event
order, which the sweep does not model).

The times equal the event-driven run's up to floating-point rounding (the engine's timers
add delays to the current time; the sweep adds durations to start times), and so do the
records, except that flows starting at the same instant for different reasons are
numbered in task order (the engine numbers them in event order). Tests hold both to 1e-12
relative; ``SimConfig.fast_path=False`` turns the shortcut off.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from testbed.plan.graph import Parts, TaskGraph
from testbed.plan.messages import MessageCosts
from testbed.sim.compute import ComputeQueue, JobRecord
from testbed.sim.network import LoneFlow, Network
from testbed.units import BITS_PER_BYTE

if TYPE_CHECKING:
    from testbed.sim.record_log import ChunkedLog

#: Fluid phases on one resource closer than this (relative) count as touching.
_GAP_RTOL = 1e-9
_NEAR = 1.0 + _GAP_RTOL


class FastPass:
    """The outcome of a successful sweep (see :func:`fast_pass`)."""

    __slots__ = ("end_s", "compute_s", "comm_s", "flows", "jobs", "busy")

    def __init__(self, end_s: float, compute_s: float, comm_s: float, flows: list[LoneFlow],
                 jobs: list[tuple[float, int, JobRecord]],
                 busy: dict[str, tuple[float, float]]) -> None:
        self.end_s, self.compute_s, self.comm_s = end_s, compute_s, comm_s
        self.flows, self.jobs, self.busy = flows, jobs, busy

    def apply(self, network: Network, queues: dict[str, ComputeQueue],
              record_jobs: list[JobRecord] | ChunkedLog[JobRecord] | None) -> None:
        """Leave the records and the queues' state the event-driven run would have."""
        network.record_lone_flows(self.flows)
        for device, (free_at, busy) in self.busy.items():
            queue = queues[device]
            queue.free_at_s = free_at
            queue.busy_s += busy
        if record_jobs is not None:
            record_jobs.extend(job for _, _, job in sorted(self.jobs, key=lambda j: j[:2]))


def fast_pass(graph: TaskGraph, tag: str, now: float, network: Network,
              queues: dict[str, ComputeQueue], messages: MessageCosts, replayed: dict,
              record_jobs: bool = False) -> FastPass | None:
    """The pass of ``graph`` started at ``now`` swept in task order, or None if something
    could contend (see the module docstring). ``replayed`` maps resources to the capacity
    series the engine replays on them; ``record_jobs`` keeps a record per computation."""
    t = graph.template
    n = len(t)
    is_compute, device, dst, deps, kinds = t.computes, t.device, t.dst, t.deps, t.kind
    parts, sizes, blocks, counts = graph.parts, graph.size_bytes, t.blocks, t.messages
    finish = [0.0] * n
    split: list = [None] * n
    free = {d: q.free_at_s for d, q in queues.items()}   # when each queue is free
    last = dict.fromkeys(queues, (-math.inf, -2, -2))   # (time, cause, task) of last work
    busy = dict.fromkeys(queues, 0.0)
    jobs: list[tuple[float, int, JobRecord]] = []
    flows: list[LoneFlow] = []
    usage: dict = {}               # resource -> [latest end, (start, fluid_end), ...]
    send_s, recv_s = messages.send_s, messages.recv_s
    routes: dict = {}
    media = network.has_media
    packets = network.has_packets

    def occupy(dev: str, ready: float, cause: int, task: int, parts: Parts | None,
               busy_s: float, label: str, nblocks: int) -> float | None:
        """Queue work arriving at ``ready`` on ``dev`` -- a computation of ``parts``, or
        else ``busy_s`` of processor time -- and return when its timer fires, or None if
        the event order would decide where it goes (out of task order, or a tie for
        different reasons)."""
        seen = last[dev]
        if ready < seen[0] or (ready == seen[0] and cause != seen[1] and cause != seen[2]):
            return None
        last[dev] = (ready, cause, task)
        free_at = free[dev]
        start = free_at if free_at > ready else ready
        queue = queues[dev]
        service = queue.parts_time_s(parts, start) if parts else \
            queue.busy_time_s(busy_s, start)
        end = start + service
        if not end < math.inf:    # a device at 100 % load: the queue waits it out
            return None
        free[dev] = end
        busy[dev] += service
        if record_jobs:
            jobs.append((ready, len(jobs), JobRecord(dev, label, nblocks, ready, start, end)))
        return ready + (end - ready)

    def overhead(costs: Mapping[str, float], dev: str, ready: float, cause: int, task: int,
                 count: int, label: str) -> float | None:
        """A message overhead (``count`` messages at ``costs[dev]``) queued on ``dev``:
        when it is through (``ready`` if it costs nothing; None as for :func:`occupy`)."""
        busy_s = count * costs.get(dev, 0.0)
        if not busy_s:
            return ready
        return occupy(dev, ready, cause, task, None, busy_s, label, 0)

    for i in range(n):
        ready, cause = now, -1
        c = m = 0.0
        for d in deps[i]:
            f = finish[d]
            if cause < 0 or f > ready:      # ties: the first, as the engine's split does
                ready, cause = f, d
                c, m = split[d]
        if is_compute[i]:
            fired = occupy(device[i], ready, cause, i, parts[i], 0.0,
                           f"{tag}.{kinds[i]}" if record_jobs else "", blocks[i])
            if fired is None:
                return None
            finish[i] = fired
            split[i] = (c + (fired - ready), m)
            continue
        src, to, count = device[i], dst[i], counts[i]
        begin = overhead(send_s, src, ready, cause, i, count, f"{tag}.send") if send_s \
            else ready
        if begin is None:
            return None
        route = routes.get((src, to))
        if route is None:
            resources, latency, hops = network.route(src, to)
            # the first capacity change on the route from now on (inf: none)
            changes = min([replayed[r].next_change_s(now) for r in resources
                           if r in replayed], default=math.inf)
            route = routes[(src, to)] = (resources, latency, hops,
                                         network.lone_rate_bps(resources), changes)
        resources, latency, hops, rate, changes = route
        latency += count * messages.link_delay_s(resources)
        size = sizes[i]
        if packets:
            latency += network.packet_latency_s(resources, size)
        bits = float(size) * BITS_PER_BYTE
        if media:
            bits += network.air_overhead_bits(resources, False, size)
        if bits > 0:
            if not rate > 0:
                return None
            fluid_end = begin + bits / rate
            near = fluid_end * _NEAR + 1e-15
            for r in resources:
                phases = usage.get(r)
                if phases is None:
                    usage[r] = [fluid_end, (begin, fluid_end)]
                    continue
                if begin <= phases[0] * _NEAR + 1e-15:   # not after every earlier phase
                    for b, e in phases[1:]:    # overlapping or touching: they would share
                        if begin <= e * _NEAR + 1e-15 and b <= near:
                            return None
                if fluid_end > phases[0]:
                    phases[0] = fluid_end
                phases.append((begin, fluid_end))
        else:
            fluid_end = begin
        if changes <= fluid_end:
            return None                          # its capacity changes before it is through
        arrived = fluid_end + latency
        flows.append((src, to, float(size), tag, hops, begin, fluid_end, arrived))
        end = overhead(recv_s, to, arrived, i, i, count, f"{tag}.recv") if recv_s \
            else arrived
        if end is None:
            return None
        finish[i] = end
        split[i] = (c, m + (end - ready))
    compute_s, comm_s = split[t.sink]
    return FastPass(finish[t.sink], compute_s, comm_s, flows, jobs,
                    {d: (free[d], busy[d]) for d in free})
