"""What ``testbed run FILE`` does, by the file's ``experiment:`` key (default ``simulate``).

- ``simulate``: run the scenario with each partitioner (:mod:`.runner`);
- ``optimality_gap``: per-step cost of each partitioner against the exact optimum
  (:mod:`.optimality_gap`);
- ``sweep``: a grid of scenarios and seeds, resumable (:mod:`.sweep`); ``testbed sweep``
  runs the same kind in parallel;
- ``regret``: each partitioner against the placement sequence that knows the future
  (:mod:`testbed.horizon`), over a grid of scenarios and seeds.

Each kind is a function ``(data, source, args) -> exit status`` registered by name.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

from testbed.errors import ConfigError
from testbed.registry import Registry

EXPERIMENT_KINDS: Registry = Registry("experiment kind")
#: Exit status of ``testbed run`` when a run stalled (nothing could progress any more):
#: its records up to then are written, and one line per stalled partitioner goes to stderr.
EXIT_STALLED = 3


def _output_folder(args: argparse.Namespace, name: str, resolved: dict) -> Path:
    from testbed.experiments.results import run_id
    return Path(args.out) if args.out else Path("results") / name / run_id(resolved)


def _writing(out: Path):
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot write the results: {error.strerror or error}",
                          source=str(out), field="--out") from None


@EXPERIMENT_KINDS.register("simulate")
def simulate(data: dict, source: str, args: argparse.Namespace) -> int:
    from testbed.experiments.results import (check_free, default_out_dir, results_folder,
                                             write_config, write_meta, write_results)
    from testbed.experiments.runner import run_scenario
    from testbed.experiments.scenario import scenario_from_dict
    from testbed.experiments.summary import format_summary
    from testbed.units import format_time

    scenario = scenario_from_dict(data, source=source, quick=args.quick, full=args.full,
                                  seed=args.seed)
    sim = scenario.sim
    print(f"scenario {scenario.name}: {sim.model.name} on {len(sim.topology.devices)} "
          f"devices ({sim.topology.name}), {sim.prompt_tokens}-token prompt, "
          f"{sim.generate_tokens} tokens, a decision every {sim.decision_interval} "
          f"token(s), {sim.migration_mode} migration, seed {scenario.seed}", flush=True)
    timeline, gantt = getattr(args, "timeline", None), getattr(args, "gantt", None)
    out = Path(args.out) if args.out else default_out_dir(scenario)
    force = getattr(args, "force", False)
    check_free(out, force=force)            # before the work, not after it
    progress = None
    if not getattr(args, "quiet", False) and sys.stderr.isatty():
        from testbed.experiments.progress import TokenProgress
        progress = TokenProgress(sys.stderr)
    with contextlib.ExitStack() as stack:
        # the large tables go to disk as they are recorded (not for a timeline or a Gantt
        # chart, which draw from the flows in memory)
        spool = None if timeline or gantt else Path(stack.enter_context(
            tempfile.TemporaryDirectory(prefix="testbed-spool-")))
        try:
            result = run_scenario(scenario, record_jobs=bool(args.jobs or timeline or gantt),
                                  progress=progress, spool=spool)
        except ConfigError:
            raise
        except Exception as error:   # a bug: the folder records it (as desmod does)
            import traceback
            with results_folder(out, force=force) as folder:
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
            with results_folder(out, force=force) as folder:
                write_results(result, folder, figures=not args.no_figures)
        except OSError as error:  # e.g. --out names a file, or a read-only folder
            raise ConfigError(f"cannot write the results: {error.strerror or error}",
                              source=str(out), field="--out") from None
    print(format_summary(result.summary, result.tables["memory"]))
    print(f"\nsimulated in {format_time(result.wall_s, 3)}; results in {out}/")
    stalled = {label: outcome for label, outcome in result.outcomes.items()
               if outcome.startswith("stalled")}
    if timeline:
        from testbed.experiments.timeline import write_trace
        print(f"timeline (Chrome/Perfetto trace) in {write_trace(result, timeline)}")
    if gantt:
        from testbed.experiments.plots import plot_gantt
        from testbed.experiments.timeline import timeline_slices
        path = plot_gantt(timeline_slices(result.tables, scenario.sim.topology), gantt,
                          tokens=getattr(args, "gantt_tokens", 3) or 3,
                          title=f"{scenario.name}: {scenario.sim.model.name}")
        print(f"Gantt chart in {path}")
    if stalled:
        for label, outcome in stalled.items():
            print(f"testbed: {label} {outcome}", file=sys.stderr)
        return EXIT_STALLED
    return 0


@EXPERIMENT_KINDS.register("optimality_gap")
def optimality_gap(data: dict, source: str, args: argparse.Namespace) -> int:
    from testbed.experiments.optimality_gap import (format_gap_summary, load_gap_spec,
                                                    run_gap_experiment, summarise_gaps)
    from testbed.experiments.results import (check_free, results_folder, write_config,
                                             write_meta)

    _single_run_options(args, "an optimality-gap experiment")
    spec = load_gap_spec(data, source=source, quick=args.quick, full=args.full, seed=args.seed)
    out = _output_folder(args, spec.name, spec.resolved)
    check_free(out, force=getattr(args, "force", False))
    runs = len(spec.settings) * spec.seeds * len(spec.presets) * len(spec.partitioners)
    print(f"experiment {spec.name}: {runs} runs of {spec.steps} decisions, each against the "
          f"exact optimum (seed {spec.seed})", flush=True)
    started = time.perf_counter()
    steps = run_gap_experiment(spec)
    summary = summarise_gaps(steps)
    wall = time.perf_counter() - started
    with results_folder(out, force=getattr(args, "force", False)) as folder:
        write_config(folder, spec.resolved)
        steps.to_csv(folder / "gap_steps.csv", index=False)
        summary.to_csv(folder / "gap_summary.csv", index=False)
        summary.to_csv(folder / "summary.csv", index=False)   # every experiment has one
        write_meta(folder, name=spec.name, source=source, seed=spec.seed,
                   resolved=spec.resolved, wall_s=wall)
        if not args.no_figures:
            from testbed.experiments.plots import plot_gaps
            plot_gaps(steps, folder / "gap.png",
                      title=f"{spec.name}: per-step gap to the optimum")
    print(format_gap_summary(summary))
    print(f"\nran in {wall:.1f} s; results in {out}/")
    return 0


@EXPERIMENT_KINDS.register("regret")
def regret(data: dict, source: str, args: argparse.Namespace) -> int:
    """Each partitioner's total time against the horizon optimum; regret.csv."""
    from testbed.experiments.progress import Progress
    from testbed.experiments.results import (check_free, results_folder, write_config,
                                             write_meta)
    from testbed.horizon.experiment import (format_regret, load_regret_spec, run_regret,
                                            summarise_regret)

    _single_run_options(args, "a regret experiment")
    name, runs, spec, resolved = load_regret_spec(data, source=source, quick=args.quick,
                                                  full=args.full, seed=args.seed)
    out = _output_folder(args, name, resolved)
    check_free(out, force=getattr(args, "force", False))
    print(f"experiment {name}: {len(runs)} scenario(s), each partitioner against the "
          f"horizon optimum (exact up to {spec.exact_limit} placements, else a bound on "
          f"the candidates' placements)", flush=True)
    started = time.perf_counter()
    progress = Progress(len(runs), stream=sys.stderr)
    try:
        table = run_regret(runs, spec, source=source, progress=progress.update)
    finally:
        progress.close()
    summary = summarise_regret(table)
    wall = time.perf_counter() - started
    with results_folder(out, force=getattr(args, "force", False)) as folder:
        write_config(folder, resolved)
        table.to_csv(folder / "regret.csv", index=False)
        summary.to_csv(folder / "summary.csv", index=False)   # every experiment has one
        write_meta(folder, name=name, source=source,
                   seed=runs[0].labels["seed"] if runs else 0, resolved=resolved, wall_s=wall)
        if not args.no_figures and not table.empty:
            from testbed.horizon.plots import plot_regret
            plot_regret(table, folder / "regret.png", title=f"{name}: the price of myopia")
    print(format_regret(summary))
    print(f"\nran in {wall:.1f} s; results in {out}/")
    return 0


@EXPERIMENT_KINDS.register("fidelity")
def fidelity(data: dict, source: str, args: argparse.Namespace) -> int:
    """Each published row of a table simulated with the same settings; fidelity.csv."""
    from testbed.experiments.fidelity import (format_fidelity, load_fidelity_spec,
                                              run_fidelity)
    from testbed.experiments.results import (check_free, results_folder, write_config,
                                             write_meta)

    _single_run_options(args, "a fidelity experiment")
    spec = load_fidelity_spec(data, source=source, quick=args.quick, full=args.full,
                              seed=args.seed)
    out = _output_folder(args, spec.name, spec.resolved)
    check_free(out, force=getattr(args, "force", False))
    print(f"fidelity {spec.name}: {len(spec.cases)} published rows"
          + (f" ({spec.source_note})" if spec.source_note else ""), flush=True)
    started = time.perf_counter()
    table, tokens = run_fidelity(spec, source=source)
    wall = time.perf_counter() - started
    with results_folder(out, force=getattr(args, "force", False)) as folder:
        write_config(folder, spec.resolved)
        table.to_csv(folder / "fidelity.csv", index=False)
        table.to_csv(folder / "summary.csv", index=False)    # every experiment has one
        tokens.to_csv(folder / "tokens.csv", index=False)
        write_meta(folder, name=spec.name, source=source, seed=spec.template.get("seed", 0),
                   resolved=spec.resolved, wall_s=wall)
        if not args.no_figures:
            from testbed.experiments.plots import plot_fidelity
            plot_fidelity(table, folder / "fidelity.png", title=spec.name)
    print(format_fidelity(table))
    agree = int(table.agrees.sum())
    print(f"\n{agree} of {len(table)} rows agree (|error| <= {spec.tolerance_pct:g} %, or the "
          f"same outcome); ran in {wall:.1f} s; results in {out}/")
    return 0


@EXPERIMENT_KINDS.register("sweep")
def sweep(data: dict, source: str, args: argparse.Namespace) -> int:
    """Every run of the grid not done yet, then the merged tables. ``args.workers`` (local
    processes) and ``args.scheduler`` (a Dask address) come from ``testbed sweep``;
    ``testbed run`` of a sweep file runs serially in this process."""
    from testbed.experiments.progress import Progress
    from testbed.experiments.results import write_config
    from testbed.experiments.scenario import scenario_from_dict
    from testbed.experiments.summary import format_sweep_summary
    from testbed.experiments.sweep import (clean_partial, expand, is_done, merge, store,
                                           unique_runs)
    from testbed.experiments.sweep_backends import describe, run_outputs

    _single_run_options(args, "a sweep")
    name, runs = expand(data, source=source, quick=args.quick, full=args.full, seed=args.seed)
    runs = unique_runs(runs)
    for run in runs:   # every grid point is checked before anything runs
        scenario_from_dict(dict(run.scenario), source=source)
    resolved = {**{k: v for k, v in data.items() if k not in ("quick", "full")},
                "runs": [r.run_id for r in runs]}
    out = _output_folder(args, name, resolved)
    _writing(out)
    write_config(out, resolved)
    clean_partial(out)
    todo = [run for run in runs if not is_done(out, run)]
    workers = getattr(args, "workers", 1) or 1
    scheduler = getattr(args, "scheduler", None)
    print(f"sweep {name}: {len(runs)} runs ({len(runs) - len(todo)} already done), "
          f"{describe(len(todo), workers=workers, scheduler=scheduler)}; results in {out}/",
          flush=True)
    # relative paths in the scenario start from the sweep file, in any worker's folder
    outputs = run_outputs(todo, str(Path(source).resolve()), workers=workers,
                          scheduler=scheduler)
    progress = Progress(len(todo), stream=sys.stderr)
    failures = lost = 0
    try:
        for run, output in outputs:
            if output is None:
                lost += 1
            else:
                failures += store(out, run, output).startswith("error")
            progress.update(failed=output is None or output.outcome != "ok")
    finally:
        outputs.close()   # an interrupted sweep stops its workers now
        progress.close()
    tables = merge(out, runs)
    if not args.no_figures and "tokens" in tables:
        from testbed.experiments.plots import plot_sweep
        plot_sweep(tables, out, title=name)
    if "summary" in tables:
        print(format_sweep_summary(tables["summary"]))
    print(f"\n{len(runs)} runs, {failures} failed this time; merged tables in {out}/")
    if lost:
        print(f"testbed: {lost} run(s) lost with their worker; run the sweep again to do them",
              file=sys.stderr)
        return 1
    return 0


def _single_run_options(args: argparse.Namespace, what: str) -> None:
    """``--timeline`` and ``--gantt`` draw one scenario's run, not ``what``."""
    for option in ("timeline", "gantt"):
        if getattr(args, option, None):
            raise ConfigError(f"applies to a single scenario (experiment: simulate), not to "
                              f"{what}", field=f"--{option}")


def apply_sets(data: dict, assignments: list[str], *, source: str) -> dict:
    """``--set a.b=VALUE`` overrides (VALUE read as YAML: numbers, lists, strings)."""
    import yaml

    from testbed.experiments.sweep import set_dotted
    for text in assignments:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise ConfigError(f"got {text!r}; expected KEY=VALUE such as "
                              "workload.generate_tokens=16", source=source, field="--set")
        try:
            parsed = yaml.safe_load(value) if value else ""
        except yaml.YAMLError:
            parsed = value
        try:
            data = set_dotted(data, key, parsed)
        except ConfigError as error:
            raise error.located(source, "--set") from None
    return data


def read_experiment(path: str | Path, args: argparse.Namespace) -> tuple[dict, str]:
    """The file's mapping with the ``--set`` overrides applied, and its name."""
    from testbed import config_values as cv
    from testbed.cluster.yaml_reader import read_yaml

    from testbed._shipped import find_experiment
    path = find_experiment(path)
    source = str(path)
    data = cv.mapping(read_yaml(path), source=source, field=None, what="a scenario")
    return apply_sets(data, getattr(args, "set", None) or [], source=source), source


def run_file(path: str, args: argparse.Namespace) -> int:
    """Read ``path`` and run it as the kind its ``experiment:`` key names."""
    data, source = read_experiment(path, args)
    kind = data.get("experiment", "simulate")
    handler = EXPERIMENT_KINDS.get(kind, source=source, field="experiment")
    return handler(data, source, args)


def sweep_file(path: str, args: argparse.Namespace) -> int:
    """``testbed sweep``: run ``path`` as a sweep (a plain scenario is a sweep of one point
    per seed)."""
    data, source = read_experiment(path, args)
    kind = data.get("experiment", "simulate")
    if kind not in ("sweep", "simulate"):
        raise ConfigError(f"got {kind!r}; testbed sweep runs sweep files (experiment: sweep) "
                          f"and scenarios; run this one with testbed run", source=source,
                          field="experiment", value=kind)
    return EXPERIMENT_KINDS.get("sweep")(data, source, args)
