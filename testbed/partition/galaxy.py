"""``galaxy``: each layer's attention shared over a group of devices, groups pipelined.

Galaxy (Ye et al., arXiv 2405.17245) runs every Transformer layer in parallel over a group
of devices, giving each a share of the work in proportion to its compute. Here a layer's
attention blocks (one per K/V head, with their caches) are shared over the group in
proportion to :attr:`DeviceState.effective_flops` (largest remainder, capped by memory).
The block model of this testbed cannot split one FFN (or proj) block over devices, so
Galaxy's tensor parallelism of the FFN is not modelled: proj and ffn of every layer run on
the group's device with the most compute. The synchronisation Galaxy implies is then the
traffic the engine already sends: the all-gather of head outputs before the projection is
the head-output flows into the proj device, and the broadcast of the hidden state to the
next layer is the flow from the ffn device to every device hosting that layer's attention.

Groups are pipelined over contiguous layer ranges. Search: the candidates sorted by
effective compute (most first, ties in candidate order) are cut into groups of ``s``
consecutive devices, for every ``s`` from 1 to the number of candidates; for each ``s`` a
DP over (layers placed, last group used) gives the groups, in that order, contiguous layer
ranges (a group may get none) minimising the token latency of
:func:`~testbed.plan.delay.token_delay`; the best of these placements by
:func:`~testbed.plan.delay.estimate_token_delay` wins. A device holds at most
``max_memory_fraction`` of its block memory (bytes) at the end of the decision interval.

Static once decided: later decisions keep the placement while its devices are candidates
and it still fits their memory; otherwise it re-decides.
"""

from __future__ import annotations

import math

from testbed.model.blocks import ATTN, FFN, PROJ
from testbed.partition.base import PARTITIONERS, Infeasible
from testbed.partition.edgeshard import StaticLayerBased
from testbed.plan.delay import estimate_token_delay_s
from testbed.plan.observation import Observation
from testbed.plan.placement import Placement


def share(total: int, weights: list[float], caps: list[int]) -> list[int] | None:
    """``total`` items split in proportion to ``weights`` by largest remainder, then
    topped up (largest unmet quota first) where ``caps`` stop a share; None if they don't fit."""
    if sum(caps) < total:
        return None
    weight = sum(weights)
    quota = [total * w / weight if weight > 0 else total / len(weights) for w in weights]
    counts = [min(math.floor(q), c) for q, c in zip(quota, caps)]
    order = sorted(range(len(counts)), key=lambda i: (counts[i] - quota[i], i))
    left = total - sum(counts)
    while left:
        for i in order:
            if left and counts[i] < caps[i]:
                counts[i] += 1
                left -= 1
    return counts


@PARTITIONERS.register("galaxy")
class Galaxy(StaticLayerBased):
    """Attention split over device groups by compute, proj and ffn on the group's fastest."""

    name = "galaxy"
    places_shards = False   # proj and ffn of a group's layers go to its lead device whole

    def plan(self, obs: Observation) -> Placement:
        names = list(obs.candidates)
        if not names:
            raise Infeasible("no device is up to host blocks")
        names.sort(key=lambda d: -obs.device(d).effective_flops)   # stable: ties keep order
        best = None
        for size in range(1, len(names) + 1):
            groups = [names[i:i + size] for i in range(0, len(names), size)]
            placement = _Pipeline(obs, groups, self.fraction).best()
            if placement is not None:
                delay = estimate_token_delay_s(obs, placement)
                if best is None or delay < best[0]:
                    best = (delay, placement)
        if best is None:
            raise Infeasible(f"no grouping of the devices holds {obs.model.name}: a group's "
                             f"fastest device must hold proj and ffn of all its layers "
                             f"({(obs.memory_bytes('proj') + obs.memory_bytes('ffn')) / 2**20:.1f}"
                             f" MiB each) within {self.fraction:g} of its memory")
        return best[1]


class _Pipeline:
    """Layer ranges for a fixed list of groups (each led by its first, fastest device)."""

    def __init__(self, obs: Observation, groups: list[list[str]], fraction: float):
        self.obs, self.groups = obs, groups
        self.budget = {d: fraction * obs.device(d).block_memory_bytes for g in groups for d in g}
        self.attn = obs.memory_bytes(ATTN)
        self.main = obs.memory_bytes(PROJ) + obs.memory_bytes(FFN)
        self._splits: dict[tuple[int, int], list[int] | None] = {}
        self._inner: dict[tuple[int, int], float] = {}   # a layer fed by the group's lead (s)

    def split(self, g: int, layers: int) -> list[int] | None:
        """Attention blocks per layer on each device of group ``g`` when it hosts ``layers``."""
        key = (g, layers)
        if key not in self._splits:
            caps = []
            for i, d in enumerate(self.groups[g]):
                fixed = self.main if i == 0 else 0.0
                n = max(-1, math.floor((self.budget[d] / layers - fixed) / self.attn))
                while n >= 0 and layers * (n * self.attn + fixed) > self.budget[d]:
                    n -= 1   # guard against rounding up
                caps.append(n)   # -1: not even proj and ffn fit
            flops = [self.obs.device(d).effective_flops for d in self.groups[g]]
            if caps[0] < 0:
                self._splits[key] = None
            else:
                capped = [max(c, 0) for c in caps]
                self._splits[key] = share(self.obs.model.attn_blocks_per_layer, flops, capped)
        return self._splits[key]

    def layer_s(self, g: int, split: list[int], src: str) -> float:
        """One layer on group ``g`` with the hidden state coming from ``src`` (s)."""
        obs, work, net = self.obs, self.obs.work, self.obs.network
        lead = self.groups[g][0]
        slowest = max(net.transfer_time_s(src, d, work.input_bytes)
                      + n * obs.device(d).compute_time_s(work.attn)
                      + net.transfer_time_s(d, lead, n * work.attn.output_bytes)
                      for d, n in zip(self.groups[g], split) if n > 0)
        return (slowest + obs.device(lead).compute_time_s(work.proj)
                + obs.device(lead).compute_time_s(work.ffn))

    def best(self) -> Placement | None:
        """The least-latency layer ranges over the groups (in order), or None if none fit."""
        obs, n_layers, ctl = self.obs, self.obs.model.n_layers, self.obs.controller
        # state (layers placed, last group used or -1) -> (time s, [(group, layers), ...])
        states: list[dict[int, tuple[float, list]]] = [{} for _ in range(n_layers + 1)]
        states[0][-1] = (0.0, [])
        for done in range(n_layers):
            for last, (time, path) in states[done].items():
                src = ctl if last < 0 else self.groups[last][0]
                for g in range(last + 1, len(self.groups)):
                    lead = self.groups[g][0]
                    for layers in range(1, n_layers - done + 1):
                        split = self.split(g, layers)
                        if split is None:
                            break   # fewer layers always fit where more do
                        if (g, layers) not in self._inner:
                            self._inner[g, layers] = self.layer_s(g, split, lead)
                        value = (time + self.layer_s(g, split, src)
                                 + (layers - 1) * self._inner[g, layers])
                        old = states[done + layers].get(g)
                        if old is None or value < old[0]:
                            states[done + layers][g] = (value, path + [(g, layers)])
        ends = states[n_layers]
        if not ends:
            return None
        net, out = obs.network, obs.work.output_bytes
        last = min(ends, key=lambda g: ends[g][0]
                   + net.transfer_time_s(self.groups[g][0], ctl, out))
        assignment = []
        for g, layers in ends[last][1]:
            group, split = self.groups[g], self.split(g, layers)
            assert split is not None   # the search keeps only steps that have a split
            per_layer = [d for d, n in zip(group, split) for _ in range(n)]
            assignment += (per_layer + [group[0], group[0]]) * layers
        return Placement(obs.model, assignment)
