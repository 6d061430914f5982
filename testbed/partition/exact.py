"""``exact``: the optimum of one decision, as a mixed-integer program solved by HiGHS.

The problem is the one every partitioner faces at a decision (see
:func:`testbed.plan.delay.decision_cost_s`): minimise ``interval x token delay +
migration delay`` subject to memory. The token delay is the closed form of
:func:`~testbed.plan.delay.token_delay`; the migration delay is the slowest (old, new)
device pair's transfer of the blocks it moves.

Attention blocks of one layer are interchangeable except for where they sit now, so the
program counts them: ``n[l, d]`` attention blocks of layer ``l`` on device ``d``, and
``f[l, a, b]`` of them moved from ``a`` to ``b``. Products of placement decisions (the
hidden state goes from the ffn device of layer ``l-1`` to each attention device of
layer ``l``; outputs go from each attention device to the proj device) are linearised
with the usual ``x >= c * (p + q - 1)`` and big-M constraints. Variables per layer::

    n[l,d]  integer   attention blocks of layer l on d          (0..K)
    u[l,d]  binary    d hosts at least one of them
    y[l,d]  binary    proj of layer l on d
    g[l,d]  binary    ffn of layer l on d
    i[l,d]  >= 0      time to bring the hidden state to d       (s)
    o[l,d]  >= 0      time to send d's outputs to the proj device (s)
    a[l]    >= 0      end of layer l's attention phase, from the layer's start (s)
    h[l]    >= 0      proj -> ffn transfer time (s)
  and r >= 0 (return to the controller), f[l,a,b] integers, z[a,b] binaries (pair a->b
  carries a migration), s[l,d] binaries (d sends rather than receives blocks of layer l:
  a block cannot hop through a device), m >= 0 (migration delay).

A time budget (``time_limit_s``) bounds the solve; when it runs out the best placement
found is returned and the decision is flagged "not proven optimal" in the records
(``last_note``). :mod:`testbed.partition.brute_force` checks the optimum on tiny instances.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from dataclasses import dataclass, field

import numpy as np

from testbed.model.blocks import ATTN, FFN, PROJ, Block, BlockKind
from testbed.partition.base import PARTITIONERS, Infeasible, Partitioner
from testbed.plan.observation import Observation
from testbed.plan.placement import Placement
from testbed.units import BITS_PER_BYTE

US = 1e6  # microseconds per second: the program's time unit


@dataclass
class _Program:
    """A small builder for ``min c x  s.t.  lb <= A x <= ub``, variables by name."""

    names: dict = field(default_factory=dict)
    lower: list = field(default_factory=list)
    upper: list = field(default_factory=list)
    integer: list = field(default_factory=list)
    cost: list = field(default_factory=list)
    rows: list = field(default_factory=list)   # (dict var -> coefficient, lb, ub)

    def var(self, key, lower=0.0, upper=math.inf, integer=False, cost=0.0) -> int:
        index = len(self.lower)
        self.names[key] = index
        self.lower.append(lower)
        self.upper.append(upper)
        self.integer.append(1 if integer else 0)
        self.cost.append(cost)
        return index

    def row(self, coefficients: dict[int, float], lower=-math.inf, upper=math.inf) -> None:
        self.rows.append((coefficients, lower, upper))

    def solve(self, time_limit_s: float, rel_gap: float):
        from scipy.optimize import Bounds, LinearConstraint, milp  # slow import: only here
        from scipy.sparse import coo_matrix
        data, rows, cols = [], [], []
        for r, (coefficients, _, _) in enumerate(self.rows):
            for c, value in coefficients.items():
                if value:
                    rows.append(r)
                    cols.append(c)
                    data.append(value)
        matrix = coo_matrix((data, (rows, cols)), shape=(len(self.rows), len(self.lower)))
        constraints = LinearConstraint(matrix.tocsr(), [r[1] for r in self.rows],
                                       [r[2] for r in self.rows])
        with _quiet_stdout():  # HiGHS prints debug lines to the C stdout even with disp off
            return milp(np.array(self.cost), constraints=constraints,
                        integrality=np.array(self.integer),
                        bounds=Bounds(np.array(self.lower), np.array(self.upper)),
                        options={"time_limit": time_limit_s, "mip_rel_gap": rel_gap,
                                 "disp": False})


@contextlib.contextmanager
def _quiet_stdout():
    """Send file descriptor 1 to /dev/null for the duration (C-level prints included)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


@PARTITIONERS.register("exact")
class Exact(Partitioner):
    """Optimal placement of one decision (HiGHS); flags answers cut short by the budget."""

    name = "exact"
    dataflows = ("head_level",)   # its delay model is the head_level closed form (CountDelay)
    places_shards = False

    def __init__(self, seed=None, time_limit_s: float = 10.0, rel_gap: float = 1e-7,
                 include_migration: bool = True):
        super().__init__(seed)
        self.time_limit_s = float(time_limit_s)
        self.rel_gap = float(rel_gap)
        self.include_migration = include_migration
        self.last_note = ""
        self.last_objective_s = math.nan
        self.last_proven_optimal = False

    def decide(self, obs: Observation) -> Placement:
        program, decode, constant_s = self._build(obs)
        result = program.solve(self.time_limit_s, self.rel_gap)
        if result.x is None:
            if result.status == 1:  # time limit without any feasible point
                raise Infeasible(f"exact: no placement found within {self.time_limit_s} s")
            raise Infeasible("exact: no placement fits the devices' memory")
        self.last_proven_optimal = result.status == 0
        self.last_objective_s = float(result.fun) / US + constant_s
        self.last_note = "optimal" if self.last_proven_optimal else \
            f"not proven optimal (time budget {self.time_limit_s} s; {result.message})"
        return decode(result.x)

    # ------------------------------------------------------------------------------------
    def _build(self, obs: Observation):
        model, net = obs.model, obs.network
        K, L = model.attn_blocks_per_layer, model.n_layers
        cands = list(obs.candidates)
        if not cands:
            raise Infeasible("exact: no device is up to host blocks")
        ctl = obs.controller
        work = obs.work
        attn, proj, ffn = work.attn, work.proj, work.ffn
        state = obs.device_by_name
        # times enter the program in microseconds, far above the solver's tolerances
        ca = {d: US * state[d].compute_time_s(attn) for d in cands}
        cp = {d: US * state[d].compute_time_s(proj) for d in cands}
        cf = {d: US * state[d].compute_time_s(ffn) for d in cands}
        mem = {k: obs.memory_bytes(k) for k in BlockKind}
        xin = lambda a, b: US * net.transfer_time_s(a, b, work.input_bytes)  # noqa: E731
        interval = obs.decision_interval

        p = _Program()
        n, u, y, g, i_, o, a_, h = {}, {}, {}, {}, {}, {}, {}, {}
        for layer in range(L):
            for d in cands:
                n[layer, d] = p.var(("n", layer, d), 0, K, integer=True)
                u[layer, d] = p.var(("u", layer, d), 0, 1, integer=True)
                y[layer, d] = p.var(("y", layer, d), 0, 1, integer=True,
                                    cost=interval * cp[d])
                g[layer, d] = p.var(("g", layer, d), 0, 1, integer=True,
                                    cost=interval * cf[d])
                i_[layer, d] = p.var(("i", layer, d))
                o[layer, d] = p.var(("o", layer, d))
            a_[layer] = p.var(("a", layer), cost=interval)
            h[layer] = p.var(("h", layer), cost=interval)
        r = p.var(("r",), cost=interval)

        for layer in range(L):
            p.row({n[layer, d]: 1 for d in cands}, K, K)
            p.row({y[layer, d]: 1 for d in cands}, 1, 1)
            p.row({g[layer, d]: 1 for d in cands}, 1, 1)
            for d in cands:
                p.row({n[layer, d]: 1, u[layer, d]: -K}, upper=0)       # n <= K u
                p.row({n[layer, d]: 1, u[layer, d]: -1}, lower=0)       # n >= u
                # attention phase covers every branch: a >= i + n * ca + o
                p.row({a_[layer]: 1, i_[layer, d]: -1, n[layer, d]: -ca[d], o[layer, d]: -1},
                      lower=0)
                # input: from the controller (layer 0) or from the previous ffn device
                if layer == 0:
                    p.row({i_[layer, d]: 1, u[layer, d]: -xin(ctl, d)}, lower=0)
                else:
                    for s in cands:
                        if s != d:   # i >= X(s,d) (g[l-1,s] + u[l,d] - 1)
                            x = xin(s, d)
                            p.row({i_[layer, d]: 1, g[layer - 1, s]: -x, u[layer, d]: -x},
                                  lower=-x)
                # outputs to the proj device q: o >= lat (u + y - 1) + per n - K per (1 - y)
                for q in cands:
                    if q == d:
                        continue
                    lat = US * net.latency_s(d, q)
                    bw = net.bandwidth_bps(d, q)
                    per = US * attn.output_bytes * BITS_PER_BYTE / bw if bw > 0 else 1e12
                    big = lat + K * per
                    p.row({o[layer, d]: 1, u[layer, d]: -lat, y[layer, q]: -lat - big,
                           n[layer, d]: -per}, lower=-lat - big)
            for s in cands:   # proj -> ffn
                for t in cands:
                    if s != t:
                        x = US * net.transfer_time_s(s, t, proj.output_bytes)
                        p.row({h[layer]: 1, y[layer, s]: -x, g[layer, t]: -x}, lower=-x)
        for s in cands:   # last ffn -> controller
            p.row({r: 1, g[L - 1, s]: -US * net.transfer_time_s(s, ctl, work.output_bytes)},
                  lower=0)
        for d in cands:   # memory
            p.row({**{n[layer, d]: mem[ATTN] for layer in range(L)},
                   **{y[layer, d]: mem[PROJ] for layer in range(L)},
                   **{g[layer, d]: mem[FFN] for layer in range(L)}},
                  upper=state[d].block_memory_bytes)

        moves = self._migration(obs, p, n, y, g, cands) \
            if self.include_migration and obs.placement is not None else None
        constant = interval * state[ctl].compute_time_s(work.lm_head)

        def decode(x: np.ndarray) -> Placement:
            return self._placement(obs, x, n, y, g, moves, cands)

        return p, decode, constant

    def _migration(self, obs, p, n, y, g, cands):
        """Add the moves f[l,a,b], pair indicators z[a,b] and the migration delay m."""
        model, net, current = obs.model, obs.network, obs.placement
        K, L = model.attn_blocks_per_layer, model.n_layers
        size = {k: obs.migration_bytes(k) for k in BlockKind}
        holders = {}
        for plan in current.layers:
            for d, count in plan.attn_hosts:
                holders[plan.layer, d] = count
        devices = list(dict.fromkeys(list(cands) + [d for (_, d) in holders]))
        f: dict[tuple[int, str, str], int] = {}
        pair_bytes: dict[tuple[str, str], dict[int, float]] = {}   # pair -> var -> bytes
        pair_links: dict[tuple[str, str], list[tuple[int, int]]] = {}
        for layer in range(L):
            for a in devices:
                if not holders.get((layer, a)):
                    continue
                for b in cands:
                    if a != b and net.bandwidth_bps(a, b) > 0:
                        f[layer, a, b] = p.var(("f", layer, a, b), 0, K, integer=True)
                        pair_bytes.setdefault((a, b), {})[f[layer, a, b]] = size[ATTN]
                        pair_links.setdefault((a, b), []).append((f[layer, a, b], K))
            for d in devices:   # conservation: n = held - out + in
                outgoing = [f[k] for k in f if k[0] == layer and k[1] == d]
                incoming = [f[k] for k in f if k[0] == layer and k[2] == d]
                coefficients = {var: -1 for var in outgoing}
                coefficients.update({var: 1 for var in incoming})
                held = holders.get((layer, d), 0)
                if d in cands:
                    coefficients[n[layer, d]] = -1
                p.row(coefficients, -held, -held)
                if outgoing and incoming:
                    # a device either sends blocks of a layer or receives them, never both:
                    # a block cannot hop through a device within one migration
                    sends = p.var(("s", layer, d), 0, 1, integer=True)
                    p.row({**{var: 1 for var in outgoing}, sends: -K}, upper=0)
                    p.row({**{var: 1 for var in incoming}, sends: K}, upper=K)
            plan = current.layers[layer]
            for kind, old, var in ((PROJ, plan.proj, y), (FFN, plan.ffn, g)):
                for b in cands:
                    if b != old:
                        pair_bytes.setdefault((old, b), {})[var[layer, b]] = size[kind]
                        pair_links.setdefault((old, b), []).append((var[layer, b], 1))
        m = p.var(("m",), cost=1.0)
        for (a, b), terms in pair_bytes.items():
            bw = net.bandwidth_bps(a, b)
            if bw <= 0:
                for var in terms:   # cannot move over a dead path
                    p.row({var: 1}, upper=0)
                continue
            z = p.var(("z", a, b), 0, 1, integer=True)
            for var, bound in pair_links[(a, b)]:
                p.row({z: bound, var: -1}, lower=0)          # z >= var / bound
            row = {m: 1, z: -US * net.latency_s(a, b)}
            for var, nbytes in terms.items():
                row[var] = row.get(var, 0.0) - US * nbytes * BITS_PER_BYTE / bw
            p.row(row, lower=0)
        return f

    def _placement(self, obs, x, n, y, g, moves, cands) -> Placement:
        """Turn the counts into a placement that moves as few blocks as the program says."""
        model, current = obs.model, obs.placement
        assignment = {}
        per_layer = model.attn_blocks_per_layer + 2
        blocks = obs.blocks
        for layer in range(model.n_layers):
            chunk = blocks[layer * per_layer:(layer + 1) * per_layer]
            attn_blocks = chunk[:-2]
            target = {d: int(round(x[n[layer, d]])) for d in cands}
            if current is None:
                queue = [d for d in cands for _ in range(target[d])]
                for block, d in zip(attn_blocks, queue):
                    assignment[block] = d
            else:
                flows: dict[str, list[str]] = {}
                for (l_, a, b), var in (moves or {}).items():
                    if l_ == layer and round(x[var]) > 0:
                        flows.setdefault(a, []).extend([b] * int(round(x[var])))
                for block in attn_blocks:
                    here = current.device_of(block)
                    outgoing = flows.get(here)
                    if outgoing:
                        assignment[block] = outgoing.pop()
                    else:
                        assignment[block] = here
                # without migration terms, rebalance to the counts keeping blocks in place
                have: dict[str, list[Block]] = {}
                for block in attn_blocks:
                    have.setdefault(assignment[block], []).append(block)
                surplus = [b for d, bl in have.items() for b in bl[target.get(d, 0):]]
                for d in cands:
                    for _ in range(target[d] - len(have.get(d, []))):
                        assignment[surplus.pop()] = d
            assignment[chunk[-2]] = next(d for d in cands if round(x[y[layer, d]]) == 1)
            assignment[chunk[-1]] = next(d for d in cands if round(x[g[layer, d]]) == 1)
        return Placement(model, assignment)
