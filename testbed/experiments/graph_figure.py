"""The task graph of one forward pass of a scenario, as JSON or as a figure.

``testbed graph SCENARIO --step N --out G.json|G.png`` simulates the scenario with one of
its partitioners for ``N`` tokens and writes the task graph (:mod:`testbed.plan.graph`) of
token ``N`` under the placement in force at that token: :func:`write_graph_json` (one
node per task) or :func:`plot_graph` (a drawing of the DAG, one lane per device).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import textwrap
from pathlib import Path

from testbed.sim.records import completed
from testbed.errors import ConfigError, bad_value, close_matches
from testbed.experiments.scenario import Scenario, partitioner_label, partitioner_spec
from testbed.plan.graph import COMPUTE, TRANSFER, TaskGraph, graph_to_json
from testbed.plan.placement import Placement
from testbed.units import format_bytes

FIGURE_SUFFIXES = (".png", ".pdf")


# ----------------------------------------------------------------------------- the graph

def graph_at_step(scenario: Scenario, step: int,
                  label: str | None = None) -> tuple[TaskGraph, Placement, str]:
    """The task graph of token ``step`` (1 = the first, prefill included when the cost
    preset has one) when ``scenario`` runs with the partitioner labelled ``label``
    (default: its first entry), under the placement in force at that token; with that
    placement and the partitioner's label."""
    from testbed.experiments.runner import sim_config
    from testbed.experiments.seeding import component_seed
    from testbed.partition import make_partitioner
    from testbed.sim.engine import Simulation
    from testbed.sim.generation import SingleSequence

    labels = [partitioner_label(spec) for spec in scenario.partitioners]
    if label is None:
        index = 0
    elif label in labels:
        index = labels.index(label)
    else:
        raise ConfigError(f"got {label!r}; {close_matches(label, labels)}expected a label of "
                          f"the scenario's partitioners: {', '.join(labels)}",
                          source=scenario.source, field="--partitioner", value=label)
    if isinstance(step, bool) or not isinstance(step, int) or \
            not 1 <= step <= scenario.sim.generate_tokens:
        raise bad_value(step, f"a token from 1 to {scenario.sim.generate_tokens} (the scenario's "
                              "generate_tokens)", source=scenario.source, field="--step")
    if scenario.sim.requests is not None:
        raise ConfigError("draws one sequence's pass, and this scenario serves requests; "
                          "expected a scenario without a 'requests' section (remove it to "
                          "draw the pass of one request)", source=scenario.source,
                          field="requests")
    spec, label = scenario.partitioners[index], labels[index]
    field = f"partitioners[{index}]"
    partitioner = make_partitioner(partitioner_spec(spec),
                                   seed=component_seed(scenario.seed, "partitioner", label),
                                   source=scenario.source, field=field)
    try:
        config = sim_config(scenario, dataflow=scenario.dataflow_of(spec))
        sim = Simulation(dataclasses.replace(config, generate_tokens=step), partitioner)
        records = sim.run()
        if not completed(records.outcome):
            raise ConfigError(f"the run with partitioner {label!r} did not reach token "
                              f"{step}: {records.outcome}")
        placement, generation = sim.placement, sim.generation
        # a completed run has a placement; without requests it generates one sequence
        assert placement is not None and isinstance(generation, SingleSequence)
        graph = sim.graph(placement, generation.step_of(step))
    except ConfigError as error:
        raise error.located(scenario.source, field) from None
    return graph, placement, label


def graph_summary(graph: TaskGraph) -> str:
    """One line: tasks, compute tasks, transfers, bytes moved, messages."""
    t = graph.template
    totals = graph.totals()
    transfers = t.op.count(TRANSFER)
    return (f"{len(t)} tasks: {len(t) - transfers} compute, {transfers} transfers moving "
            f"{format_bytes(totals['transfer_bytes'])} in {int(totals['messages'])} messages")


def write_graph_json(graph: TaskGraph, path: str | Path, *, partitioner: str | None = None,
                     step: int | None = None) -> Path:
    """``graph`` as JSON (:func:`~testbed.plan.graph.graph_to_json`: one node per task)
    with the partitioner's label, the token (``step``, default: the token the pass
    produces) and the dataflow's name at the top."""
    path = Path(path)
    doc = json.loads(graph_to_json(graph, indent=None))
    token = step if step is not None else graph.work.generated + 1
    out = {"partitioner": partitioner, "step": token, "dataflow": graph.template.dataflow}
    out.update((k, v) for k, v in doc.items() if k not in out)
    path.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- the figure

#: Compute kinds: boxes in cool colours (the Gantt chart's for attn, proj, ffn, lm_head).
COMPUTE_COLOURS = {"attn": "#1f77b4", "attn.qkv": "#1f77b4", "attn.core": "#aec7e8",
                   "proj": "#17becf", "ffn": "#2ca02c", "ffn.up": "#2ca02c",
                   "ffn.down": "#98df8a", "lm_head": "#7f7f7f", "merge": "#c7c7c7"}
_MORE_COMPUTE = ("#9edae5", "#393b79", "#637939", "#6b6ecf", "#b5cf6b", "#5254a3")
#: Transfer kinds: arrows in warm colours, in order of first appearance.
_TRANSFER_COLOURS = ("#ff7f0e", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22",
                     "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#ad494a")
LABELLED_TASKS = 160   # at most this many tasks drawn: transfers are labelled with bytes
BOX_W, BOX_H = 0.56, 0.5   # compute boxes (columns, lanes)
ARROW_W = 0.36            # a transfer arrow's horizontal extent (columns)


def _columns(graph: TaskGraph, keep: list[int]) -> dict[int, float]:
    """Column of each kept task, after every task it waits for: compute tasks in whole
    columns, transfers in the half columns between them, so that arrows run from one
    column of boxes to the next and never cross a box."""
    t = graph.template
    column: dict[int, float] = {}
    for i in keep:
        after = max((column[d] for d in t.deps[i] if d in column), default=None)
        if t.op[i] == COMPUTE:
            column[i] = 0.0 if after is None else float(math.floor(after) + 1)
        else:
            column[i] = -0.5 if after is None else math.floor(after + 0.5) + 0.5
    return column


def plot_graph(graph: TaskGraph, path: str | Path, *, title: str = "",
               layers: int = 2) -> Path:
    """Draw the DAG of ``graph`` (PNG or PDF at ``path``, with the PDF beside a PNG).

    One lane per device (the controller first); x is the task's column: compute tasks as
    boxes on their device's lane (kind, blocks, layer), transfers as arrows from the
    source's lane to the destination's (labelled with bytes and messages when few tasks
    are drawn); thin grey lines are the other dependencies. Of a model with more than
    ``layers`` layers only the tasks before layer ``layers`` are drawn (the title says so).
    """
    import matplotlib.pyplot as plt
    from matplotlib.artist import Artist
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch

    from testbed.experiments.plots import _save

    path = Path(path)
    t = graph.template
    n_layers = max(t.layer)
    truncated = n_layers > layers
    keep = [i for i in range(len(t)) if not truncated or t.layer[i] < layers]
    column = _columns(graph, keep)
    lanes = [t.controller] + [d for d in t.devices if d != t.controller]
    used = {t.device[i] for i in keep} | {t.dst[i] for i in keep if t.op[i] == TRANSFER}
    lanes = [d for d in lanes if d in used]
    lane = {d: k for k, d in enumerate(lanes)}
    labelled = len(keep) <= LABELLED_TASKS

    # compute boxes sharing a lane and column are stacked; parallel arrows are offset
    slots: dict[tuple, list[int]] = {}
    for i in keep:
        key = (t.device[i], column[i]) if t.op[i] == COMPUTE else \
            (t.device[i], t.dst[i], column[i])
        slots.setdefault(key, []).append(i)
    offset: dict[int, tuple[float, float]] = {}   # task -> (y shift, height share)
    for members in slots.values():
        n = len(members)
        for k, i in enumerate(members):
            offset[i] = ((k - (n - 1) / 2) * (BOX_H / n if t.op[i] == COMPUTE else 0.12),
                         1.0 / n)

    def start(i: int) -> tuple[float, float]:
        half = (BOX_W if t.op[i] == COMPUTE else ARROW_W) / 2
        return column[i] - half, lane[t.device[i]] + offset[i][0]

    def end(i: int) -> tuple[float, float]:
        if t.op[i] == COMPUTE:
            return column[i] + BOX_W / 2, lane[t.device[i]] + offset[i][0]
        return column[i] + ARROW_W / 2, lane[t.dst[i]] + offset[i][0]

    colours: dict[tuple[str, str], str] = {}
    extra, warm = itertools.cycle(_MORE_COMPUTE), itertools.cycle(_TRANSFER_COLOURS)
    for i in keep:
        kind = t.kind[i]
        if (t.op[i], kind) not in colours:
            colours[(t.op[i], kind)] = COMPUTE_COLOURS.get(kind) or next(extra) \
                if t.op[i] == COMPUTE else next(warm)

    first, last = min(column.values()), max(column.values())
    width = min(48.0, max(8.0, 1.05 * (last - first + 1) + 3.5))
    height = max(3.5, 1.1 * len(lanes) + 1.6)
    fig, ax = plt.subplots(figsize=(width, height))
    for k in range(len(lanes)):
        ax.axhspan(k - 0.5, k + 0.5, color="#f2f2f2" if k % 2 else "white", zorder=0)
    font = 7 if labelled else 5
    for i in keep:                      # dependencies other than a transfer's own ends
        for d in t.deps[i]:
            if d not in column:
                continue
            (x0, y0), (x1, y1) = end(d), start(i)
            ax.plot([x0, x1], [y0, y1], color="#9a9a9a", linewidth=0.6, zorder=1)
    for i in keep:
        colour = colours[(t.op[i], t.kind[i])]
        if t.op[i] == COMPUTE:
            x, y = column[i], lane[t.device[i]] + offset[i][0]
            h = BOX_H * offset[i][1] * 0.9
            ax.add_patch(FancyBboxPatch((x - BOX_W / 2, y - h / 2), BOX_W, h,
                                        boxstyle="round,pad=0,rounding_size=0.06",
                                        facecolor=colour, alpha=0.35, edgecolor="none",
                                        zorder=2))
            ax.add_patch(FancyBboxPatch((x - BOX_W / 2, y - h / 2), BOX_W, h,
                                        boxstyle="round,pad=0,rounding_size=0.06",
                                        facecolor="none", edgecolor=colour, linewidth=1.2,
                                        zorder=3))
            blocks = f"×{t.blocks[i]}" if t.blocks[i] > 1 else ""
            where = f"L{t.layer[i]}" if 0 <= t.layer[i] < n_layers else ""
            second = " ".join(part for part in (blocks, where) if part)
            text = f"{t.kind[i]}\n{second}" if second and offset[i][1] == 1.0 and labelled \
                else t.kind[i]
            ax.text(x, y, text, ha="center", va="center", fontsize=font, zorder=4,
                    linespacing=1.1)
        else:
            (x0, y0), (x1, y1) = start(i), end(i)
            ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>",
                                         mutation_scale=9, color=colour, linewidth=1.4,
                                         shrinkA=0, shrinkB=0, zorder=3))
            if labelled:
                size = format_bytes(graph.size_bytes[i], 3)
                messages = f" ×{t.messages[i]}" if t.messages[i] > 1 else ""
                u = 0.3   # near the source, so crossing arrows keep their labels apart
                ax.text(x0 + u * (x1 - x0), y0 + u * (y1 - y0), f"{size}{messages}",
                        ha="center", va="center", fontsize=6, zorder=5,
                        bbox={"boxstyle": "round,pad=0.15", "facecolor": "white",
                              "edgecolor": "none", "alpha": 0.85})
    names = [f"{d}\n(controller)" if d == t.controller else d for d in lanes]
    ax.set_yticks(range(len(lanes)), names, fontsize=9)
    ax.set_ylim(len(lanes) - 0.5, -0.5)
    ax.set_xlim(first - 0.5, last + 0.5)
    ax.set_xticks([])
    ax.set_xlabel("dependency order → (a task sits one column after the last task it "
                  "waits for; tasks in one column may run at the same time)", fontsize=8)
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    handles: list[Artist] = [Patch(facecolor=c, alpha=0.6, edgecolor=c, label=kind)
                             for (op, kind), c in colours.items() if op == COMPUTE]
    handles += [Line2D([], [], color=c, linewidth=1.6, marker=">", markersize=5,
                       label=f"→ {kind}") for (op, kind), c in colours.items() if op == TRANSFER]
    handles.append(Line2D([], [], color="#9a9a9a", linewidth=0.8, label="waits for"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0), frameon=False,
              fontsize=8, title="boxes: compute\narrows: transfer", title_fontsize=8)
    lines = textwrap.wrap(title or f"{t.dataflow} task graph", width=int(width * 12))
    if truncated:
        lines.append(f"only layers 0–{layers - 1} of {n_layers} drawn: {len(keep)} of "
                     f"{len(t)} tasks")
    ax.set_title("\n".join(lines), fontsize=10, loc="left")
    return _save(fig, path)
