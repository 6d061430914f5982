"""``resource_aware``: the paper's myopic, attention-head-level partitioner (reconstructed).

Kafetzis, Khalili, Koutsopoulos, arXiv 2505.02533 (WiOpt 2025), as reconstructed in
PAPER.md. At each decision, from the instantaneous state only:

1. Attention blocks (each with its K/V cache) stay where they are; proj and ffn blocks are
   freed and placed again (``keep="all"`` keeps them too). (At the first decision every
   block is placed.)
2. Blocks to place are ordered by normalised demand, largest first: memory / largest
   device memory + FLOP / largest device compute (ties: block order).
3. A block's candidates are the devices whose *available* memory and compute can take it
   (``compute_budget_s``: a device takes a block while its per-token compute time,
   blocks already given to it included, stays within the budget). Each candidate gets a
   score from three terms, all of what would be left or spent if it took the block:
     compute  = (device's per-token compute time + the block's) / compute_budget_s,
     memory   = (memory used + the block's) / the device's memory for blocks,
     comm     = time to bring the block's inputs from the devices that hold them
                / compute_budget_s;
   ``score="max"`` (default, the paper's) takes the largest, ``score="weighted"`` the sum
   with ``weights`` (default 0.4, 0.3, 0.3, the prototype's). Lowest score wins; ties go
   to the lowest device index.
4. If no device can take a block, room is freed: on the device most loaded in the
   binding resource, the blocks using most of it are taken off until the block fits with
   ``headroom`` (10 %) to spare, and are placed again by step 3; after
   ``backtrack_limit`` (100) evictions the decision is reported infeasible.
5. Migrations (``migrate="beneficial"``, default): an attention block moves only when its
   device can no longer hold it (memory, or the device is down), or when moving it to
   the best other device saves more inference delay over the decision interval than its
   migration takes; a proj or ffn block that step 3 put elsewhere goes back to its device
   by the same rule (``replace_proj_ffn=True`` skips that rule: proj and ffn go wherever
   step 3 puts them at every decision, the prototype's literal step 1).
   ``migrate="forced"`` moves blocks only when they must.

A model cut into proj and ffn shards (``proj_shards``, ``ffn_shards``) is placed shard by
shard by steps 1-4 (a shard's inputs: the attention blocks of its head range for proj, every
proj shard for ffn); step 5's gain estimates use the count form of one proj and one ffn
per layer, so for a cut model every block, shards included, stays where it is unless it
must move (as with ``keep="all"`` and ``migrate="forced"``; ``replace_proj_ffn=True`` still
re-places the shards at every decision).

The same rules as for every method apply: the controller hosts blocks only when the
scenario allows it; capacities are what is free now.
"""

from __future__ import annotations

import numpy as np

from testbed.errors import ConfigError
from testbed.model.blocks import ATTN, FFN, PROJ, Block, BlockKind
from testbed.partition.base import PARTITIONERS, Infeasible, Partitioner
from testbed.plan.counts import CountDelay
from testbed.plan.observation import Observation
from testbed.plan.placement import Placement
from testbed.units import BITS_PER_BYTE

SCORES = ("max", "weighted")
MIGRATE = ("beneficial", "forced")
KEEP = ("attn", "all")


@PARTITIONERS.register("resource_aware")
class ResourceAware(Partitioner):
    """The paper's greedy, resource-aware placement with myopic migrations."""

    name = "resource_aware"
    dataflows = ("head_level",)   # its delay model is the head_level closed form (CountDelay)

    def __init__(self, seed=None, score: str = "max",
                 weights: tuple[float, float, float] = (0.4, 0.3, 0.3),
                 compute_budget_s: float = 1.0, headroom: float = 0.1,
                 backtrack_limit: int = 100, migrate: str = "beneficial",
                 keep: str = "attn", replace_proj_ffn: bool = False):
        super().__init__(seed)
        self.replace_proj_ffn = bool(replace_proj_ffn)
        if keep not in KEEP:
            raise ConfigError(f"got keep {keep!r}; expected one of {', '.join(KEEP)}",
                              field="keep", value=keep)
        self.keep = keep
        if score not in SCORES:
            raise ConfigError(f"got score {score!r}; expected one of {', '.join(SCORES)}",
                              field="score", value=score)
        if migrate not in MIGRATE:
            raise ConfigError(f"got migrate {migrate!r}; expected one of {', '.join(MIGRATE)}",
                              field="migrate", value=migrate)
        if len(weights) != 3 or any(w < 0 for w in weights):
            raise ConfigError(f"got weights {weights!r}; expected three numbers >= 0",
                              field="weights", value=weights)
        self.score, self.weights = score, tuple(float(w) for w in weights)
        self.compute_budget_s = float(compute_budget_s)
        self.headroom, self.backtrack_limit, self.migrate = headroom, backtrack_limit, migrate

    # ------------------------------------------------------------------------------------
    def decide(self, obs: Observation) -> Placement:
        state = _State(obs, self)
        current = obs.placement
        cut = obs.model.proj_shards > 1 or obs.model.ffn_shards > 1
        todo: list[Block] = []
        for block in obs.blocks:
            here = current.device_of(block) if current is not None else None
            keepable = block.kind == ATTN or self.keep == "all" or \
                (cut and not self.replace_proj_ffn)
            if keepable and here is not None and state.can_keep(block, here):
                state.put(block, here)
            else:
                todo.append(block)
        state.place_all(todo)
        if current is not None and self.migrate == "beneficial" and not cut:
            if not self.replace_proj_ffn:
                _keep_unless_worth_moving(obs, state)
            return _beneficial_moves(obs, state.placement(), state)
        return state.placement()

    def terms(self, compute: np.ndarray, memory: np.ndarray, comm: np.ndarray) -> np.ndarray:
        if self.score == "max":
            return np.maximum(np.maximum(compute, memory), comm)
        wc, wm, wn = self.weights
        return wc * compute + wm * memory + wn * comm


class _State:
    """What is committed so far in one decision: devices' memory, compute time, blocks."""

    def __init__(self, obs: Observation, owner: ResourceAware):
        self.obs, self.owner = obs, owner
        self.names = list(obs.candidates)
        if not self.names:
            raise Infeasible("no device is up to host blocks")
        states = [obs.device(n) for n in self.names]
        self.capacity = np.array([s.block_memory_bytes for s in states])
        self.used = np.zeros(len(self.names))
        self.busy_s = np.zeros(len(self.names))
        self.time_s = {k: np.array([s.compute_time_s(obs.block_cost(k)) for s in states])
                       for k in BlockKind}
        self.need = {k: obs.memory_bytes(k) for k in BlockKind}
        max_memory = max(s.spec.memory_bytes for s in obs.devices)
        max_flops = max(s.effective_flops for s in obs.devices) or 1.0  # all at 100 % load
        self.demand = {k: self.need[k] / max_memory + obs.block_cost(k).flops / max_flops
                       for k in BlockKind}
        self.where: dict[Block, int] = {}
        self.index = {n: i for i, n in enumerate(self.names)}
        self.fast = CountDelay(obs)   # pair latencies and seconds per bit, all devices
        self.cand = np.array([self.fast.index[n] for n in self.names])

    def can_keep(self, block: Block, device: str) -> bool:
        i = self.index.get(device)
        return i is not None and self.used[i] + self.need[block.kind] <= self.capacity[i]

    def put(self, block: Block, device: str | int) -> None:
        i = device if isinstance(device, (int, np.integer)) else self.index[device]
        self.where[block] = int(i)
        self.used[i] += self.need[block.kind]
        self.busy_s[i] += self.time_s[block.kind][i]

    def take(self, block: Block) -> None:
        i = self.where.pop(block)
        self.used[i] -= self.need[block.kind]
        self.busy_s[i] -= self.time_s[block.kind][i]

    def _input_devices(self, block: Block) -> list[tuple[str, float]]:
        """(device holding an input, bytes it sends) for the block, as far as known now."""
        obs, current = self.obs, self.obs.placement
        work = obs.work

        def holder(b: Block) -> str | None:
            if b in self.where:
                return self.names[self.where[b]]
            return current.device_of(b) if current is not None else None

        model = obs.model
        if block.kind == ATTN:
            if block.layer == 0:
                return [(obs.controller, work.input_bytes)]
            sources = {holder(Block(block.layer - 1, FFN, k)) or obs.controller
                       for k in range(model.ffn_shards)}
            return [(src, work.input_bytes) for src in sorted(sources)]
        if block.kind == PROJ:      # the attention blocks of its head range
            groups, shards = model.attn_blocks_per_layer, model.proj_shards
            per: dict[str, float] = {}
            for k in range(groups):
                if k * shards // groups != block.index:
                    continue
                d = holder(Block(block.layer, ATTN, k))
                if d is not None:
                    per[d] = per.get(d, 0.0) + work.attn.output_bytes
            return list(per.items())
        held = (holder(Block(block.layer, PROJ, k)) for k in range(model.proj_shards))
        sources = {d for d in held if d is not None}
        return [(src, work.proj.output_bytes) for src in sorted(sources)]

    def score(self, block: Block) -> np.ndarray:
        """Score of every device for ``block`` (inf where it does not fit)."""
        kind, fast = block.kind, self.fast
        budget = self.owner.compute_budget_s
        compute = (self.busy_s + self.time_s[kind]) / budget
        memory = (self.used + self.need[kind]) / self.capacity
        comm = np.zeros(len(self.names))
        for src, size in self._input_devices(block):
            i = fast.index[src]
            comm = np.maximum(comm, fast.lat[i, self.cand]
                              + size * BITS_PER_BYTE * fast.sec_per_bit[i, self.cand])
        score = self.owner.terms(compute, memory, comm / budget)
        fits = (memory <= 1.0) & (compute <= 1.0)
        return np.where(fits, score, np.inf)

    def place_all(self, todo: list[Block]) -> None:
        order = sorted(range(len(todo)), key=lambda k: (-self.demand[todo[k].kind], k))
        queue = [todo[k] for k in order]
        backtracks = 0
        while queue:
            block = queue.pop(0)
            scores = self.score(block)
            best = int(np.argmin(scores))
            if np.isfinite(scores[best]):
                self.put(block, best)
                continue
            evicted = self._free_room(block)
            backtracks += len(evicted)
            if not evicted or backtracks > self.owner.backtrack_limit:
                raise Infeasible(
                    f"resource_aware: no device can take block {block.id} "
                    f"({self.need[block.kind] / 2**20:.1f} MiB) after {backtracks} evictions")
            queue = [block] + sorted(evicted, key=lambda b: -self.demand[b.kind]) + queue

    def _free_room(self, block: Block) -> list[Block]:
        """Evict blocks from the most loaded device until ``block`` fits with headroom."""
        need = self.need[block.kind] * (1 + self.owner.headroom)
        if need > self.capacity.max():
            return []
        fraction = self.used / self.capacity
        device = int(np.argmax(np.where(self.capacity >= need, fraction, -np.inf)))
        hosted = sorted((b for b, d in self.where.items() if d == device),
                        key=lambda b: (-self.need[b.kind], b))
        evicted = []
        for b in hosted:
            if self.capacity[device] - self.used[device] >= need:
                break
            self.take(b)
            evicted.append(b)
        self.put(block, device)
        return evicted

    def placement(self) -> Placement:
        return Placement(self.obs.model, [self.names[self.where[b]] for b in self.obs.blocks])


def _keep_unless_worth_moving(obs: Observation, state: _State) -> None:
    """A proj or ffn block re-placed on another device goes back to where it was, if that
    device can still hold it, unless the move saves more inference delay over the decision
    interval than the migration takes (the paper's "keep migration + inference delay low")."""
    fast = state.fast
    current = obs.placement
    assert current is not None   # called when there is a placement to keep blocks on
    layers = fast.from_placement(state.placement())
    for block in obs.blocks:
        if block.kind == ATTN or block not in state.where:
            continue
        old = current.device_of(block)
        new = state.names[state.where[block]]
        if old == new or old not in state.index:
            continue
        state.take(block)
        if not state.can_keep(block, old):
            state.put(block, new)
            continue
        where = layers.proj if block.kind == PROJ else layers.ffn
        hit = [block.layer] + ([block.layer + 1] if block.kind == FFN and
                               block.layer + 1 < len(where) else [])

        def delay(device: str) -> float:
            where[block.layer] = fast.index[device]
            src = [fast.controller] + list(layers.ffn[:-1])
            total = sum(fast.layer_s(layers.counts[k], layers.proj[k], layers.ffn[k], src[k])
                        for k in hit)
            if block.kind == FFN and block.layer + 1 == len(where):
                total += fast.x_ret[fast.index[device]]
            return total

        i, j = fast.index[old], fast.index[new]
        move_s = fast.lat[i, j] + obs.migration_bytes(block) * BITS_PER_BYTE * \
            fast.sec_per_bit[i, j]
        gain = obs.decision_interval * (delay(old) - delay(new))
        if gain > move_s:
            state.put(block, new)
        else:
            state.put(block, old)
            where[block.layer] = i


def _beneficial_moves(obs: Observation, placement: Placement, state: _State) -> Placement:
    """Move attention blocks off each layer's slowest branch while the delay saved over
    the decision interval exceeds the migration time of the move (myopic, one at a time)."""
    fast = state.fast
    layers = fast.from_placement(placement)
    allowed = np.array([name in state.index for name in fast.names])
    free = np.array([state.capacity[state.index[n]] - state.used[state.index[n]]
                     if n in state.index else -np.inf for n in fast.names])
    need = state.need[ATTN]
    size_bits = obs.migration_bytes(ATTN) * BITS_PER_BYTE
    src = fast.controller
    for layer in range(len(layers.proj)):
        counts, proj, ffn = layers.counts[layer], layers.proj[layer], layers.ffn[layer]
        for _ in range(int(counts.sum())):
            branches = fast.branches(counts, proj, src)
            slow = int(np.argmax(branches))
            if counts[slow] == 0:
                break
            before = fast.layer_s(counts, proj, ffn, src)
            best, best_gain = None, 0.0
            for b in np.flatnonzero(allowed & (free >= need)):
                if b == slow:
                    continue
                counts[slow] -= 1
                counts[b] += 1
                gain = before - fast.layer_s(counts, proj, ffn, src)
                counts[slow] += 1
                counts[b] -= 1
                move_s = fast.lat[slow, b] + size_bits * fast.sec_per_bit[slow, b]
                net = obs.decision_interval * gain - move_s
                if net > best_gain:
                    best, best_gain = b, net
            if best is None:
                break
            counts[slow] -= 1
            counts[best] += 1
            free[best] -= need
            free[slow] += need
        src = ffn
    return fast.to_placement(layers, obs.placement)
