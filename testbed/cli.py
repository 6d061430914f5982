"""The ``testbed`` command line: run scenarios and sweeps, list the catalogs.

Bad input is reported on one line (file, field, value, what was expected) with exit
status 2 and no traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from testbed.errors import ConfigError, bad_value


def _cmd_run(args: argparse.Namespace) -> int:
    from testbed.experiments.kinds import run_experiment
    data, source = read_experiment(args.scenario, args.set or [])
    return _report(run_experiment(data, source, _run_options(args)))


def _cmd_sweep(args: argparse.Namespace) -> int:
    from testbed.experiments.kinds import run_sweep
    data, source = read_experiment(args.sweep, args.set or [])
    return _report(run_sweep(data, source, _run_options(args)))


def _run_options(args: argparse.Namespace):
    """The options of ``testbed run`` or ``testbed sweep`` for the library."""
    from testbed.experiments.kinds import RunOptions

    def path(value: str | None) -> Path | None:
        return Path(value) if value else None

    def announce(line: str) -> None:
        print(line, flush=True)
    return RunOptions(
        out=path(args.out), force=getattr(args, "force", False), quick=args.quick,
        full=args.full, seed=args.seed, figures=not args.no_figures,
        record_jobs=getattr(args, "jobs", False), timeline=path(getattr(args, "timeline", None)),
        gantt=path(getattr(args, "gantt", None)), gantt_tokens=getattr(args, "gantt_tokens", 3),
        workers=getattr(args, "workers", 1), scheduler=getattr(args, "scheduler", None),
        progress=None if args.quiet else sys.stderr, announce=announce)


def _report(result) -> int:
    """Print what a run found (stdout) and its warnings (stderr); its exit status."""
    print(result.report)
    for line in result.warnings:
        print(f"testbed: {line}", file=sys.stderr)
    return result.status


def read_experiment(path: str, assignments: list[str]) -> tuple[dict, str]:
    """The experiment file's mapping with the ``--set KEY=VALUE`` overrides applied, and
    its name."""
    from testbed.experiments.kinds import load_experiment
    data, source = load_experiment(path)
    return apply_sets(data, assignments, source=source), source


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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"got {text!r}; expected an integer >= 1")
    return value


def _cpu_count() -> int:
    import os
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _cmd_plot(args: argparse.Namespace) -> int:
    from testbed.experiments.plots import plot_results
    paths = plot_results(args.results)
    for path in paths:
        print(path)
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    if args.backend == "ns3":
        from testbed.emulation.ns3.validate import TARGETS, Ns3Unavailable, validate_ns3
        out = args.out or str(Path("results") / Path(args.scenario).stem / "validate-ns3")
        try:
            result = validate_ns3(args.scenario, out, quick=args.quick, full=args.full,
                                  seed=args.seed)
        except Ns3Unavailable as error:
            print(f"testbed: error: cannot run the ns-3 backend here: {error}",
                  file=sys.stderr)
            return 3
    else:
        from testbed.emulation.support import EmulationUnavailable
        from testbed.emulation.validate import TARGETS, validate_mininet
        out = args.out or str(Path("results") / Path(args.scenario).stem / "validate-mininet")
        try:
            result = validate_mininet(args.scenario, out, quick=args.quick, full=args.full,
                                      seed=args.seed, queueing=args.queue)
        except EmulationUnavailable as error:
            print(f"testbed: error: cannot run the Mininet backend here: {error}",
                  file=sys.stderr)
            return 3
    if args.check:
        from testbed.emulation.validate import targets_met
        return 0 if targets_met(result.table, TARGETS) else 1
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from testbed.model import catalog_frame
    frame = catalog_frame()
    print(frame.to_string(index=False))
    return 0


def _cmd_partitioners(args: argparse.Namespace) -> int:
    from testbed.partition.base import describe_partitioners
    for name, summary, options in describe_partitioners():
        print(f"{name}: {summary}")
        for option, default in options:
            print(f"    {option} = {default}")
    return 0


def _cmd_settings(args: argparse.Namespace) -> int:
    """Every key of a scenario file, its default and its meaning (from the schema)."""
    import yaml

    from testbed import config_schema as cs
    from testbed.experiments.scenario_schema import ScenarioFile

    def shown(default: object) -> str:
        if isinstance(default, dict):       # a section: its keys follow
            return ""
        if default is None:
            return "-"
        return yaml.safe_dump(default, default_flow_style=True, width=1000).strip() \
            .removesuffix("\n...").removesuffix(" ...")
    rows = [(key, shown(default), doc) for key, default, doc in cs.describe(ScenarioFile)
            if not args.prefix or key == args.prefix or key.startswith(args.prefix + ".")]
    if not rows:
        raise ConfigError(f"got {args.prefix!r}, which is no key of a scenario; expected "
                          "one of " + ", ".join(cs.keys(ScenarioFile)), field="KEY")
    width = max(len(key) for key, _, _ in rows)
    value_width = min(24, max(len(value) for _, value, _ in rows))
    print(f"{'key':<{width}}  {'default':<{value_width}}  meaning")
    for key, value, doc in rows:
        print(f"{key:<{width}}  {value:<{value_width}}  {doc}")
    return 0


def _cmd_devices(args: argparse.Namespace) -> int:
    if args.profiles:
        from testbed.cluster.calibrate import profile_frame
        frame = profile_frame()
    else:
        from testbed.cluster import catalog_frame
        frame = catalog_frame()
    print(frame.to_string(index=False))
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    """``testbed calibrate DEVICE --dtype D (--tokens-per-s X | --ms-per-token Y) --model M
    [--seq-len N] [--kv-dtype D] [--bound B]``: print the fitted profile and its CSV row."""
    from testbed.cluster.calibrate import DEFAULT_SEQ_LEN, calibrate, format_calibration
    if args.tokens_per_s is not None:
        seconds = 1.0 / _positive(args.tokens_per_s, "--tokens-per-s", "tokens per second")
    else:
        seconds = _positive(args.ms_per_token, "--ms-per-token", "milliseconds") / 1e3
    seq_len = DEFAULT_SEQ_LEN if args.seq_len is None else _seq_len(args.seq_len)
    fit = calibrate(args.device, args.dtype, args.model, seconds, seq_len=seq_len,
                    kv_dtype=args.kv_dtype, bound=args.bound)
    print(format_calibration(fit))
    return 0


def _positive(text: str, option: str, what: str) -> float:
    import math
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise bad_value(text, f"a positive number of {what}", field=option)
    return value


def _seq_len(text: str) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError):
        value = 0
    if value < 1:
        raise bad_value(text, "an integer >= 1 (positions attended)", field="--seq-len")
    return value


def _cmd_graph(args: argparse.Namespace) -> int:
    """``testbed graph SCENARIO --step N --out G.json|G.png|G.pdf``."""
    from testbed.experiments.graph_figure import (FIGURE_SUFFIXES, graph_at_step,
                                                  graph_summary, plot_graph, write_graph_json)
    from testbed.experiments.scenario import load_scenario

    out = Path(args.out)
    suffix = out.suffix.lower()
    if suffix != ".json" and suffix not in FIGURE_SUFFIXES:
        raise bad_value(args.out, "a file ending in .json (the graph) or .png or .pdf (a "
                                  "figure)", field="--out")
    scenario = load_scenario(args.scenario, quick=args.quick, seed=args.seed)
    graph, _, label = graph_at_step(scenario, args.step, args.partitioner)
    work = graph.work
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".json":
            write_graph_json(graph, out, partitioner=label, step=args.step)
            written = str(out)
        else:
            title = (f"{scenario.name}: token {args.step} ({work.phase}, {work.seq_len} "
                     f"positions), partitioner {label}, {graph.template.dataflow} dataflow")
            plot_graph(graph, out, title=title, layers=args.layers)
            written = str(out) if suffix == ".pdf" else f"{out} (and {out.with_suffix('.pdf')})"
    except OSError as error:
        raise ConfigError(f"cannot write the graph: {error.strerror or error}",
                          source=str(out), field="--out") from None
    print(f"task graph of token {args.step} ({work.phase}) with {label} "
          f"({graph.template.dataflow}) in {written}")
    print(graph_summary(graph))
    return 0


def _cmd_traces(args: argparse.Namespace) -> int:
    from testbed.traces import commands
    options = commands.parse_options(args.option)
    if args.traces_command == "show":
        return commands.show(args.files, format=args.format, as_json=args.json, options=options)
    if args.traces_command == "plot":
        return commands.plot(args.files, output=args.output, format=args.format, options=options)
    return commands.convert(args.file, to=args.to, output=args.output, format=args.format,
                            options=options, unit=args.unit)


def _add_traces(sub) -> None:
    """``testbed traces show | plot | convert``."""
    traces = sub.add_parser("traces", help="inspect, plot and convert bandwidth trace files")
    actions = traces.add_subparsers(dest="traces_command", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--format", help="trace format (default: detected from the file)")
    common.add_argument("--option", action="append", metavar="KEY=VALUE",
                        help="reader option, e.g. 'window=100 ms' (mahimahi), 'gaps=zero' "
                             "(oboe); repeatable")
    show = actions.add_parser("show", parents=[common],
                              help="duration, mean, percentiles and outage time per file")
    show.add_argument("files", nargs="+", metavar="FILE")
    show.add_argument("--json", action="store_true", help="one JSON object per file per line")
    plot = actions.add_parser("plot", parents=[common], help="capacity over time (PNG or PDF)")
    plot.add_argument("files", nargs="+", metavar="FILE")
    plot.add_argument("-o", "--output", required=True, help="figure file (.png or .pdf)")
    convert = actions.add_parser("convert", parents=[common],
                                 help="write a trace as CSV or as a SimGrid profile")
    convert.add_argument("file", metavar="FILE")
    convert.add_argument("--to", required=True, choices=("csv", "simgrid"))
    convert.add_argument("-o", "--output", help="output file (default: standard output)")
    convert.add_argument("--unit", default="bps", help="CSV rate unit: bps (default, exact), "
                                                       "kbps, Mbps or Gbps")
    traces.set_defaults(func=_cmd_traces)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="testbed",
        description="Event-driven testbed for LLM inference partitioned across edge devices.")
    from testbed import __version__
    parser.add_argument("--version", action="version", version=f"testbed {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a scenario and write its results folder")
    run.add_argument("scenario", help="scenario YAML file")
    run.add_argument("--out", help="results folder (default: results/<name>/<run_id>)")
    run.add_argument("--force", action="store_true",
                     help="replace the results folder if it exists (otherwise: exit 2)")
    run.add_argument("--quiet", "-q", action="store_true",
                     help="no progress bar (there is none either when stderr is not a "
                          "terminal)")
    run.add_argument("--seed", type=int, help="override the scenario's seed")
    run.add_argument("--quick", action="store_true", help="apply the scenario's 'quick' settings")
    run.add_argument("--full", action="store_true", help="apply the scenario's 'full' settings")
    run.add_argument("--record-jobs", dest="jobs", action="store_true",
                     help="also record every computation (jobs.parquet)")
    run.add_argument("--no-figures", action="store_true", help="skip the PNG/PDF figures")
    run.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="override a scenario key, e.g. workload.generate_tokens=16 or "
                          "links.0.trace.file=PATH (repeatable)")
    run.add_argument("--timeline", metavar="OUT.json",
                     help="also write a Chrome/Perfetto trace of the run (open it in "
                          "ui.perfetto.dev): a track per device and per link")
    run.add_argument("--gantt", metavar="OUT.png",
                     help="also draw a Gantt chart of a few tokens (devices and links)")
    run.add_argument("--gantt-tokens", type=_positive_int, default=3, metavar="N",
                     help="decode tokens in the Gantt chart (default: 3)")
    run.set_defaults(func=_cmd_run)

    sweep = sub.add_parser("sweep", help="run a sweep file's grid in parallel, resumably, "
                           "and merge the results")
    sweep.add_argument("sweep", help="sweep YAML file (experiment: sweep) or a scenario")
    sweep.add_argument("--jobs", "-j", dest="workers", type=_positive_int,
                       default=_cpu_count(), metavar="N",
                       help="local worker processes (default: one per CPU; 1 runs in this "
                            "process)")
    sweep.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on this Dask distributed scheduler (e.g. tcp://host:8786) "
                            "instead; needs the 'distributed' extra")
    sweep.add_argument("--out", help="results folder (default: results/<name>/<hash>)")
    sweep.add_argument("--seed", type=int, help="run only this seed")
    sweep.add_argument("--quick", action="store_true", help="apply the file's 'quick' settings")
    sweep.add_argument("--full", action="store_true", help="apply the file's 'full' settings")
    sweep.add_argument("--no-figures", action="store_true", help="skip the PNG/PDF figures")
    sweep.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    sweep.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a key of the file, e.g. workload.generate_tokens=16 "
                            "(repeatable)")
    sweep.set_defaults(func=_cmd_sweep, jobs=False)

    plot = sub.add_parser("plot", help="draw the standard figures of a results folder")
    plot.add_argument("results", help="a folder written by `testbed run` (run or sweep)")
    plot.set_defaults(func=_cmd_plot)

    validate = sub.add_parser("validate", help="run a scenario on the simulator and on an "
                              "emulated network, and report how far apart they are")
    validate.add_argument("backend", choices=["mininet", "ns3"],
                          help="the backend: mininet (real TCP over shaped links) or ns3 "
                               "(packet level: TCP, point-to-point links, 802.11 BSSs)")
    validate.add_argument("scenario", help="scenario YAML file")
    validate.add_argument("--out", help="results folder (default: "
                          "results/<scenario file>/validate-<backend>)")
    validate.add_argument("--seed", type=int, help="override the scenario's seed")
    validate.add_argument("--quick", action="store_true",
                          help="apply the scenario's 'quick' settings")
    validate.add_argument("--full", action="store_true",
                          help="apply the scenario's 'full' settings")
    validate.add_argument("--queue", choices=["fair", "fifo"], default="fair",
                          help="Mininet: queues of the emulated links: per-flow fair (default, "
                               "as the simulator assumes) or one drop-tail FIFO")
    validate.add_argument("--check", action="store_true",
                          help="exit with status 1 if the accuracy targets are not met")
    validate.set_defaults(func=_cmd_validate)

    models = sub.add_parser("models", help="list the model catalog")
    models.set_defaults(func=_cmd_models)
    partitioners = sub.add_parser("partitioners",
                                  help="list the partitioners with their options (defaults)")
    partitioners.set_defaults(func=_cmd_partitioners)
    settings = sub.add_parser("settings", help="list the keys of a scenario file with their "
                              "defaults and meaning")
    settings.add_argument("prefix", nargs="?", metavar="KEY",
                          help="only this key and the keys under it, e.g. network")
    settings.set_defaults(func=_cmd_settings)
    devices = sub.add_parser("devices", help="list the device catalog")
    devices.add_argument("--profiles", action="store_true",
                         help="list the calibrated profiles (device x weight dtype) instead")
    devices.set_defaults(func=_cmd_devices)
    calibrate = sub.add_parser("calibrate", help="fit a device's efficiencies to a measured "
                               "single-device decode rate and print its profile row")
    calibrate.add_argument("device", help="device type from the catalog (`testbed devices`)")
    calibrate.add_argument("--dtype", required=True, help="weight dtype measured, e.g. q4_0")
    rate = calibrate.add_mutually_exclusive_group(required=True)
    rate.add_argument("--tokens-per-s", metavar="X", help="measured decode rate (tokens/s)")
    rate.add_argument("--ms-per-token", metavar="Y", help="measured time per token (ms)")
    calibrate.add_argument("--model", required=True, help="catalog model measured")
    calibrate.add_argument("--seq-len", metavar="N", help="positions attended (prompt + "
                           "tokens generated; default 128)")
    calibrate.add_argument("--kv-dtype", metavar="D", help="K/V cache dtype (default: f16)")
    calibrate.add_argument("--bound", choices=("auto", "memory", "compute"), default="auto",
                           help="which roofline limit the measurement hit (default: auto)")
    calibrate.set_defaults(func=_cmd_calibrate)
    graph = sub.add_parser("graph", help="write the task graph of one token's forward pass "
                           "(JSON, or a PNG/PDF drawing)")
    graph.add_argument("scenario", help="scenario YAML file")
    graph.add_argument("--step", type=int, required=True, metavar="N",
                       help="the token whose pass to show (1 = the first, with the prefill)")
    graph.add_argument("--out", required=True, metavar="G.json|G.png|G.pdf",
                       help="output file; its suffix chooses JSON or a figure")
    graph.add_argument("--partitioner", metavar="LABEL",
                       help="the scenario's partitioner to run (default: its first)")
    graph.add_argument("--layers", type=_positive_int, default=2, metavar="K",
                       help="figure: draw only the first K layers (default: 2)")
    graph.add_argument("--quick", action="store_true",
                       help="apply the scenario's 'quick' settings")
    graph.add_argument("--seed", type=int, help="override the scenario's seed")
    graph.set_defaults(func=_cmd_graph)
    _add_traces(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as error:
        print(f"testbed: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("testbed: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. piped into `head`: stop quietly
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
