"""Regret of myopic partitioners against the horizon optimum, per scenario.

For a scenario (one sequence, blocking migrations) each partitioner runs in the engine as
usual, and the placement it chose at every decision is kept. The optimum knowing the
future (:func:`~testbed.horizon.optimum.horizon_optimum`) is searched over every
placement when the model is small enough (``exact``), else over the placements the
candidate partitioners chose (``candidate_bound``): the scenario's own, plus — with
``candidates: registered`` — every registered partitioner that runs without options on
this model (the per-step optimum ``exact`` among them). Each partitioner's sequence and the
optimum are timed by the same :class:`~testbed.horizon.evaluator.HorizonEvaluator`;
``regret_s = total_time_s - optimum_time_s``. The engine's own time of the run is given
beside it (``simulated_time_s``) to show what the evaluator leaves out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from testbed.sim.records import completed
from testbed import config_values as cv
from testbed.errors import ConfigError, bad_value
from testbed.experiments.runner import sim_config
from testbed.experiments.scenario import (Scenario, check_partitioners, partitioner_label,
                                          partitioner_spec)
from testbed.experiments.seeding import component_seed
from testbed.horizon.evaluator import HorizonEvaluator
from testbed.horizon.optimum import DEFAULT_EXACT_LIMIT, horizon_optimum
from testbed.partition import make_partitioner
from testbed.partition.base import PARTITIONERS, Partitioner
from testbed.plan.placement import Placement
from testbed.sim.engine import Simulation

HORIZON_KEYS = ("exact_limit", "candidates")
#: registered partitioners never added as candidates: they need options (fixed, slices
#: placements), or enumerate what the exact search already covers (brute_force)
NOT_CANDIDATES = ("fixed", "brute_force", "slices")
REGRET_COLUMNS = ["partitioner", "total_time_s", "optimum_time_s", "regret_s", "regret_pct",
                  "optimum_kind", "simulated_time_s", "migrations", "optimum_migrations",
                  "placements_searched", "outcome"]


@dataclass(frozen=True)
class HorizonSpec:
    """The ``horizon:`` section: when to search exactly, which partitioners propose."""

    exact_limit: int = DEFAULT_EXACT_LIMIT
    candidates: str = "registered"     # or "scenario": the scenario's partitioners only


def parse_horizon(value: object, *, source: str) -> HorizonSpec:
    entry = cv.mapping(value if value is not None else {}, source=source, field="horizon",
                       what="{exact_limit, candidates}")
    cv.check_keys(entry, HORIZON_KEYS, source=source, field="horizon")
    limit = entry.get("exact_limit", DEFAULT_EXACT_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise bad_value(limit, "an integer >= 0 (placements searched exactly; 0: never)",
                        source=source, field="horizon.exact_limit")
    candidates = entry.get("candidates", "registered")
    if candidates not in ("registered", "scenario"):
        raise bad_value(candidates, "registered or scenario", source=source,
                        field="horizon.candidates")
    return HorizonSpec(limit, candidates)


class _Recorder(Partitioner):
    """Passes decisions through to ``inner`` and keeps each placement by token."""

    def __init__(self, inner: Partitioner):
        super().__init__(None)
        self.inner, self.name = inner, inner.name
        self.dataflows, self.places_shards = inner.dataflows, inner.places_shards
        self.chosen: dict[int, Placement] = {}

    def decide(self, obs):
        placement = self.inner.decide(obs)
        self.last_note = self.inner.last_note
        self.chosen[obs.token_index] = placement
        return placement


@dataclass
class _Run:
    label: str
    sequence: list[Placement] | None
    simulated_time_s: float
    outcome: str


def _candidate_entries(scenario: Scenario, spec: HorizonSpec) -> list:
    """Partitioner entries that propose placements: the scenario's, then (``registered``)
    every other registered one this model and dataflow accept."""
    entries = list(scenario.partitioners)
    if spec.candidates == "registered":
        have = {partitioner_label(e) for e in entries}
        for name in PARTITIONERS.names():
            if name in have or name in NOT_CANDIDATES:
                continue
            try:
                check_partitioners([name], scenario.source, scenario.sim.dataflow,
                                   scenario.sim.model)
            except ConfigError:
                continue
            entries.append(name)
    return entries


def _run(scenario: Scenario, entry, decision_tokens: list[int]) -> _Run:
    label = partitioner_label(entry)
    partitioner = _Recorder(make_partitioner(
        partitioner_spec(entry), seed=component_seed(scenario.seed, "partitioner", label),
        source=scenario.source))
    config = sim_config(scenario, dataflow=scenario.dataflow_of(entry))
    records = Simulation(config, partitioner).run()
    end = records.tokens[-1].end_s if records.tokens else float("nan")
    sequence, current = [], None
    for token in decision_tokens:
        current = partitioner.chosen.get(token, current)
        sequence.append(current)
    placements = [p for p in sequence if p is not None]
    complete = completed(records.outcome) and len(placements) == len(sequence)
    return _Run(label, placements if complete else None, end, records.outcome)


def scenario_regret(scenario: Scenario, spec: HorizonSpec = HorizonSpec()) -> pd.DataFrame:
    """One row per partitioner of ``scenario``: its time, the optimum's, the regret."""
    listed = {partitioner_label(e) for e in scenario.partitioners}
    evaluators: dict[str, HorizonEvaluator] = {}
    runs = []
    for entry in _candidate_entries(scenario, spec):
        key = json.dumps(scenario.dataflow_of(entry), sort_keys=True, default=str)
        if key not in evaluators:
            try:
                evaluators[key] = HorizonEvaluator(sim_config(
                    scenario, dataflow=scenario.dataflow_of(entry)))
            except ConfigError as error:
                raise error.located(scenario.source, error.field) from None
        runs.append((key, _run(scenario, entry, evaluators[key].decision_tokens)))
    hosts = scenario.sim.topology.hosts(scenario.sim.controller_hosts_blocks)
    rows: list[dict[str, Any]] = []
    for key, evaluator in evaluators.items():
        mine = [run for k, run in runs if k == key]
        used = [run.sequence for run in mine if run.sequence is not None]
        used = [seq for seq in used if _runs_under(evaluator, seq)]
        optimum = horizon_optimum(evaluator, used, hosts, spec.exact_limit) if used or \
            spec.exact_limit else None
        for run in mine:
            if run.label not in listed:
                continue
            total = evaluator.sequence_time_s(run.sequence) if run.sequence is not None \
                else float("nan")
            best = optimum.time_s if optimum is not None else float("nan")
            rows.append({
                "partitioner": run.label, "total_time_s": total, "optimum_time_s": best,
                "regret_s": total - best, "regret_pct": 100.0 * (total / best - 1.0),
                "optimum_kind": optimum.kind if optimum is not None else "none",
                "simulated_time_s": run.simulated_time_s,
                "migrations": sum(a != b for a, b in zip(run.sequence, run.sequence[1:]))
                if run.sequence is not None else 0,
                "optimum_migrations": optimum.migrations if optimum is not None else 0,
                "placements_searched": max(optimum.searched) if optimum is not None else 0,
                "outcome": run.outcome})
    order = {partitioner_label(e): i for i, e in enumerate(scenario.partitioners)}
    rows.sort(key=lambda r: order[r["partitioner"]])
    return pd.DataFrame(rows, columns=REGRET_COLUMNS)


def _runs_under(evaluator: HorizonEvaluator, sequence: list[Placement]) -> bool:
    """Whether every placement of ``sequence`` runs under the evaluator's dataflow."""
    for placement in dict.fromkeys(sequence):
        try:
            evaluator.dataflow.check(placement, evaluator.controller)
        except ConfigError:
            return False
    return True
