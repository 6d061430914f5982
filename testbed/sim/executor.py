"""The engine's side of a task graph: run one pass as SimPy events.

A task starts when its last dependency ends. A compute task is queued on its device's
FIFO :class:`~testbed.sim.compute.ComputeQueue`; a transfer first queues its messages'
send overhead on the sender's queue (if any), then travels as one flow of the max-min fair
:class:`~testbed.sim.network.Network`, then queues the receive overhead on the receiver.
Tasks that become ready at the same instant start in task order. ``done`` fires with
``(compute_s, comm_s)``: the pass's time split along its critical path (the dependency
that ended last; ties: the first), compute including time waiting in a device queue,
transfers including time lost to contention.
"""

from __future__ import annotations

import simpy

from testbed.plan.graph import COMPUTE, TaskGraph
from testbed.plan.messages import NO_MESSAGE_COSTS, MessageCosts
from testbed.sim.compute import ComputeQueue
from testbed.sim.network import Network


class GraphRun:
    """Runs one bound task graph; ``done`` fires with ``(compute_s, comm_s)``."""

    __slots__ = ("env", "network", "queues", "graph", "tag", "messages", "done", "_left",
                 "_end", "_split", "_labels", "_kind")

    def __init__(self, env: simpy.Environment, network: Network,
                 queues: dict[str, ComputeQueue], graph: TaskGraph, tag: str,
                 messages: MessageCosts = NO_MESSAGE_COSTS, kind: str = "inference"):
        self.env = env
        self.network = network
        self.queues = queues
        self.graph = graph
        self.tag = tag
        self.messages = messages
        self._kind = kind
        self.done = env.event()
        template = graph.template
        n = len(template)
        self._left = [len(d) for d in template.deps]
        self._end = [0.0] * n
        self._split: list[tuple[float, float]] = [(0.0, 0.0)] * n
        self._labels = [f"{tag}.{k}" for k in template.kind] if queues else []
        for i in range(n):
            if not self._left[i]:
                self._start(i)

    def _start(self, i: int) -> None:
        template = self.graph.template
        c = m = 0.0
        best = None
        end = self._end
        for d in template.deps[i]:
            if best is None or end[d] > best:
                best = end[d]
                c, m = self._split[d]
        env = self.env
        start = env.now
        if template.op[i] == COMPUTE:
            event = self.queues[template.device[i]].submit_parts(
                self.graph.parts[i], template.blocks[i], self._labels[i])
            event.callbacks.append(lambda _ev: self._finish(i, c + env.now - start, m))
            return
        src, dst, count = template.device[i], template.dst[i], template.messages[i]
        messages = self.messages
        send = count * messages.send(src) if messages.send_s else 0.0
        recv = count * messages.recv(dst) if messages.recv_s else 0.0

        def arrived(_ev) -> None:
            if recv:
                self.queues[dst].submit_busy(recv, f"{self.tag}.recv").callbacks.append(
                    lambda _e: self._finish(i, c, m + env.now - start))
            else:
                self._finish(i, c, m + env.now - start)

        def travel(_ev=None) -> None:
            extra = count * self._link_delay(src, dst) if messages.link_s else 0.0
            self.network.transfer(src, dst, self.graph.size_bytes[i], self._kind, self.tag,
                                  extra_latency_s=extra).callbacks.append(arrived)

        if send:
            self.queues[src].submit_busy(send, f"{self.tag}.send").callbacks.append(travel)
        else:
            travel()

    def _link_delay(self, src: str, dst: str) -> float:
        resources, _, _ = self.network.route(src, dst)
        link_s = self.messages.link_s
        return sum(link_s.get(r, 0.0) for r in resources)

    def _finish(self, i: int, compute_s: float, comm_s: float) -> None:
        self._end[i] = self.env.now
        self._split[i] = (compute_s, comm_s)
        successors = self.graph.template.successors[i]
        if not successors and i == self.graph.template.sink:
            self.done.succeed((compute_s, comm_s))
            return
        left = self._left
        for s in successors:
            left[s] -= 1
            if not left[s]:
                self._start(s)
