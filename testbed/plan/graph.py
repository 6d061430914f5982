"""The task graph of one forward pass: what every backend executes.

A dataflow (:mod:`testbed.dataflows`) turns a placement into a :class:`GraphTemplate`: the
pass as a DAG of **compute** tasks (a device, the blocks it runs, how many) and
**transfers** (source, destination, number of messages), each with the tasks it waits for.
A template holds no numbers: each task names its work as a *recipe* of components of a
:class:`~testbed.plan.work.StepWork` (e.g. ``(("attn", 2),)``: two attention blocks; a
transfer ``(("attn.out", 2),)``: their outputs), so the structure is built once per
placement and re-used at every step while the sequence grows. :meth:`GraphTemplate.bind`
resolves the recipes against one step's work into a :class:`TaskGraph` (FLOP and bytes read
per compute task, bytes per transfer, resident memory per device).

The SimPy engine executes a :class:`TaskGraph` (:mod:`testbed.sim.executor`); its closed
form is :func:`testbed.plan.critical_path.critical_path`; the Mininet backend serialises it
(:mod:`testbed.emulation.plan`); :func:`graph_to_json` writes it, one node per task.

Tasks are kept in topological order (a task's dependencies come before it), which is also
the order in which a backend starts tasks that become ready at the same instant.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from testbed.plan.work import StepWork

if TYPE_CHECKING:
    from testbed.model.cost import BlockCost

COMPUTE = "compute"
TRANSFER = "transfer"

Recipe = tuple[tuple[str, float], ...]
"""``((component, count), ...)``: the work of a task as a sum of step components."""

RecipeLike = Sequence[tuple[str, float]]
"""A recipe as callers write it (counts may be ints); :class:`GraphBuilder` stores floats."""

Parts = tuple[tuple["BlockCost", float], ...]
"""``((BlockCost, count), ...)``: a compute task's kernels, each run ``count`` times."""

#: Transfer components: bytes of one message part, from a step's work.
SIZE_TERMS = {
    "hidden": lambda w: w.input_bytes,                 # a hidden state into a layer
    "output": lambda w: w.output_bytes,                # the last hidden state, to the LM head
    "attn.out": lambda w: w.attn.output_bytes,         # one attention block's output
    "attn.qkv.out": lambda w: w.attn_qkv.output_bytes,  # one block's q, k, v vectors
    "proj.out": lambda w: w.proj.output_bytes,         # one proj shard's (partial) output
    "ffn.out": lambda w: w.ffn.output_bytes,           # one ffn shard's (partial) output
    "act": lambda w: w.activation_bytes(1),            # one activation per position
}

#: Compute components: a block (or part) of the step, or nothing ("none": bookkeeping).
COST_TERMS = ("attn", "attn.qkv", "attn.core", "proj", "ffn", "lm_head", "none")


@dataclass
class GraphTemplate:
    """The structure of one pass (see the module docstring); build it with
    :class:`GraphBuilder`. ``memory[device]`` is the recipe of what the device holds
    (weights, caches, activations) while the placement is in force."""

    dataflow: str
    controller: str
    op: list[str] = field(default_factory=list)          # COMPUTE or TRANSFER
    device: list[str] = field(default_factory=list)      # compute: device; transfer: source
    dst: list[str] = field(default_factory=list)         # transfer: destination ("" else)
    kind: list[str] = field(default_factory=list)        # e.g. "attn", "proj", "allreduce"
    layer: list[int] = field(default_factory=list)       # -1 before layer 0, n_layers after
    blocks: list[int] = field(default_factory=list)      # compute: blocks run (for records)
    recipe: list[Recipe] = field(default_factory=list)   # compute: cost; transfer: size
    messages: list[int] = field(default_factory=list)    # transfer: messages (1 else 0)
    deps: list[tuple[int, ...]] = field(default_factory=list)
    memory: dict[str, Recipe] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.op)

    @property
    def sink(self) -> int:
        """The last task: its end is the end of the pass."""
        return len(self.op) - 1

    @cached_property
    def computes(self) -> tuple[bool, ...]:
        """Per task: True for a computation, False for a transfer."""
        return tuple(op == COMPUTE for op in self.op)

    @cached_property
    def successors(self) -> tuple[tuple[int, ...], ...]:
        succ: list[list[int]] = [[] for _ in self.op]
        for i, deps in enumerate(self.deps):
            for d in deps:
                succ[d].append(i)
        return tuple(tuple(s) for s in succ)

    @cached_property
    def devices(self) -> tuple[str, ...]:
        """Every device that computes, sends or receives in the pass, in first-use order."""
        seen: dict[str, None] = {}
        for i, op in enumerate(self.op):
            seen.setdefault(self.device[i])
            if op == TRANSFER:
                seen.setdefault(self.dst[i])
        return tuple(seen)

    @cached_property
    def recipes(self) -> tuple[tuple[Recipe, ...], tuple[int, ...]]:
        """(the distinct recipes, the index of each task's recipe among them)."""
        index: dict[Recipe, int] = {}
        which = tuple(index.setdefault(r, len(index)) for r in self.recipe)
        return tuple(index), which

    def bind(self, work: StepWork) -> "TaskGraph":
        """This structure with the numbers of one step."""
        return TaskGraph(self, work)


class TaskGraph:
    """A :class:`GraphTemplate` bound to one step's work: ``parts[i]`` of a compute task
    (``((BlockCost, count), ...)``: its kernels, each run ``count`` times one after
    another, so its time is the sum of their rooflines), ``flops[i]`` and ``bytes_read[i]``
    (totals), ``size_bytes[i]`` of a transfer, ``memory_bytes`` per device. Recipes shared
    by many tasks are resolved once."""

    def __init__(self, template: GraphTemplate, work: StepWork):
        self.template = template
        self.work = work
        recipes, which = template.recipes
        values: list[tuple[Parts, float, float, float]] = []
        for recipe in recipes:
            if recipe and recipe[0][0] in SIZE_TERMS:
                size = sum(n * SIZE_TERMS[term](work) for term, n in recipe)
                values.append(((), 0.0, 0.0, size))
            else:
                parts = tuple((_component(work, term), count) for term, count in recipe
                              if term != "none")
                values.append((parts, sum(c * k.flops for k, c in parts),
                               sum(c * k.bytes_read for k, c in parts), 0.0))
        self._values, self._which = values, which
        self.parts = [values[k][0] for k in which]
        self.size_bytes = [values[k][3] for k in which]

    @cached_property
    def flops(self) -> list[float]:
        """FLOP of each compute task (0 for transfers)."""
        return [self._values[k][1] for k in self._which]

    @cached_property
    def bytes_read(self) -> list[float]:
        """Bytes each compute task reads from memory (0 for transfers)."""
        return [self._values[k][2] for k in self._which]

    def __len__(self) -> int:
        return len(self.template)

    @cached_property
    def memory_bytes(self) -> dict[str, float]:
        """Bytes each device holds for the pass's blocks (weights, caches, activations)."""
        work = self.work
        return {device: sum(n * _component(work, term).memory_bytes for term, n in recipe)
                for device, recipe in self.template.memory.items()}

    def totals(self) -> dict[str, float]:
        """FLOP and bytes read over all compute tasks, bytes and messages over all
        transfers (for conservation checks)."""
        t = self.template
        return {"flops": sum(self.flops), "bytes_read": sum(self.bytes_read),
                "transfer_bytes": sum(self.size_bytes),
                "messages": sum(m for op, m in zip(t.op, t.messages) if op == TRANSFER)}

    def transfer_bytes_by_device(self) -> dict[str, tuple[float, float]]:
        """device -> (bytes sent, bytes received) over the pass's transfers."""
        out: dict[str, list[float]] = {}
        t = self.template
        for i, op in enumerate(t.op):
            if op == TRANSFER:
                out.setdefault(t.device[i], [0.0, 0.0])[0] += self.size_bytes[i]
                out.setdefault(t.dst[i], [0.0, 0.0])[1] += self.size_bytes[i]
        return {d: (s, r) for d, (s, r) in out.items()}


def _component(work: StepWork, term: str) -> BlockCost:
    from testbed.model.cost import ZERO_COST
    if term == "none":
        return ZERO_COST
    if term == "lm_head":
        return work.lm_head
    return work.cost(term)


class GraphBuilder:
    """Appends tasks to a :class:`GraphTemplate` in topological order.

    ``compute`` and ``transfer`` return the task's index, or — for a transfer from a device
    to itself, which costs nothing — ``None``; :meth:`after` turns what callers hold
    (indices, ``None`` for "already here", lists) into a dependency tuple.
    """

    def __init__(self, dataflow: str, controller: str):
        self.graph = GraphTemplate(dataflow, controller)

    @staticmethod
    def after(*deps: Any) -> tuple[int, ...]:
        """The task indices in ``deps`` (nested lists and tuples flattened, ``None``
        dropped), each once, in order."""
        out: list[int] = []

        def walk(items: Iterable[Any]) -> None:
            for dep in items:
                if dep is None:
                    continue
                if isinstance(dep, (list, tuple)):
                    walk(dep)
                else:
                    out.append(int(dep))

        walk(deps)
        return tuple(dict.fromkeys(out))   # unique, order kept

    def _add(self, op: str, device: str, dst: str, kind: str, layer: int, blocks: int,
             recipe: RecipeLike, messages: int, deps: Any) -> int:
        g = self.graph
        after = self.after(deps)
        index = len(g.op)
        if any(d >= index or d < 0 for d in after):
            raise ValueError(f"task {index} depends on {after}: dependencies come first")
        g.op.append(op)
        g.device.append(device)
        g.dst.append(dst)
        g.kind.append(kind)
        g.layer.append(layer)
        g.blocks.append(blocks)
        g.recipe.append(tuple((term, float(n)) for term, n in recipe))
        g.messages.append(messages)
        g.deps.append(after)
        return index

    def compute(self, device: str, kind: str, recipe: RecipeLike, deps: Any = (), *,
                layer: int = -1, blocks: int = 1) -> int:
        """A computation of ``recipe`` on ``device`` once ``deps`` are done."""
        for term, _ in recipe:
            if term not in COST_TERMS:
                raise ValueError(f"unknown cost component {term!r}")
        return self._add(COMPUTE, device, "", kind, layer, blocks, recipe, 0, deps)

    def transfer(self, src: str, dst: str, kind: str, recipe: RecipeLike, deps: Any = (), *,
                 layer: int = -1, messages: int = 1) -> int | None:
        """``recipe`` bytes in ``messages`` messages from ``src`` to ``dst`` once ``deps``
        are done; ``None`` (nothing to send) when ``src == dst``."""
        if src == dst:
            return None
        for term, _ in recipe:
            if term not in SIZE_TERMS:
                raise ValueError(f"unknown size component {term!r}")
        if messages < 1:
            raise ValueError("a transfer carries at least one message")
        return self._add(TRANSFER, src, dst, kind, layer, 0, recipe, messages, deps)

    def hold(self, device: str, term: str, count: float = 1.0) -> None:
        """``device`` holds ``count`` of the memory of component ``term`` (e.g. its
        attention blocks' weights and caches)."""
        recipe = dict(self.graph.memory.get(device, ()))
        recipe[term] = recipe.get(term, 0.0) + float(count)
        self.graph.memory[device] = tuple(recipe.items())

    def finish(self) -> GraphTemplate:
        g = self.graph
        if not g.op:
            raise ValueError("an empty pass")
        order = {term: k for k, term in enumerate(COST_TERMS)}
        g.memory = {device: tuple(sorted(recipe, key=lambda part: order[part[0]]))
                    for device, recipe in g.memory.items()}
        return g


def graph_to_json(graph: TaskGraph, *, indent: int | None = 1) -> str:
    """The bound graph as JSON: one node per task (id, op, device or src/dst, kind, layer,
    FLOP and bytes read or bytes and messages, dependencies), plus memory per device."""
    t = graph.template
    nodes = []
    for i, op in enumerate(t.op):
        node = {"id": i, "op": op, "kind": t.kind[i], "layer": t.layer[i],
                "deps": list(t.deps[i])}
        if op == COMPUTE:
            node.update(device=t.device[i], blocks=t.blocks[i], flops=graph.flops[i],
                        bytes_read=graph.bytes_read[i])
        else:
            node.update(src=t.device[i], dst=t.dst[i], size_bytes=graph.size_bytes[i],
                        messages=t.messages[i])
        nodes.append(node)
    work = graph.work
    doc = {"dataflow": t.dataflow, "controller": t.controller, "phase": work.phase,
           "seq_len": work.seq_len, "memory_bytes": graph.memory_bytes, "nodes": nodes}
    return json.dumps(doc, indent=indent)
