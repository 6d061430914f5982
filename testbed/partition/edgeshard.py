"""``edgeshard``: contiguous ranges of whole layers over an ordered set of devices, by DP.

EdgeShard (Zhang et al., arXiv 2405.14371) cuts the model into shards of consecutive layers,
one shard per selected device, chosen by dynamic programming to minimise a token's latency
within each device's memory. Here a layer (its attention blocks with their K/V caches, proj
and ffn) is never split and each device hosts at most one range, so a token costs exactly
what :func:`~testbed.plan.delay.estimate_token_delay` says of the result:

    T(ctl -> d1) + sum_i n_i t(d_i) + sum_i T(d_i -> d_i+1) + T(dk -> ctl) + LM head

with ``t(d)`` one layer's compute time on ``d`` now (s), ``T`` a hand-over of the hidden
state (s), ``n_i`` the layers on ``d_i``, at most ``cap(d) = floor(max_memory_fraction *
block memory / one layer's memory)`` (bytes; K/V growth over the decision interval included).

All layers cost the same, so the transfers depend only on the order of the devices and the
compute only on the counts. For a set ``S`` of devices the best counts give each one layer
and the rest to the fastest first, up to their caps (optimal for a linear cost in box
constraints). The DP runs over a used-device set and a last device (the state of
EdgeShard's throughput DP), on route times only::

    R({j}, j) = T(ctl -> j);   R(S + {k}, k) = min_j R(S, j) + T(j -> k)

and the answer is the ``S`` minimising ``min_j R(S, j) + T(j -> ctl) + compute(S)``: exact.
Only sets of at most ``n_layers`` devices (each able to hold a layer) are visited. When
there are more than ``EXACT_SETS`` of them, the set leaves the state, as in EdgeShard's
latency DP: ``D(i, k)`` is the least time of the first ``i`` layers with the last range on
device ``k``; each state remembers the devices on its best path, which later ranges may not
reuse. That is a heuristic (a state keeps one path only), never better than the exact DP.

Static once decided: later decisions keep the placement while its devices are candidates
and it still fits their memory (times ``max_memory_fraction``); otherwise it re-decides.
"""

from __future__ import annotations

import math

import numpy as np

from testbed.model.blocks import ATTN, FFN, PROJ
from testbed.errors import bad_value
from testbed.partition.base import PARTITIONERS, Infeasible, Partitioner
from testbed.plan.observation import Observation
from testbed.plan.placement import Placement

EXACT_SETS = 1 << 14
"""Largest number of device sets the exact DP visits (else the heuristic DP runs)."""


def check_fraction(value: object) -> float:
    """``max_memory_fraction`` as a float in (0, 1], or a ConfigError."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value <= 1:
        raise bad_value(value, "a fraction in (0, 1]", field="max_memory_fraction")
    return float(value)


def keeps_current(obs: Observation, fraction: float) -> bool:
    """True if the current placement uses only candidates and fits ``fraction`` of their
    block memory at the end of the decision interval."""
    if obs.placement is None:
        return False
    candidates = set(obs.candidates)
    for device, kinds in obs.placement.kind_counts().items():
        need = sum(n * obs.memory_bytes(kind) for kind, n in kinds.items())
        if device not in candidates or need > fraction * obs.device(device).block_memory_bytes:
            return False
    return True


def layer_memory_bytes(obs: Observation) -> float:
    """Memory of one whole layer at the end of the decision interval (bytes)."""
    model = obs.model
    return (model.attn_blocks_per_layer * obs.memory_bytes(ATTN)
            + model.proj_shards * obs.memory_bytes(PROJ)
            + model.ffn_shards * obs.memory_bytes(FFN))


def layers_that_fit(budget_bytes: float, layer_bytes: float, n_layers: int) -> int:
    """How many whole layers of ``layer_bytes`` fit in ``budget_bytes`` (at most n_layers)."""
    if layer_bytes <= 0:
        return n_layers if budget_bytes >= 0 else 0
    n = min(n_layers, max(0, math.floor(budget_bytes / layer_bytes)))
    while n > 0 and n * layer_bytes > budget_bytes:   # guard against rounding up
        n -= 1
    return n


class StaticLayerBased(Partitioner):
    """A layer-based method: decided once, kept while its devices are candidates and it
    fits (``max_memory_fraction`` of each device's memory); subclasses give :meth:`plan`."""

    def __init__(self, seed=None, max_memory_fraction: float = 1.0):
        super().__init__(seed)
        self.fraction = check_fraction(max_memory_fraction)

    def decide(self, obs: Observation) -> Placement:
        if obs.placement is not None and keeps_current(obs, self.fraction):
            return obs.placement
        return self.plan(obs)

    def plan(self, obs: Observation) -> Placement:
        raise NotImplementedError


@PARTITIONERS.register("edgeshard")
class EdgeShard(StaticLayerBased):
    """Whole layers in contiguous ranges, one range per device, minimum token latency."""

    name = "edgeshard"

    def plan(self, obs: Observation) -> Placement:
        n_layers, layer_bytes = obs.model.n_layers, layer_memory_bytes(obs)
        if not obs.candidates:
            raise Infeasible("no device is up to host blocks")
        fits = {d: layers_that_fit(self.fraction * obs.device(d).block_memory_bytes,
                                   layer_bytes, n_layers) for d in obs.candidates}
        names = [d for d in obs.candidates if fits[d] > 0]
        cap = [fits[d] for d in names]
        if sum(cap) < n_layers:
            raise Infeasible(f"the devices can hold {sum(cap)} of the {n_layers} whole layers "
                             f"of {obs.model.name} (one layer needs {layer_bytes / 2**20:.1f} "
                             f"MiB, within {self.fraction:g} of each device's memory)")
        work, net, ctl = obs.work, obs.network, obs.controller
        model = obs.model
        per_layer = [model.attn_blocks_per_layer * obs.device(d).compute_time_s(work.attn)
                     + model.proj_shards * obs.device(d).compute_time_s(work.proj)
                     + model.ffn_shards * obs.device(d).compute_time_s(work.ffn)
                     for d in names]
        hop = np.array([[net.transfer_time_s(a, b, work.input_bytes) for b in names]
                        for a in names])
        start = [net.transfer_time_s(ctl, d, work.input_bytes) for d in names]
        back = [net.transfer_time_s(d, ctl, work.output_bytes) for d in names]
        sets = sum(math.comb(len(names), k) for k in range(1, min(len(names), n_layers) + 1))
        solve = _by_sets if sets <= EXACT_SETS else _by_layers
        shards = solve(n_layers, per_layer, cap, hop, start, back)
        devices = [names[k] for k, count in shards for _ in range(count)]
        return Placement(obs.model, [devices[block.layer] for block in obs.blocks])


def _fill(members: list[int], n_layers: int, per_layer, cap) -> dict[int, int] | None:
    """Layers per device of ``members``: one each, the rest fastest first up to the caps."""
    if len(members) > n_layers or sum(cap[k] for k in members) < n_layers:
        return None
    counts = {k: 1 for k in members}
    left = n_layers - len(members)
    for k in sorted(members, key=lambda k: (per_layer[k], k)):
        extra = min(left, cap[k] - 1)
        counts[k] += extra
        left -= extra
    return counts


def _by_sets(n_layers, per_layer, cap, hop, start, back) -> list[tuple[int, int]]:
    """Exact DP over (set of devices used, last device); returns [(device, layers), ...]."""
    n = len(per_layer)
    route: dict[int, np.ndarray] = {}    # set (bit mask) -> route time ending on each member
    parent: dict[int, np.ndarray] = {}   # set -> previous device of each member's best route
    level = []
    for j in range(n):
        row = np.full(n, np.nan)
        row[j] = start[j]
        route[1 << j], parent[1 << j] = row, np.full(n, -1)
        level.append(1 << j)
    for _ in range(min(n, n_layers) - 1):
        following = []
        for mask in level:
            through = route[mask][:, None] + hop          # [j, k]: ... -> j -> k
            best, arg = np.nanmin(through, axis=0), np.nanargmin(through, axis=0)
            for k in range(n):
                if mask >> k & 1:
                    continue
                bigger = mask | 1 << k
                if bigger not in route:
                    route[bigger], parent[bigger] = np.full(n, np.nan), np.full(n, -1)
                    following.append(bigger)
                old = route[bigger][k]
                if np.isnan(old) or best[k] < old:
                    route[bigger][k], parent[bigger][k] = best[k], arg[k]
        level = following
    choice = None
    for mask, row in route.items():
        members = [k for k in range(n) if mask >> k & 1]
        counts = _fill(members, n_layers, per_layer, cap)
        if counts is None:
            continue
        last = min(members, key=lambda j: row[j] + back[j])
        total = row[last] + back[last] + sum(c * per_layer[k] for k, c in counts.items())
        if choice is None or total < choice[0]:
            choice = (total, mask, last, counts)
    assert choice is not None   # the caps hold every layer (checked by the caller)
    _, mask, last, counts = choice
    order = []
    while last >= 0:
        order.append(last)
        mask, last = mask & ~(1 << last), int(parent[mask][last])
    return [(k, counts[k]) for k in reversed(order)]


def _by_layers(n_layers, per_layer, cap, hop, start, back) -> list[tuple[int, int]]:
    """Heuristic DP over (layers placed, last device), one best path per state."""
    n = len(per_layer)
    states: list[dict[int, tuple[float, tuple]]] = [{} for _ in range(n_layers + 1)]
    states[0][-1] = (0.0, ())
    for done in range(n_layers):
        for j, (time, path) in states[done].items():
            used = {k for k, _ in path}
            for k in range(n):
                if k in used:
                    continue
                hand_over = start[k] if j < 0 else hop[j, k]
                for count in range(1, min(cap[k], n_layers - done) + 1):
                    value = time + hand_over + count * per_layer[k]
                    old = states[done + count].get(k)
                    if old is None or value < old[0]:
                        states[done + count][k] = (value, path + ((k, count),))
    if not states[n_layers]:   # every best path ran out of memory: largest caps first
        members, held = [], 0
        for k in sorted(range(n), key=lambda k: (-cap[k], k)):
            if held < n_layers:
                members.append(k)
                held += cap[k]
        counts = _fill(sorted(members), n_layers, per_layer, cap)
        assert counts is not None   # the caps hold every layer (checked by the caller)
        return [(k, counts[k]) for k in sorted(members)]
    last = min(states[n_layers], key=lambda k: states[n_layers][k][0] + back[k])
    return list(states[n_layers][last][1])
