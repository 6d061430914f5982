"""Run a scenario: one simulation per partitioner, then summarise.

:func:`run_scenario` returns a :class:`RunResult` with tidy tables (a ``partitioner``
column in each) and the summary; :func:`testbed.experiments.results.write_results`
writes them to a folder. With a ``spool`` folder the large tables (:data:`SPOOLED`: a
long run leaves millions of flows) go to Parquet files there as each partitioner's run
ends, instead of staying in memory; ``tables["flows"]`` then holds their totals per
partitioner, source, destination and kind (all the summary needs), and
``RunResult.spooled`` lists the files.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from testbed.dataflows import Dataflow
from testbed.errors import ConfigError
from testbed.experiments.scenario import Scenario, partitioner_label, partitioner_spec
from testbed.experiments.seeding import component_seed
from testbed.experiments.energy import device_energy
from testbed.experiments.summary import summarise
from testbed.partition import make_partitioner
from testbed.sim.compute import JobRecord
from testbed.sim.engine import SimConfig, Simulation
from testbed.sim.network import FlowRecord
from testbed.sim.record_log import ChunkedLog
from testbed.sim.records import Records


@dataclass
class RunResult:
    """Tables of one scenario run, keyed by table name; ``summary`` has one row per
    partitioner."""

    scenario: Scenario
    tables: dict[str, pd.DataFrame]
    summary: pd.DataFrame
    wall_s: float
    outcomes: dict[str, str] = field(default_factory=dict)
    spooled: dict[str, list[Path]] = field(default_factory=dict)   # table -> Parquet parts


def sim_config(scenario: Scenario, *, record_jobs: bool = False,
               dataflow: Dataflow | str | dict | None = None) -> SimConfig:
    """The engine's configuration for ``scenario`` (``dataflow``: a partitioner entry's
    own, else the scenario's)."""
    return dataclasses.replace(
        scenario.sim, record_jobs=record_jobs,
        dataflow=dataflow if dataflow is not None else scenario.sim.dataflow)


def total_tokens(scenario: Scenario) -> int:
    """Output tokens a run of ``scenario`` generates (every request's, when serving)."""
    if scenario.sim.requests is not None:
        return sum(r.output_tokens for r in scenario.sim.requests)
    return scenario.sim.generate_tokens


#: Tables written to the spool as each run ends (see the module docstring).
SPOOLED = ("flows", "jobs")


def _flow_totals(path: Path | None) -> pd.DataFrame:
    """Bytes per partitioner, source, destination and kind of one run's spooled flows
    (read by column with Arrow, not as a whole table)."""
    keys = ["partitioner", "src", "dst", "kind"]
    if path is None:      # the run sent nothing
        return pd.DataFrame({**{key: pd.Series(dtype=str) for key in keys},
                             "size_bytes": pd.Series(dtype=float)})
    import pyarrow.parquet as pq
    table = pq.read_table(path, columns=keys + ["size_bytes"],
                          read_dictionary=keys).unify_dictionaries()
    totals = table.group_by(keys, use_threads=False).aggregate([("size_bytes", "sum")])
    frame = totals.to_pandas().rename(columns={"size_bytes_sum": "size_bytes"})
    return frame.astype({key: str for key in keys})[keys + ["size_bytes"]]


def run_scenario(scenario: Scenario, *, record_jobs: bool = False,
                 progress: Callable[[str, int, int], None] | None = None,
                 spool: Path | None = None) -> RunResult:
    """Simulate every partitioner of ``scenario`` under the same conditions; ``progress``
    is told (partitioner, tokens done, tokens in all) as each run goes; ``spool``: see the
    module docstring."""
    started = time.perf_counter()
    spooled: dict[str, list[Path]] = {name: [] for name in SPOOLED} if spool else {}
    per_table: dict[str, list[pd.DataFrame]] = {}
    outcomes: dict[str, str] = {}
    wall: dict[str, float] = {}
    for i, spec in enumerate(scenario.partitioners):
        label = partitioner_label(spec)
        field_name = f"partitioners[{i}]"
        partitioner = make_partitioner(partitioner_spec(spec),
                                       seed=component_seed(scenario.seed, "partitioner", label),
                                       source=scenario.source, field=field_name)
        sim_started = time.perf_counter()
        try:
            config = sim_config(scenario, record_jobs=record_jobs,
                                dataflow=scenario.dataflow_of(spec))
            records = Records()
            if spool is not None:    # the large tables stream to Parquet files as they fill
                records.flows = ChunkedLog(FlowRecord, sink=Path(spool) / f"flows-{i}.parquet",
                                           constants={"partitioner": label})
                records.jobs = ChunkedLog(JobRecord, sink=Path(spool) / f"jobs-{i}.parquet",
                                          constants={"partitioner": label})
            simulation = Simulation(config, partitioner, records)
            if progress is not None:
                total = total_tokens(scenario)
                simulation.on_pass = lambda done, label=label: progress(label, done, total)
            records = simulation.run()
        except ConfigError as error:
            # bad input only found at run time (e.g. a fixed placement that leaves blocks
            # unplaced): name the scenario file and the partitioner entry
            raise error.located(scenario.source, field_name) from None
        outcomes[label] = records.outcome
        wall[label] = time.perf_counter() - sim_started
        frames = records.frames(skip=SPOOLED if spool is not None else ())
        if spool is not None:
            parts = {name: getattr(records, name).close() for name in SPOOLED}
            for name, path in parts.items():
                if path is not None:
                    spooled[name].append(path)
            frames["flows"] = _flow_totals(parts["flows"])
        del records, simulation              # the run's objects: only its tables are kept
        for name, frame in frames.items():
            if "partitioner" not in frame.columns:
                frame.insert(0, "partitioner", label)
            per_table.setdefault(name, []).append(frame)
        del frames
    tables = {name: _concat(frames) for name, frames in per_table.items()}
    tables["devices"] = device_energy(tables["devices"], scenario.sim.topology)
    summary = summarise(tables, outcomes, scenario.sim.topology, scenario.slo)
    summary["sim_wall_s"] = summary.partitioner.map(wall)
    return RunResult(scenario, tables, summary, time.perf_counter() - started, outcomes,
                     spooled)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Stack per-partitioner tables; empty ones only contribute their columns."""
    full = [f for f in frames if not f.empty]
    return pd.concat(full, ignore_index=True) if full else frames[0]
