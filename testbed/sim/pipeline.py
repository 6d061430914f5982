"""One forward pass of the model through a placement, as chained simulation events.

Per layer the hidden state travels from the previous layer's ffn device (the controller
for layer 0) to every device hosting an attention block of the layer; each device queues
its blocks of the layer as one job (identical blocks, run one after another, so the time
is the same as queuing them one by one) and, once they are done, sends their outputs to
the proj device (as the paper's delay formula does); proj's output travels to the ffn
device. After the last layer the hidden state returns to the controller for the LM
head. Transfers between the same pair of devices for the same purpose travel as one
flow (``per_block=True`` runs the reference model with one job and one flow per block;
a test checks both give the same times). The pass reports its latency split along the
critical path into compute and transfer time (s).

This module mirrors :func:`testbed.plan.delay.token_delay` step for step; with constant
capacities and no contention both give the same times.
"""

from __future__ import annotations

from typing import Callable

import simpy

from testbed.plan.placement import Placement
from testbed.plan.work import StepWork
from testbed.sim.compute import ComputeQueue
from testbed.sim.network import Network

Continue = Callable[[float, float], None]  # (critical-path compute s, transfer s) so far


class _Join:
    """Waits for ``n`` branches; continues with the split of the latest one (lowest index
    on ties, as the closed form does)."""

    __slots__ = ("env", "left", "best", "then")

    def __init__(self, env: simpy.Environment, n: int, then: Continue):
        self.env, self.left, self.best, self.then = env, n, None, then

    def arrive(self, index: int, compute_s: float, comm_s: float) -> None:
        key = (self.env.now, -index)
        if self.best is None or key > self.best[0]:
            self.best = (key, compute_s, comm_s)
        self.left -= 1
        if self.left == 0:
            _, compute_s, comm_s = self.best
            self.then(compute_s, comm_s)


class ForwardPass:
    """Runs one pass; ``done`` fires with ``(compute_s, comm_s)`` of the critical path."""

    def __init__(self, env: simpy.Environment, network: Network,
                 queues: dict[str, ComputeQueue], placement: Placement, work: StepWork,
                 controller: str, token: int, per_block: bool = False):
        self.per_block = per_block  # reference mode: one job and one output flow per block,
        # the outputs sent once the device has run its blocks of the layer (as the paper)
        self.env = env
        self.network = network
        self.queues = queues
        self.layers = placement.layers
        self.work = work
        self.controller = controller
        self.tag = f"t{token}"
        self.done = env.event()
        self._layer(0, controller, 0.0, 0.0)

    # each step takes the critical-path split so far and continues with the updated one
    def _send(self, src: str, dst: str, size_bytes: float, then: Continue, compute_s: float,
              comm_s: float, pieces: int = 1) -> None:
        if src == dst:
            then(compute_s, comm_s)
            return
        start = self.env.now
        if self.per_block and pieces > 1:  # reference: one flow per block, sent together
            event = self.env.all_of([
                self.network.transfer(src, dst, size_bytes / pieces, "inference", self.tag)
                for _ in range(pieces)])
        else:
            event = self.network.transfer(src, dst, size_bytes, "inference", self.tag)
        event.callbacks.append(lambda _ev: then(compute_s, comm_s + self.env.now - start))

    def _compute(self, device: str, kind: str, n_blocks: int, then: Continue,
                 compute_s: float, comm_s: float) -> None:
        start = self.env.now
        queue, cost, label = self.queues[device], self.work.cost(kind), f"{self.tag}.{kind}"
        if self.per_block:  # reference: one queued job per block
            for _ in range(n_blocks):
                event = queue.submit(cost, 1, label)
        else:
            event = queue.submit(cost, n_blocks, label)
        event.callbacks.append(lambda _ev: then(compute_s + self.env.now - start, comm_s))

    def _layer(self, index: int, src: str, compute_s: float, comm_s: float) -> None:
        if index == len(self.layers):
            self._send(src, self.controller, self.work.output_bytes, self._lm_head,
                       compute_s, comm_s)
            return
        layer = self.layers[index]
        join = _Join(self.env, len(layer.attn_hosts), lambda c, m: self._proj(index, c, m))
        for branch, (device, n) in enumerate(layer.attn_hosts):

            def to_proj(c, m, device=device, n=n, branch=branch):
                self._send(device, layer.proj, n * self.work.attn.output_bytes,
                           lambda c2, m2: join.arrive(branch, c2, m2), c, m, pieces=n)

            def attend(c, m, device=device, n=n, to_proj=to_proj):
                self._compute(device, "attn", n, to_proj, c, m)

            self._send(src, device, self.work.input_bytes, attend, compute_s, comm_s)

    def _proj(self, index: int, compute_s: float, comm_s: float) -> None:
        layer = self.layers[index]

        def to_ffn(c, m):
            self._send(layer.proj, layer.ffn, self.work.proj.output_bytes, run_ffn, c, m)

        def run_ffn(c, m):
            self._compute(layer.ffn, "ffn", 1, lambda c2, m2: self._layer(index + 1, layer.ffn,
                                                                          c2, m2), c, m)

        self._compute(layer.proj, "proj", 1, to_ffn, compute_s, comm_s)

    def _lm_head(self, compute_s: float, comm_s: float) -> None:
        self._compute(self.controller, "lm_head", 1,
                      lambda c, m: self.done.succeed((c, m)), compute_s, comm_s)

