"""The placement sequence that minimises total generation time, knowing the future.

The decisions of a run form layers of a graph: a node per placement allowed at a
decision, an arc from each placement at one decision to each at the next, its length the
migration between them (blocking) plus the next interval's passes — lengths that depend
on when the arc is taken, since rates and loads change over time. The
:class:`~testbed.horizon.evaluator.HorizonEvaluator` makes every arc FIFO (starting later
never arrives sooner), and on a time-dependent graph with FIFO arcs the earliest arrival
at each node is the only one worth extending (Kaufman and Smith 1993, "Fastest paths in
time-dependent networks"): a label-setting sweep, decision by decision, gives the
fastest sequence over the nodes given.

- ``exact``: the nodes are every placement of the model's blocks on the devices that may
  host them and that fits in memory (plus any placement a partitioner used), so the
  sweep is the optimum over all sequences, under the evaluator. It is used when the
  number of placements is at most ``exact_limit``: the sweep costs that number squared
  per decision. (A time-expanded MILP would solve the same problem only on a time grid;
  the sweep is exact in continuous time.)
- ``candidate_bound``: otherwise the nodes at a decision are the placements the
  candidate partitioners used there; the result is the best switching among them — a
  bound on that candidate set, not the optimum.

Every sequence a partitioner followed is among the nodes, so its regret is never
negative under either kind.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from testbed.errors import ConfigError
from testbed.horizon.evaluator import HorizonEvaluator
from testbed.model.blocks import blocks_of
from testbed.plan.placement import Placement

EXACT = "exact"
CANDIDATE_BOUND = "candidate_bound"
DEFAULT_EXACT_LIMIT = 4096


@dataclass(frozen=True)
class HorizonPath:
    """The fastest sequence found: its total time (s), one placement per decision, the
    kind of optimum and how many placements were searched at each decision."""

    time_s: float
    placements: tuple[Placement, ...]
    kind: str
    searched: tuple[int, ...]

    @property
    def migrations(self) -> int:
        """Decisions at which the placement changes."""
        return sum(a != b for a, b in zip(self.placements, self.placements[1:]))


def placement_count(evaluator: HorizonEvaluator, hosts: Sequence[str]) -> int:
    """How many placements the model's blocks have over ``hosts``."""
    return len(hosts) ** len(blocks_of(evaluator.model))


def all_placements(evaluator: HorizonEvaluator, hosts: Sequence[str]) -> list[Placement]:
    """Every placement of the model's blocks over ``hosts`` that its dataflow can run."""
    n_blocks = len(blocks_of(evaluator.model))
    out = []
    for devices in itertools.product(hosts, repeat=n_blocks):
        placement = Placement(evaluator.model, devices)
        try:
            evaluator.dataflow.check(placement, evaluator.controller)
        except ConfigError:   # a dataflow refuses what it cannot run (PlacementError)
            continue
        out.append(placement)
    return out


def horizon_optimum(evaluator: HorizonEvaluator, used: Iterable[Sequence[Placement]],
                    hosts: Sequence[str], exact_limit: int = DEFAULT_EXACT_LIMIT
                    ) -> HorizonPath:
    """The fastest sequence for ``evaluator``'s run: ``exact`` over every placement on
    ``hosts`` when there are at most ``exact_limit``, else a ``candidate_bound`` over the
    placements of the ``used`` sequences (one placement per decision each)."""
    used = [tuple(seq) for seq in used]
    decisions = len(evaluator.decision_tokens)
    if any(len(seq) != decisions for seq in used):
        raise ValueError(f"every sequence needs one placement per decision ({decisions})")
    if placement_count(evaluator, hosts) <= exact_limit:
        everything = all_placements(evaluator, hosts)
        nodes = [_unique([p for p in everything if evaluator.fits(j, p)] +
                         [seq[j] for seq in used]) for j in range(decisions)]
        kind = EXACT
    else:
        nodes = [_unique([seq[j] for seq in used]) for j in range(decisions)]
        kind = CANDIDATE_BOUND
    if any(not layer for layer in nodes):
        raise ValueError("no placement to search at some decision: give at least one "
                         "sequence or a cluster where some placement fits")
    return shortest_sequence(evaluator, nodes, kind)


def shortest_sequence(evaluator: HorizonEvaluator, nodes: Sequence[Sequence[Placement]],
                      kind: str = CANDIDATE_BOUND) -> HorizonPath:
    """The fastest sequence choosing, at decision ``j``, one of ``nodes[j]`` (earliest
    arrival per node, decision by decision; ties go to the earlier node)."""
    labels = np.array([evaluator.segment_end_s(0, p, 0.0) for p in nodes[0]])
    back: list[np.ndarray] = []
    for j in range(1, len(nodes)):
        after = np.stack([evaluator.as_indices(p) for p in nodes[j]])
        start = np.full(len(nodes[j]), math.inf)
        came = np.full(len(nodes[j]), -1)
        for i, prev in enumerate(nodes[j - 1]):
            if not math.isfinite(labels[i]):
                continue
            ends = evaluator.migration_ends_s(j, evaluator.as_indices(prev), after,
                                              float(labels[i]))
            better = ends < start
            start = np.where(better, ends, start)
            came = np.where(better, i, came)
        labels = np.array([evaluator.segment_end_s(j, p, float(s)) if math.isfinite(s)
                           else math.inf for p, s in zip(nodes[j], start)])
        back.append(came)
    best = int(np.argmin(labels))
    path = [best]
    for came in reversed(back):
        path.append(int(came[path[-1]]))
    path.reverse()
    placements = tuple(nodes[j][i] for j, i in enumerate(path))
    return HorizonPath(float(labels[best]), placements, kind,
                       tuple(len(layer) for layer in nodes))


def _unique(placements: Iterable[Placement]) -> list[Placement]:
    return list(dict.fromkeys(placements))
