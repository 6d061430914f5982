"""Collectives as task-graph fragments: all-reduce by ring, tree or star, and broadcast.

Each function appends transfers (and the bookkeeping they imply) to a
:class:`~testbed.plan.graph.GraphBuilder` and returns, per participant, the task after
which that participant holds the result (``None``: it held it already). A tensor is ``size``
= ``((term, count),)`` bytes of a step (e.g. ``(("hidden", 1),)``: one hidden state).

- ``ring`` all-reduce over N devices (reduce-scatter then all-gather, as NCCL and Gloo do):
  2(N-1) steps; in each, every device sends one chunk of S/N to its successor on the ring
  (once the previous chunk has left and the one from its predecessor is in), so each
  device sends 2(N-1)/N x S bytes in all.
- ``tree``: a binomial tree rooted at the first participant: partial sums go up in
  ceil(log2 N) rounds, the result comes back down the same way (a device forwards to its
  children one after another, once it has the tensor); every message is S.
- ``star``: every other participant sends its partial (S) to the first, which adds them
  and sends the result (S) back to each: the root sends and receives (N-1) x S.

Adding partial sums costs no modelled time (a few thousand additions per step).
"""

from __future__ import annotations

from collections.abc import Sequence

from testbed.errors import bad_value
from testbed.plan.graph import GraphBuilder, Recipe

ALGORITHMS = ("ring", "tree", "star")


def check_algorithm(name: object, field: str = "collective") -> str:
    if name not in ALGORITHMS:
        raise bad_value(name, "one of " + ", ".join(ALGORITHMS), field=field)
    return str(name)


def _scaled(size: Recipe, factor: float) -> Recipe:
    return tuple((term, count * factor) for term, count in size)


def all_reduce(g: GraphBuilder, algorithm: str, devices: Sequence[str], ready: Sequence,
               size: Recipe, *, layer: int, kind: str = "allreduce") -> list:
    """Sum the partial tensors of ``devices`` (each available once its ``ready`` task is
    done) so that every one of them holds the sum; returns each device's finishing task."""
    n = len(devices)
    if n == 1:
        return [ready[0]]
    if algorithm == "ring":
        return _ring(g, devices, ready, size, layer, kind)
    if algorithm == "tree":
        up = _tree_reduce(g, devices, ready, size, layer, kind)
        return broadcast(g, "tree", devices, up, size, layer=layer, kind=kind)
    if algorithm == "star":
        root = devices[0]
        gathered = [g.transfer(d, root, kind, size, (ready[k],), layer=layer)
                    for k, d in enumerate(devices) if k > 0]
        summed = g.after(ready[0], gathered)
        return broadcast(g, "star", devices, summed, size, layer=layer, kind=kind)
    raise bad_value(algorithm, "one of " + ", ".join(ALGORITHMS), field="collective")


def broadcast(g: GraphBuilder, algorithm: str, devices: Sequence[str], ready, size: Recipe,
              *, layer: int, kind: str = "broadcast") -> list:
    """Send the tensor held by ``devices[0]`` (once ``ready``) to all the others; returns
    each device's receiving task (``ready`` for the first). ``ring`` pipelines it along the
    ring (each device forwards to its successor), ``tree`` down a binomial tree, ``star``
    straight from the first device."""
    n = len(devices)
    done: list = [None] * n
    done[0] = ready
    if algorithm == "star":
        for k in range(1, n):
            done[k] = g.transfer(devices[0], devices[k], kind, size, ready, layer=layer)
    elif algorithm == "ring":
        for k in range(1, n):
            done[k] = g.transfer(devices[k - 1], devices[k], kind, size, done[k - 1],
                                 layer=layer)
    elif algorithm == "tree":            # widest span first: a device forwards once it has
        span = 1                          # received, one child after another
        while span * 2 < n:
            span *= 2
        sending = list(done)
        while span >= 1:
            for k in range(0, n, 2 * span):
                if k + span < n:
                    sent = g.transfer(devices[k], devices[k + span], kind, size, sending[k],
                                      layer=layer)
                    done[k + span] = sending[k + span] = sent
                    sending[k] = g.after(sending[k], sent)
            span //= 2
    else:
        raise bad_value(algorithm, "one of " + ", ".join(ALGORITHMS), field="collective")
    return [d if d is not None else ready for d in done]


def _tree_reduce(g: GraphBuilder, devices, ready, size, layer, kind):
    """Partial sums up a binomial tree to ``devices[0]``; returns its finishing tasks."""
    n = len(devices)
    have = [g.after(r) for r in ready]
    step = 1
    while step < n:            # round by round from the leaves: device k + step sends to k
        for k in range(0, n, 2 * step):
            if k + step < n:
                sent = g.transfer(devices[k + step], devices[k], kind, size, have[k + step],
                                  layer=layer)
                have[k] = g.after(have[k], sent)
        step *= 2
    return have[0]


def _ring(g: GraphBuilder, devices, ready, size, layer, kind):
    """Reduce-scatter then all-gather around the ring ``devices[0] -> devices[1] -> ...``:
    2(N-1) steps of one chunk (S/N) per device."""
    n = len(devices)
    chunk = _scaled(size, 1.0 / n)
    own = [g.after(r) for r in ready]
    state = list(own)          # what device k's next send waits for
    for _ in range(2 * (n - 1)):
        sent = [g.transfer(devices[k], devices[(k + 1) % n], kind, chunk, state[k],
                           layer=layer) for k in range(n)]
        # the next chunk goes once the one from the predecessor is in and the link is free
        state = [g.after(own[k], sent[(k - 1) % n], sent[k]) for k in range(n)]
    return [g.after(own[k], sent[(k - 1) % n]) for k in range(n)]
