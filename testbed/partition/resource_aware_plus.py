"""``resource_aware_plus``: the paper's greedy start, then local search on the true objective.

Starts from the ``resource_aware`` decision (keeping proj and ffn in place too, so that a
steady state is not disturbed), from the current placement when it still fits and from the
whole model on the single fastest device that holds it, and improves each by best-improvement local
search on what a decision is judged by (:func:`testbed.plan.delay.decision_cost_s`):
``decision_interval x token delay + migration delay`` from the current placement, with
every device's memory respected. Moves, per layer:

- move one attention block off the layer's slowest branch to any other device (the only
  attention moves that can shorten the layer; blocks that were migrated away are moved
  first, so a move can also bring a block home, which is what a swap would do);
- put the layer's proj on another device;
- put the layer's ffn on another device (this also changes the next layer's input).

Candidate moves are evaluated exactly and vectorised over devices with the count form of
:mod:`testbed.plan.counts`. Passes over the layers repeat until no move improves the
objective by more than ``min_gain_s`` or ``max_passes`` is reached (deterministic: no
wall-clock budget unless ``time_budget_s`` is given).

Energy: with ``energy_weight_s_per_j`` > 0 (seconds of delay one joule is worth), the
starts (plus the whole model on each device that holds it) and the placements searched from
them are ranked by ``decision cost + weight x decision_interval x token energy``
(:func:`testbed.plan.energy.token_energy_j`: dynamic compute power, energy per bit on every
hop, idle power over the token), so a placement that spends fewer joules can win over a
slightly faster one. The local search itself stays on delay.
"""

from __future__ import annotations

import time

import numpy as np

from testbed.model.blocks import ATTN, FFN, PROJ, BlockKind
from testbed.errors import ConfigError
from testbed.partition.base import PARTITIONERS, Infeasible, MemoryBook, Partitioner
from testbed.partition.single_device import SingleDevice
from testbed.partition.resource_aware import ResourceAware
from testbed.plan.counts import CountDelay, CountLayers
from testbed.plan.delay import decision_cost_s, estimate_token_delay_s
from testbed.plan.energy import token_energy_j
from testbed.plan.observation import Observation
from testbed.plan.placement import Placement
from testbed.units import BITS_PER_BYTE


@PARTITIONERS.register("resource_aware_plus")
class ResourceAwarePlus(Partitioner):
    """Greedy (``resource_aware``) start + bounded local search on delay + migration."""

    name = "resource_aware_plus"
    dataflows = ("head_level",)   # its delay model is the head_level closed form (CountDelay)
    places_shards = False

    def __init__(self, seed=None, max_passes: int = 20, min_gain_s: float = 1e-9,
                 time_budget_s: float | None = None, start_margin: float = 0.25,
                 energy_weight_s_per_j: float = 0.0, **greedy_options):
        super().__init__(seed)
        if not energy_weight_s_per_j >= 0:
            raise ConfigError(f"got {energy_weight_s_per_j!r}; expected a number >= 0 "
                              "(seconds of delay one joule is worth)",
                              field="energy_weight_s_per_j", value=energy_weight_s_per_j)
        self.energy_weight_s_per_j = float(energy_weight_s_per_j)
        self.start_margin = float(start_margin)
        greedy_options.setdefault("keep", "all")
        self.greedy = ResourceAware(seed=seed, migrate="forced", **greedy_options)
        self.max_passes, self.min_gain_s = max_passes, min_gain_s
        self.time_budget_s = time_budget_s

    def decide(self, obs: Observation) -> Placement:
        starts = [self.greedy.decide(obs)]
        if obs.placement is not None and _still_fits(obs, obs.placement):
            starts.append(obs.placement)   # staying put is often the best start
        try:   # and the whole model on one device is where layer-based methods start
            starts.append(SingleDevice(seed=0).decide(obs))
        except Infeasible:
            pass
        if self.energy_weight_s_per_j:   # the frugal devices too: the whole model on each
            starts.extend(_whole_model_placements(obs))
        # search from the most promising start first; another start is searched too only
        # if it begins within ``start_margin`` of the best result so far
        ranked = sorted(((self._objective(obs, p), k, p)
                         for k, p in enumerate(dict.fromkeys(starts))))
        best, best_cost = None, np.inf
        for initial_cost, _, start in ranked:
            if best is not None and initial_cost > best_cost * (1 + self.start_margin):
                continue
            for placement in (start, self._search(obs, start)) if \
                    self.energy_weight_s_per_j else (self._search(obs, start),):
                cost = self._objective(obs, placement)
                if cost < best_cost:
                    best, best_cost = placement, cost
        if best is None:
            # every start costs inf or NaN (e.g. every link into the controller at 0 bit/s):
            # nothing to choose by, so keep to the first start (where it is, or the greedy
            # placement), as resource_aware does; the engine reports the run as stalled
            # if nothing ever moves again
            best = ranked[0][2]
        return best

    def _objective(self, obs: Observation, placement: Placement) -> float:
        """Decision cost (s), plus the weighted energy of the interval's tokens."""
        cost = decision_cost_s(obs, placement, fast=True)
        if self.energy_weight_s_per_j:
            delay = estimate_token_delay_s(obs, placement)
            cost += self.energy_weight_s_per_j * obs.decision_interval * \
                token_energy_j(obs, placement, delay)
        return cost

    def _search(self, obs: Observation, start: Placement) -> Placement:
        search = _Search(obs, start)
        deadline = None if self.time_budget_s is None else \
            time.perf_counter() + self.time_budget_s
        dirty = set(range(search.n_layers))
        for _ in range(self.max_passes):
            changed = set()
            for layer in sorted(dirty):
                if search.rebalance_attention(layer, self.min_gain_s):
                    changed.add(layer)
                while search.improve_attention(layer, self.min_gain_s):
                    changed.add(layer)
                if search.improve_proj(layer, self.min_gain_s):
                    changed.add(layer)
                if search.improve_ffn(layer, self.min_gain_s):
                    changed.update((layer, layer + 1))
            # a layer's moves depend on its own blocks and its input (the previous ffn);
            # memory and migrations are shared, so a change also re-opens its neighbours
            dirty = {k for c in changed for k in (c - 1, c, c + 1) if 0 <= k < search.n_layers}
            if not dirty or (deadline is not None and time.perf_counter() > deadline):
                break
        return search.placement()


def _whole_model_placements(obs: Observation) -> list[Placement]:
    """The whole model on each device that can hold it."""
    book = MemoryBook(obs)
    need = book.total_need()
    n = len(obs.blocks)
    return [Placement(obs.model, [d] * n) for d in obs.candidates if book.free[d] >= need]


def _still_fits(obs: Observation, placement: Placement) -> bool:
    """Every block on a candidate device, and every device's memory respected."""
    allowed = set(obs.candidates)
    used: dict[str, float] = {}
    for block, device in zip(obs.blocks, placement.devices):
        if device not in allowed:
            return False
        used[device] = used.get(device, 0.0) + obs.memory_bytes(block)
    return all(used[d] <= obs.device(d).block_memory_bytes for d in used)


class _Search:
    """Count placement under search, with incremental delay, memory and migration state."""

    def __init__(self, obs: Observation, start: Placement):
        self.obs = obs
        self.fast = fast = CountDelay(obs)
        self.layers: CountLayers = fast.from_placement(start)
        self.n_layers = obs.model.n_layers
        n = len(fast.names)
        allowed = set(obs.candidates)
        self.allowed = np.array([name in allowed for name in fast.names])
        self.need = {k: obs.memory_bytes(k) for k in BlockKind}
        self.free = np.array([obs.device(name).block_memory_bytes for name in fast.names],
                             dtype=float)
        for layer in range(self.n_layers):
            self.free -= self.layers.counts[layer] * self.need[ATTN]
            self.free[self.layers.proj[layer]] -= self.need[PROJ]
            self.free[self.layers.ffn[layer]] -= self.need[FFN]
        self.interval = obs.decision_interval
        # migration bookkeeping relative to the current placement
        self.bits = {k: obs.migration_bytes(k) * BITS_PER_BYTE for k in BlockKind}
        self.pair_bits = np.zeros((n, n))
        self.away: list[dict[tuple[int, int], int]] = [{} for _ in range(self.n_layers)]
        self.origin_proj = self.layers.proj.copy()
        self.origin_ffn = self.layers.ffn.copy()
        self.origin_counts = self.layers.counts.copy()
        if obs.placement is not None:
            origin = fast.from_placement(obs.placement)
            self.origin_counts = origin.counts
            self.origin_proj, self.origin_ffn = origin.proj, origin.ffn
            for layer in range(self.n_layers):
                self._seed_away(layer, origin.counts[layer], self.layers.counts[layer])
                for kind, old, new in ((PROJ, origin.proj, self.layers.proj),
                                       (FFN, origin.ffn, self.layers.ffn)):
                    if old[layer] != new[layer]:
                        self.pair_bits[old[layer], new[layer]] += self.bits[kind]
        self.has_current = obs.placement is not None
        self.src = np.empty(self.n_layers, dtype=np.int64)
        self._refresh_sources()

    # ---------------------------------------------------------------- bookkeeping
    def _seed_away(self, layer: int, before: np.ndarray, after: np.ndarray) -> None:
        self.away[layer] = self._pairing(before, after)
        for (o, d), k in self.away[layer].items():
            self.pair_bits[o, d] += k * self.bits[ATTN]

    def _refresh_sources(self) -> None:
        self.src[0] = self.fast.controller
        self.src[1:] = self.layers.ffn[:-1]

    def migration_s(self, pair_bits: np.ndarray | None = None) -> float:
        if not self.has_current:
            return 0.0
        bits = self.pair_bits if pair_bits is None else pair_bits
        used = bits > 0
        if not used.any():
            return 0.0
        fast = self.fast
        return float((fast.lat[used] + bits[used] * fast.sec_per_bit[used]).max())

    def _layer_s(self, layer: int) -> float:
        return self.fast.layer_s(self.layers.counts[layer], self.layers.proj[layer],
                                 self.layers.ffn[layer], self.src[layer])

    # ---------------------------------------------------------------- moves
    def improve_attention(self, layer: int, min_gain_s: float) -> bool:
        fast, L = self.fast, self.layers
        counts, proj, ffn, src = L.counts[layer], L.proj[layer], L.ffn[layer], self.src[layer]
        branches = fast.branches(counts, proj, src)
        a = int(np.argmax(branches))
        if counts[a] == 0:
            return False
        before = self._layer_s(layer)
        need = self.need[ATTN]
        ok = self.allowed & (self.free >= need)
        ok[a] = False
        if not ok.any():
            return False
        # new branch of every candidate b with one more block, and of a with one fewer
        plus = counts + 1
        out_b = np.where(np.arange(len(counts)) == proj, 0.0,
                         fast.lat[:, proj] + plus * fast.x_out[:, proj])
        branch_b = fast.x_in[src] + plus * fast.ca + out_b
        less = counts.copy()
        less[a] -= 1
        branch_a = fast.branches(less, proj, src)[a]
        rest = branches.copy()
        rest[a] = 0.0
        order = np.argsort(-rest, kind="stable")[:2]
        top_other = np.where(np.arange(len(counts)) == order[0], rest[order[1]], rest[order[0]])
        new_max = np.maximum(np.maximum(branch_b, branch_a), top_other)
        tail = fast.cp[proj] + fast.x_proj[proj, ffn] + fast.cf[ffn]
        delta_t = np.where(ok, new_max + tail - before, np.inf)
        best, best_gain = None, min_gain_s
        for b in np.argsort(delta_t, kind="stable")[:3]:
            if not np.isfinite(delta_t[b]):
                break
            origin = self._origin_of_block_at(layer, a)
            bits = self._pair_bits_after_attn(layer, origin, a, int(b))
            gain = -(self.interval * delta_t[b] + self.migration_s(bits) - self.migration_s())
            if gain > best_gain:
                best, best_gain = (int(b), origin, bits), gain
        if best is None:
            return False
        b, origin, bits = best
        counts[a] -= 1
        counts[b] += 1
        self.free[a] += need
        self.free[b] -= need
        self.pair_bits = bits
        away = self.away[layer]
        if origin != a:
            away[(origin, a)] -= 1
        if origin != b:
            away[(origin, b)] = away.get((origin, b), 0) + 1
        return True

    def rebalance_attention(self, layer: int, min_gain_s: float) -> bool:
        """Re-deal all the layer's attention blocks, each to the device where its branch
        would end first (longest-processing-time style); keep it if the objective drops."""
        fast, L = self.fast, self.layers
        counts, proj, src = L.counts[layer], L.proj[layer], self.src[layer]
        need = self.need[ATTN]
        avail = self.free + counts * need
        new = np.zeros_like(counts)
        not_proj = np.arange(len(counts)) != proj
        for _ in range(int(counts.sum())):
            plus = new + 1
            branch = fast.x_in[src] + plus * fast.ca + np.where(
                not_proj, fast.lat[:, proj] + plus * fast.x_out[:, proj], 0.0)
            branch = np.where(self.allowed & (avail >= need), branch, np.inf)
            b = int(np.argmin(branch))
            if not np.isfinite(branch[b]):
                return False
            new[b] += 1
            avail[b] -= need
        if np.array_equal(new, counts):
            return False
        before = self._layer_s(layer)
        after = fast.layer_s(new, proj, L.ffn[layer], src)
        away = self._pairing(self.origin_counts[layer], new)
        bits = self.pair_bits.copy()
        if self.has_current:
            for (o, d), k in self.away[layer].items():
                bits[o, d] -= k * self.bits[ATTN]
            for (o, d), k in away.items():
                bits[o, d] += k * self.bits[ATTN]
            bits = np.maximum(bits, 0.0)
        gain = -(self.interval * (after - before) + self.migration_s(bits) - self.migration_s())
        if gain <= min_gain_s:
            return False
        self.free = avail
        L.counts[layer] = new
        self.away[layer] = away
        self.pair_bits = bits
        return True

    @staticmethod
    def _pairing(before: np.ndarray, after: np.ndarray) -> dict[tuple[int, int], int]:
        """Blocks leaving devices that lose some, matched in device order to those gaining."""
        surplus = [d for d in range(len(before)) for _ in range(max(before[d] - after[d], 0))]
        deficit = [d for d in range(len(before)) for _ in range(max(after[d] - before[d], 0))]
        away: dict[tuple[int, int], int] = {}
        for o, d in zip(surplus, deficit):
            away[(o, d)] = away.get((o, d), 0) + 1
        return away

    def _origin_of_block_at(self, layer: int, device: int) -> int:
        """Where a block now on ``device`` came from: one migrated there first, else home."""
        for (o, d), count in sorted(self.away[layer].items()):
            if d == device and count > 0:
                return o
        return device

    def _pair_bits_after_attn(self, layer, origin, a, b) -> np.ndarray:
        bits = self.pair_bits.copy()
        if not self.has_current:
            return bits
        size = self.bits[ATTN]
        if origin != a:
            bits[origin, a] -= size
        if origin != b:
            bits[origin, b] += size
        return np.maximum(bits, 0.0)

    def _single_delta(self, layer: int, kind: str) -> np.ndarray:
        """Change of token delay (s) for every device that could take the layer's proj or
        ffn block instead of its current one (vectorised)."""
        fast, L = self.fast, self.layers
        counts, proj, ffn, src = L.counts[layer], L.proj[layer], L.ffn[layer], self.src[layer]
        hosts = np.flatnonzero(counts)
        n = counts[hosts]
        before = self._layer_s(layer)
        if kind == PROJ:
            # branch of host d when proj sits on q: input + compute + output to q
            out = fast.lat[hosts][:, :] + n[:, None] * fast.x_out[hosts, :]
            out[np.arange(len(hosts)), hosts] = 0.0
            branch = (fast.x_in[src, hosts] + n * fast.ca[hosts])[:, None] + out
            after = branch.max(axis=0) + fast.cp + fast.x_proj[:, ffn] + fast.cf[ffn]
            return after - before
        head = fast.branches(counts, proj, src).max() + fast.cp[proj]
        after = head + fast.x_proj[proj, :] + fast.cf
        if layer + 1 < self.n_layers:   # the next layer's input now comes from f
            nxt = layer + 1
            c2, p2, f2 = L.counts[nxt], L.proj[nxt], L.ffn[nxt]
            hosts2 = np.flatnonzero(c2)
            rest = fast.branches(c2, p2, src)[hosts2] - fast.x_in[src, hosts2]
            branch2 = (fast.x_in[:, hosts2] + rest[None, :]).max(axis=1)
            after = after + branch2 + fast.cp[p2] + fast.x_proj[p2, f2] + fast.cf[f2]
            before += self._layer_s(nxt)
        else:
            after = after + fast.x_ret
            before += fast.x_ret[ffn]
        return after - before

    def _try_single(self, layer: int, kind: BlockKind, min_gain_s: float) -> bool:
        """Best device for the layer's proj or ffn block, by full objective change."""
        where = self.layers.proj if kind == PROJ else self.layers.ffn
        origin = int((self.origin_proj if kind == PROJ else self.origin_ffn)[layer])
        old = int(where[layer])
        need = self.need[kind]
        ok = self.allowed & (self.free >= need)
        ok[old] = False
        if not ok.any():
            return False
        delta_t = np.where(ok, self._single_delta(layer, kind), np.inf)
        candidates = list(np.argsort(delta_t, kind="stable")[:3])
        if ok[origin] and origin not in candidates:
            candidates.append(origin)   # going home undoes a migration
        mig_before = self.migration_s()
        best, best_gain = None, min_gain_s
        for b in candidates:
            b = int(b)
            if not np.isfinite(delta_t[b]):
                continue
            bits = self.pair_bits.copy()
            if self.has_current:
                if old != origin:
                    bits[origin, old] -= self.bits[kind]
                if b != origin:
                    bits[origin, b] += self.bits[kind]
                bits = np.maximum(bits, 0.0)
            gain = -(self.interval * delta_t[b] + self.migration_s(bits) - mig_before)
            if gain > best_gain:
                best, best_gain = (b, bits), gain
        if best is None:
            return False
        b, bits = best
        where[layer] = b
        self.free[old] += need
        self.free[b] -= need
        self.pair_bits = bits
        self._refresh_sources()
        return True

    def improve_proj(self, layer: int, min_gain_s: float) -> bool:
        return self._try_single(layer, PROJ, min_gain_s)

    def improve_ffn(self, layer: int, min_gain_s: float) -> bool:
        return self._try_single(layer, FFN, min_gain_s)

    def placement(self) -> Placement:
        return self.fast.to_placement(self.layers, self.obs.placement)
