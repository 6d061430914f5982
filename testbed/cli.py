"""The ``testbed`` command line: run scenarios, list the catalogs.

Bad input is reported on one line (file, field, value, what was expected) with exit
status 2 and no traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from testbed.errors import ConfigError


def _cmd_run(args: argparse.Namespace) -> int:
    from testbed.experiments.kinds import run_file
    return run_file(args.scenario, args)


def _cmd_plot(args: argparse.Namespace) -> int:
    from testbed.experiments.plots import plot_results
    paths = plot_results(args.results)
    for path in paths:
        print(path)
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from testbed.model import catalog_frame
    frame = catalog_frame()
    print(frame.to_string(index=False))
    return 0


def _cmd_devices(args: argparse.Namespace) -> int:
    from testbed.cluster import catalog_frame
    frame = catalog_frame()
    print(frame.to_string(index=False))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="testbed",
        description="Event-driven testbed for LLM inference partitioned across edge devices.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a scenario and write its results folder")
    run.add_argument("scenario", help="scenario YAML file")
    run.add_argument("--out", help="results folder (default: results/<name>/<run_id>)")
    run.add_argument("--seed", type=int, help="override the scenario's seed")
    run.add_argument("--quick", action="store_true", help="apply the scenario's 'quick' settings")
    run.add_argument("--full", action="store_true", help="apply the scenario's 'full' settings")
    run.add_argument("--jobs", action="store_true",
                     help="also record every computation (jobs.csv)")
    run.add_argument("--no-figures", action="store_true", help="skip the PNG/PDF figures")
    run.set_defaults(func=_cmd_run)

    plot = sub.add_parser("plot", help="draw the standard figures of a results folder")
    plot.add_argument("results", help="a folder written by `testbed run` (run or sweep)")
    plot.set_defaults(func=_cmd_plot)

    models = sub.add_parser("models", help="list the model catalog")
    models.set_defaults(func=_cmd_models)
    devices = sub.add_parser("devices", help="list the device catalog")
    devices.set_defaults(func=_cmd_devices)
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


if __name__ == "__main__":
    sys.exit(main())
