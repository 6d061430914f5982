"""The closed form of a task graph: its critical path when nothing contends.

Every compute task takes its roofline time on its device as the device is now (the sum
over its kernels of count x roofline); every transfer takes its messages' send overhead,
the path latency plus its bytes over the bottleneck bandwidth of a lone flow, any
per-message link delay, and the receive overhead. A task starts when its last dependency
ends; the pass ends when the last task does. ``queues=True`` also makes each device run its
tasks (and message overheads) one at a time, in the order they become ready (ties: task
order), as the engine's FIFO queues do; links still never contend.

With constant capacities and no two flows sharing a link, the engine's latency equals
:func:`critical_path` with ``queues=True`` (and with ``queues=False`` when no device has
two tasks ready at once, e.g. whenever messages cost nothing beyond bytes and latency under
``head_level``). The split of the latency into compute and transfer time follows the
critical path back from the last task (ties: the first dependency).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass

from testbed.plan.graph import COMPUTE, TaskGraph
from testbed.plan.messages import NO_MESSAGE_COSTS, MessageCosts
from testbed.plan.network_view import NetworkView


@dataclass(frozen=True)
class Delay:
    """A pass's latency (s), split along its critical path into compute and transfers."""

    total_s: float
    compute_s: float
    comm_s: float


def task_durations(graph: TaskGraph, devices: Mapping, network: NetworkView,
                   messages: MessageCosts = NO_MESSAGE_COSTS) -> list[tuple[float, float, float]]:
    """Per task: (send overhead, main part, receive overhead) in s. The main part of a
    compute task is its roofline time on ``devices[device]`` (a
    :class:`~testbed.plan.observation.DeviceState`), of a transfer its lone-flow time plus
    per-message link delays."""
    t = graph.template
    out = []
    for i, op in enumerate(t.op):
        if op == COMPUTE:
            state = devices[t.device[i]]
            total = 0.0
            for cost, count in graph.parts[i]:
                total += count * state.compute_time_s(cost)
            out.append((0.0, total, 0.0))
        else:
            src, dst, m = t.device[i], t.dst[i], t.messages[i]
            main = network.transfer_time_s(src, dst, graph.size_bytes[i])
            extra = messages.link_delay_s(network.topology.path(src, dst))
            out.append((m * messages.send(src), main + m * extra if extra else main,
                        m * messages.recv(dst)))
    return out


def critical_path(graph: TaskGraph, devices: Mapping, network: NetworkView,
                  messages: MessageCosts = NO_MESSAGE_COSTS, *, queues: bool = False) -> Delay:
    """The latency of one pass of ``graph`` (s) with nothing contending (see the module)."""
    durations = task_durations(graph, devices, network, messages)
    if queues:
        return _with_queues(graph, durations)
    t = graph.template
    n = len(t)
    finish = [0.0] * n
    split = [(0.0, 0.0)] * n
    for i in range(n):
        start, c, m = 0.0, 0.0, 0.0
        best = None
        for d in t.deps[i]:
            if best is None or finish[d] > best:
                best = finish[d]
                c, m = split[d]
        if best is not None:
            start = best
        send, main, recv = durations[i]
        if t.op[i] == COMPUTE:
            finish[i] = start + main
            split[i] = (c + main, m)
        else:
            end = start + send + main + recv if (send or recv) else start + main
            finish[i] = end
            split[i] = (c, m + (end - start))
    sink = t.sink
    return Delay(finish[sink], *split[sink])


def _with_queues(graph: TaskGraph, durations: list[tuple[float, float, float]]) -> Delay:
    """List scheduling on FIFO device queues: a small discrete-event pass."""
    t = graph.template
    n = len(t)
    left = [len(d) for d in t.deps]
    finish = [0.0] * n
    split = [(0.0, 0.0)] * n
    began = [0.0] * n
    free: dict[str, float] = {}
    events: list[tuple[float, int, int, int]] = []   # (time, sequence, task, stage)
    sequence = 0

    def push(time: float, task: int, stage: int) -> None:
        nonlocal sequence
        heapq.heappush(events, (time, sequence, task, stage))
        sequence += 1

    def occupy(device: str, ready: float, busy: float) -> float:
        start = max(ready, free.get(device, 0.0))
        free[device] = start + busy
        return start + busy

    for i in range(n):
        if not left[i]:
            push(0.0, i, 0)
    while events:
        now, _, i, stage = heapq.heappop(events)
        send, main, recv = durations[i]
        if stage == 0:                      # ready: queue the work (or the send overhead)
            began[i] = now
            if t.op[i] == COMPUTE:
                push(occupy(t.device[i], now, main), i, 3)
            elif send:
                push(occupy(t.device[i], now, send), i, 1)
            else:
                push(now, i, 1)
        elif stage == 1:                    # the bytes travel
            push(now + main, i, 2)
        elif stage == 2:                    # arrived: the receive overhead
            push(occupy(t.dst[i], now, recv) if recv else now, i, 3)
        else:                               # done
            finish[i] = now
            c = m = 0.0
            best = None
            for d in t.deps[i]:
                if best is None or finish[d] > best:
                    best = finish[d]
                    c, m = split[d]
            if t.op[i] == COMPUTE:
                split[i] = (c + (now - began[i]), m)
            else:
                split[i] = (c, m + (now - began[i]))
            for s in t.successors[i]:
                left[s] -= 1
                if not left[s]:
                    push(now, s, 0)
    sink = t.sink
    return Delay(finish[sink], *split[sink])
