"""The engine's side of a task graph: run one pass as SimPy events.

A task starts when its last dependency ends. A compute task is queued on its device's
FIFO :class:`~testbed.sim.compute.ComputeQueue`; a transfer first queues its messages'
send overhead on the sender's queue (if any), then travels as one flow of the max-min fair
:class:`~testbed.sim.network.Network`, then queues the receive overhead on the receiver.
Tasks that become ready at the same instant start in task order. ``done`` fires with
``(compute_s, comm_s)``: the pass's time split along its critical path (the dependency
that ended last; ties: the first), compute including time waiting in a device queue,
transfers including time lost to contention.

A :class:`GraphRunner` is made once per graph template and runs one pass after another
(:meth:`GraphRunner.run`), re-using its per-task callbacks: a pass allocates only its
events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import simpy

from testbed.plan.graph import COMPUTE, GraphTemplate, Parts, TaskGraph
from testbed.plan.messages import NO_MESSAGE_COSTS, MessageCosts
from testbed.sim.compute import ComputeQueue
from testbed.sim.network import Network

_Callback = Callable[[simpy.Event], None]
"""What an event calls when it fires."""


class _Travel(Protocol):
    """A transfer's start: an event callback, or called directly."""

    def __call__(self, event: simpy.Event | None = None, /) -> None: ...


class GraphRunner:
    """Runs passes of one template; :meth:`run` starts one and returns its ``done``."""

    def __init__(self, env: simpy.Environment, network: Network,
                 queues: dict[str, ComputeQueue], template: GraphTemplate,
                 messages: MessageCosts = NO_MESSAGE_COSTS, kind: str = "inference"):
        self.env, self.network, self.queues = env, network, queues
        self.template, self.messages, self.kind = template, messages, kind
        n = len(template)
        self._compute = template.computes
        self._deps, self._succ = template.deps, template.successors
        self._sink = template.sink
        self._roots = [i for i in range(n) if not template.deps[i]]
        self.graph: TaskGraph | None = None
        self.tag = ""
        self.done: simpy.Event | None = None
        self._left: list[int] = [0] * n
        self._end = [0.0] * n
        self._split: list[tuple[float, float]] = [(0.0, 0.0)] * n
        self._base: list[tuple[float, float]] = [(0.0, 0.0)] * n
        self._began = [0.0] * n
        self._labels: list[str] = []
        self._parts: list[Parts] = []
        self._lefts = [len(d) for d in template.deps]
        self._queue_of = [queues[template.device[i]] if self._compute[i] else None
                          for i in range(n)]
        self._recording = any(q.records is not None for q in queues.values())
        self._start = self._make_start()
        self._finish = self._make_finish()
        self._done_cb = [self._make_done(i) for i in range(n)]
        self._arrived_cb = [self._make_arrived(i) for i in range(n)]
        self._travel_cb = [self._make_travel(i) for i in range(n)]

    def run(self, graph: TaskGraph, tag: str) -> simpy.Event:
        """Start a pass of ``graph`` (bound to this runner's template) now."""
        if graph.template is not self.template:
            raise ValueError("a runner runs passes of its own template")
        if self.done is not None and not self.done.triggered:
            raise RuntimeError("a pass of this graph is still running")
        self.graph, self.tag, self._parts = graph, tag, graph.parts
        self.done = self.env.event()
        self._left[:] = self._lefts
        if self._recording:
            self._labels = [f"{tag}.{k}" for k in self.template.kind]
        for i in self._roots:
            self._start(i)
        return self.done

    # ---------------------------------------------------------------- callbacks
    def _make_done(self, i: int) -> _Callback:
        compute = self._compute[i]
        env, base, began, finish = self.env, self._base, self._began, self._finish

        if compute:
            def done(_ev: simpy.Event) -> None:
                c, m = base[i]
                finish(i, c + env.now - began[i], m)
        else:
            def done(_ev: simpy.Event) -> None:
                c, m = base[i]
                finish(i, c, m + env.now - began[i])
        return done

    def _make_arrived(self, i: int) -> _Callback | None:
        """What runs when a transfer's last byte is in: its receive overhead, or done."""
        template, messages = self.template, self.messages
        if template.op[i] == COMPUTE:
            return None
        dst = template.dst[i]
        per_message = messages.recv(dst) if messages.recv_s else 0.0
        if not per_message:
            return self._done_cb[i]
        busy = template.messages[i] * per_message
        queues, done = self.queues, self._done_cb[i]

        def arrived(_ev: simpy.Event) -> None:
            queues[dst].submit_busy(busy, f"{self.tag}.recv").callbacks.append(done)
        return arrived

    def _make_travel(self, i: int) -> _Travel | None:
        template = self.template
        if template.op[i] == COMPUTE:
            return None
        src, dst, count = template.device[i], template.dst[i], template.messages[i]
        extra = count * self.messages.link_delay_s(self.network.route(src, dst)[0])
        transfer, arrived, kind = self.network.transfer, self._arrived_cb[i], self.kind

        def travel(_ev: simpy.Event | None = None) -> None:
            graph = self.graph
            # run() sets the graph first; a transfer always has an arrival callback
            assert graph is not None and arrived is not None
            transfer(src, dst, graph.size_bytes[i], kind, self.tag,
                     extra_latency_s=extra).callbacks.append(arrived)
        return travel

    # ---------------------------------------------------------------- mechanics
    def _make_start(self) -> Callable[[int], None]:
        """``start(i)``: task ``i``'s dependencies are done; start it now."""
        env, deps_of, end, split = self.env, self._deps, self._end, self._split
        base, began, is_compute = self._base, self._began, self._compute
        queue_of, blocks, messages = self._queue_of, self.template.blocks, self.messages
        send_s, device, counts = messages.send_s, self.template.device, self.template.messages
        zero = (0.0, 0.0)

        def start(i: int) -> None:
            deps = deps_of[i]
            if len(deps) == 1:
                base[i] = split[deps[0]]
            elif deps:
                best = deps[0]
                for d in deps:
                    if end[d] > end[best]:
                        best = d
                base[i] = split[best]
            else:
                base[i] = zero
            began[i] = env.now
            if is_compute[i]:
                queue = queue_of[i]
                assert queue is not None   # a compute task's device
                queue.submit_parts(self._parts[i], blocks[i],
                                   self._labels[i] if self._recording else "",
                                   ).callbacks.append(self._done_cb[i])
                return
            travel = self._travel_cb[i]
            assert travel is not None   # a transfer's
            if send_s:
                busy = counts[i] * send_s.get(device[i], 0.0)
                if busy:
                    self.queues[device[i]].submit_busy(
                        busy, f"{self.tag}.send").callbacks.append(travel)
                    return
            travel()
        return start

    def _make_finish(self) -> Callable[[int, float, float], None]:
        """``finish(i, compute_s, comm_s)``: task ``i`` is done; start what it freed."""
        env, end, split, left, succ = self.env, self._end, self._split, self._left, self._succ
        start, sink = self._start, self._sink

        def finish(i: int, compute_s: float, comm_s: float) -> None:
            end[i] = env.now
            split[i] = (compute_s, comm_s)
            if i == sink:
                done = self.done
                assert done is not None   # run() made it
                done.succeed((compute_s, comm_s))
                return
            for s in succ[i]:
                n = left[s] - 1
                left[s] = n
                if not n:
                    start(s)
        return finish
