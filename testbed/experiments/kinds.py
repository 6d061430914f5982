"""What ``testbed run FILE`` does, by the file's ``experiment:`` key (default ``simulate``).

- ``simulate``: run the scenario with each partitioner (:mod:`.runner`);
- ``optimality_gap``: per-step cost of each partitioner against the exact optimum
  (:mod:`.optimality_gap`);
- ``sweep``: a grid of scenarios and seeds, resumable (:mod:`.sweep`); ``testbed sweep``
  runs the same kind in parallel;
- ``regret``: each partitioner against the placement sequence that knows the future
  (:mod:`testbed.horizon`), over a grid of scenarios and seeds.

Each kind is a function ``(data, source, options) -> KindResult`` registered by name: it
prints nothing (what to say comes back in the result, and ``options.announce`` hears one
line as a long run starts), so that notebooks and scripts run experiment files as the
``testbed`` command does, and :mod:`testbed.cli` alone parses arguments and prints.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from testbed.errors import ConfigError
from testbed.registry import Registry

if TYPE_CHECKING:
    import pandas as pd

EXPERIMENT_KINDS: Registry = Registry("experiment kind")
#: Exit status of ``testbed run`` when a run stalled (nothing could progress any more):
#: its records up to then are written, and one line per stalled partitioner goes to stderr.
EXIT_STALLED = 3


def _silent(line: str) -> None:
    """Say nothing (the default of :attr:`RunOptions.announce`)."""


@dataclass(frozen=True)
class RunOptions:
    """How to run an experiment file: what ``testbed run`` and ``testbed sweep`` set."""

    out: Path | None = None          # results folder (None: results/<name>/<run id>)
    force: bool = False              # replace an existing results folder
    quick: bool = False              # apply the file's quick section
    full: bool = False               # apply the file's full section
    seed: int | None = None          # override the file's seed
    figures: bool = True             # draw the PNG/PDF figures
    record_jobs: bool = False        # record every computation (jobs table)
    timeline: Path | None = None     # also write a Chrome/Perfetto trace here
    gantt: Path | None = None        # also draw a Gantt chart here
    gantt_tokens: int = 3            # decode tokens in the Gantt chart
    workers: int = 1                 # sweep: local worker processes
    scheduler: str | None = None     # sweep: a Dask scheduler's address
    progress: TextIO | None = None   # where progress lines go (None: nowhere)
    announce: Callable[[str], None] = _silent   # told one line as a long run starts


@dataclass
class KindResult:
    """What running an experiment file left: its results folder, the report for a reader
    (the summary), lines for standard error, and the exit status (0; :data:`EXIT_STALLED`;
    1 when sweep runs were lost)."""

    out: Path
    report: str
    status: int = 0
    warnings: list[str] = field(default_factory=list)


def _output_folder(options: RunOptions, name: str, resolved: dict) -> Path:
    from testbed.experiments.results import run_id
    return options.out if options.out else Path("results") / name / run_id(resolved)


def _writing(out: Path):
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot write the results: {error.strerror or error}",
                          source=str(out), field="--out") from None


@EXPERIMENT_KINDS.register("simulate")
def simulate(data: dict, source: str, options: RunOptions) -> KindResult:
    from testbed.experiments.results import (check_free, default_out_dir, results_folder,
                                             write_config, write_meta, write_results)
    from testbed.experiments.runner import run_scenario
    from testbed.experiments.scenario import scenario_from_dict
    from testbed.experiments.summary import format_summary
    from testbed.units import format_time

    scenario = scenario_from_dict(data, source=source, quick=options.quick,
                                  full=options.full, seed=options.seed)
    sim = scenario.sim
    options.announce(f"scenario {scenario.name}: {sim.model.name} on "
                     f"{len(sim.topology.devices)} devices ({sim.topology.name}), "
                     f"{sim.prompt_tokens}-token prompt, {sim.generate_tokens} tokens, a "
                     f"decision every {sim.decision_interval} token(s), {sim.migration_mode} "
                     f"migration, seed {scenario.seed}")
    timeline, gantt = options.timeline, options.gantt
    out = options.out if options.out else default_out_dir(scenario)
    check_free(out, force=options.force)            # before the work, not after it
    progress = None
    if options.progress is not None and options.progress.isatty():
        from testbed.experiments.progress import TokenProgress
        progress = TokenProgress(options.progress)
    with contextlib.ExitStack() as stack:
        # the large tables go to disk as they are recorded (not for a timeline or a Gantt
        # chart, which draw from the flows in memory)
        spool = None if timeline or gantt else Path(stack.enter_context(
            tempfile.TemporaryDirectory(prefix="testbed-spool-")))
        try:
            result = run_scenario(scenario,
                                  record_jobs=bool(options.record_jobs or timeline or gantt),
                                  progress=progress, spool=spool)
        except ConfigError:
            raise
        except Exception as error:   # a bug: the folder records it (as desmod does)
            import traceback
            with results_folder(out, force=options.force) as folder:
                write_config(folder, scenario.resolved)
                write_meta(folder, name=scenario.name, source=scenario.source,
                           seed=scenario.seed, resolved=scenario.resolved,
                           wall_s=float("nan"), outcome="error",
                           exception=f"{type(error).__name__}: {error}",
                           traceback=traceback.format_exc())
            raise
        finally:
            if progress is not None:
                progress.close()
        try:
            with results_folder(out, force=options.force) as folder:
                write_results(result, folder, figures=options.figures)
        except OSError as error:  # e.g. --out names a file, or a read-only folder
            raise ConfigError(f"cannot write the results: {error.strerror or error}",
                              source=str(out), field="--out") from None
    lines = [format_summary(result.summary, result.tables["memory"]),
             f"\nsimulated in {format_time(result.wall_s, 3)}; results in {out}/"]
    if timeline:
        from testbed.experiments.timeline import write_trace
        lines.append(f"timeline (Chrome/Perfetto trace) in {write_trace(result, timeline)}")
    if gantt:
        from testbed.experiments.plots import plot_gantt
        from testbed.experiments.timeline import timeline_slices
        path = plot_gantt(timeline_slices(result.tables, sim.topology), gantt,
                          tokens=options.gantt_tokens,
                          title=f"{scenario.name}: {sim.model.name}")
        lines.append(f"Gantt chart in {path}")
    stalled = [f"{label} {outcome}" for label, outcome in result.outcomes.items()
               if outcome.startswith("stalled")]
    return KindResult(out, "\n".join(lines), EXIT_STALLED if stalled else 0, stalled)


@EXPERIMENT_KINDS.register("optimality_gap")
def optimality_gap(data: dict, source: str, options: RunOptions) -> KindResult:
    from testbed.experiments.optimality_gap import (format_gap_summary, load_gap_spec,
                                                    run_gap_experiment, summarise_gaps)
    from testbed.experiments.results import check_free

    _single_run_options(options, "an optimality-gap experiment")
    spec = load_gap_spec(data, source=source, quick=options.quick, full=options.full,
                         seed=options.seed)
    out = _output_folder(options, spec.name, spec.resolved)
    check_free(out, force=options.force)
    runs = len(spec.settings) * spec.seeds * len(spec.presets) * len(spec.partitioners)
    options.announce(f"experiment {spec.name}: {runs} runs of {spec.steps} decisions, each "
                     f"against the exact optimum (seed {spec.seed})")
    started = time.perf_counter()
    steps = run_gap_experiment(spec)
    summary = summarise_gaps(steps)
    wall = time.perf_counter() - started

    def figure(folder: Path) -> None:
        from testbed.experiments.plots import plot_gaps
        plot_gaps(steps, folder / "gap.png", title=f"{spec.name}: per-step gap to the optimum")
    _write_tables(out, options, name=spec.name, source=source, seed=spec.seed,
                  resolved=spec.resolved, wall_s=wall, figure=figure,
                  tables={"gap_steps": steps, "gap_summary": summary, "summary": summary})
    return KindResult(out, f"{format_gap_summary(summary)}\n\nran in {wall:.1f} s; "
                           f"results in {out}/")


@EXPERIMENT_KINDS.register("regret")
def regret(data: dict, source: str, options: RunOptions) -> KindResult:
    """Each partitioner's total time against the horizon optimum; regret.csv."""
    from testbed.experiments.results import check_free
    from testbed.horizon.experiment import (format_regret, load_regret_spec, run_regret,
                                            summarise_regret)

    _single_run_options(options, "a regret experiment")
    name, runs, spec, resolved = load_regret_spec(data, source=source, quick=options.quick,
                                                  full=options.full, seed=options.seed)
    out = _output_folder(options, name, resolved)
    check_free(out, force=options.force)
    options.announce(f"experiment {name}: {len(runs)} scenario(s), each partitioner against "
                     f"the horizon optimum (exact up to {spec.exact_limit} placements, else "
                     f"a bound on the candidates' placements)")
    started = time.perf_counter()
    with _run_progress(options, len(runs)) as progress:
        table = run_regret(runs, spec, source=source, progress=progress)
    summary = summarise_regret(table)
    wall = time.perf_counter() - started

    def figure(folder: Path) -> None:
        from testbed.horizon.plots import plot_regret
        plot_regret(table, folder / "regret.png", title=f"{name}: the price of myopia")
    _write_tables(out, options, name=name, source=source,
                  seed=runs[0].labels["seed"] if runs else 0, resolved=resolved, wall_s=wall,
                  figure=None if table.empty else figure,
                  tables={"regret": table, "summary": summary})
    return KindResult(out, f"{format_regret(summary)}\n\nran in {wall:.1f} s; "
                           f"results in {out}/")


@EXPERIMENT_KINDS.register("fidelity")
def fidelity(data: dict, source: str, options: RunOptions) -> KindResult:
    """Each published row of a table simulated with the same settings; fidelity.csv."""
    from testbed.experiments.fidelity import (format_fidelity, load_fidelity_spec,
                                              run_fidelity)
    from testbed.experiments.results import check_free

    _single_run_options(options, "a fidelity experiment")
    spec = load_fidelity_spec(data, source=source, quick=options.quick, full=options.full,
                              seed=options.seed)
    out = _output_folder(options, spec.name, spec.resolved)
    check_free(out, force=options.force)
    options.announce(f"fidelity {spec.name}: {len(spec.cases)} published rows"
                     + (f" ({spec.source_note})" if spec.source_note else ""))
    started = time.perf_counter()
    table, tokens = run_fidelity(spec, source=source)
    wall = time.perf_counter() - started

    def figure(folder: Path) -> None:
        from testbed.experiments.plots import plot_fidelity
        plot_fidelity(table, folder / "fidelity.png", title=spec.name)
    _write_tables(out, options, name=spec.name, source=source,
                  seed=spec.template.get("seed", 0), resolved=spec.resolved, wall_s=wall,
                  figure=figure, tables={"fidelity": table, "summary": table, "tokens": tokens})
    agree = int(table.agrees.sum())
    return KindResult(out, f"{format_fidelity(table)}\n\n{agree} of {len(table)} rows agree "
                           f"(|error| <= {spec.tolerance_pct:g} %, or the same outcome); ran "
                           f"in {wall:.1f} s; results in {out}/")


@EXPERIMENT_KINDS.register("sweep")
def sweep(data: dict, source: str, options: RunOptions) -> KindResult:
    """Every run of the grid not done yet, then the merged tables, on ``options.workers``
    local processes (1: in this process) or a Dask ``options.scheduler``."""
    from testbed.experiments.results import write_config
    from testbed.experiments.scenario import scenario_from_dict
    from testbed.experiments.summary import format_sweep_summary
    from testbed.experiments.sweep import (clean_partial, expand, is_done, merge, store,
                                           unique_runs)
    from testbed.experiments.sweep_backends import describe, run_outputs

    _single_run_options(options, "a sweep")
    name, runs = expand(data, source=source, quick=options.quick, full=options.full,
                        seed=options.seed)
    runs = unique_runs(runs)
    for run in runs:   # every grid point is checked before anything runs
        scenario_from_dict(dict(run.scenario), source=source)
    resolved = {**{k: v for k, v in data.items() if k not in ("quick", "full")},
                "runs": [r.run_id for r in runs]}
    out = _output_folder(options, name, resolved)
    _writing(out)
    write_config(out, resolved)
    clean_partial(out)
    todo = [run for run in runs if not is_done(out, run)]
    how = describe(len(todo), workers=options.workers, scheduler=options.scheduler)
    options.announce(f"sweep {name}: {len(runs)} runs ({len(runs) - len(todo)} already "
                     f"done), {how}; results in {out}/")
    # relative paths in the scenario start from the sweep file, in any worker's folder
    outputs = run_outputs(todo, str(Path(source).resolve()), workers=options.workers,
                          scheduler=options.scheduler)
    failures = lost = 0
    with _run_progress(options, len(todo)) as progress:
        try:
            for run, output in outputs:
                if output is None:
                    lost += 1
                else:
                    failures += store(out, run, output).startswith("error")
                progress(failed=output is None or output.outcome != "ok")
        finally:
            outputs.close()   # an interrupted sweep stops its workers now
    tables = merge(out, runs)
    if options.figures and "tokens" in tables:
        from testbed.experiments.plots import plot_sweep
        plot_sweep(tables, out, title=name)
    report = format_sweep_summary(tables["summary"]) + "\n\n" if "summary" in tables else ""
    report += f"{len(runs)} runs, {failures} failed this time; merged tables in {out}/"
    if lost:
        return KindResult(out, report, 1, [f"{lost} run(s) lost with their worker; run the "
                                           "sweep again to do them"])
    return KindResult(out, report)


def _write_tables(out: Path, options: RunOptions, *, name: str, source: str, seed: int,
                  resolved: dict, wall_s: float, tables: dict[str, pd.DataFrame],
                  figure: Callable[[Path], None] | None) -> None:
    """A results folder of an experiment that is not one scenario's run, written whole:
    its config, ``<name>.csv`` per table (every experiment has a ``summary``), its
    metadata and, unless ``options.figures`` is off, ``figure(folder)``."""
    from testbed.experiments.results import results_folder, write_config, write_meta

    with results_folder(out, force=options.force) as folder:
        write_config(folder, resolved)
        for table, frame in tables.items():
            frame.to_csv(folder / f"{table}.csv", index=False)
        write_meta(folder, name=name, source=source, seed=seed, resolved=resolved,
                   wall_s=wall_s)
        if options.figures and figure is not None:
            figure(folder)


@contextlib.contextmanager
def _run_progress(options: RunOptions, total: int):
    """A ``progress(failed=False)`` callback counting finished runs on
    ``options.progress`` (a no-op without one)."""
    if options.progress is None:
        yield lambda failed=False: None
        return
    from testbed.experiments.progress import Progress
    bar = Progress(total, stream=options.progress)
    try:
        yield bar.update
    finally:
        bar.close()


def _single_run_options(options: RunOptions, what: str) -> None:
    """``--timeline`` and ``--gantt`` draw one scenario's run, not ``what``."""
    for option in ("timeline", "gantt"):
        if getattr(options, option) is not None:
            raise ConfigError(f"applies to a single scenario (experiment: simulate), not to "
                              f"{what}", field=f"--{option}")


def load_experiment(path: str | Path) -> tuple[dict, str]:
    """The mapping of experiment file ``path`` (or of a shipped one by name) and the
    file's name as errors name it."""
    from testbed import config_values as cv
    from testbed._shipped import find_experiment
    from testbed.cluster.yaml_reader import read_yaml

    path = find_experiment(path)
    source = str(path)
    return cv.mapping(read_yaml(path), source=source, field=None, what="a scenario"), source


def run_experiment(data: dict, source: str, options: RunOptions = RunOptions()) -> KindResult:
    """Run a file's mapping as the kind its ``experiment:`` key names."""
    kind = data.get("experiment", "simulate")
    return EXPERIMENT_KINDS.get(kind, source=source, field="experiment")(data, source, options)


def run_file(path: str | Path, options: RunOptions = RunOptions()) -> KindResult:
    """Run experiment file ``path`` as ``testbed run`` does, printing nothing."""
    return run_experiment(*load_experiment(path), options)


def run_sweep(data: dict, source: str, options: RunOptions = RunOptions()) -> KindResult:
    """Run a file's mapping as a sweep (``testbed sweep``: a plain scenario is a sweep of
    one point per seed)."""
    kind = data.get("experiment", "simulate")
    if kind not in ("sweep", "simulate"):
        raise ConfigError(f"got {kind!r}; testbed sweep runs sweep files (experiment: sweep) "
                          f"and scenarios; run this one with testbed run", source=source,
                          field="experiment", value=kind)
    return sweep(data, source, options)
