"""Peak memory of one large run: 25 devices, 1000 generated tokens.

A point of the E2 sweep (``experiments/e2_large_scale.yaml``: 25 tiered devices drawn as
in the paper's prototype, random background load, seed 1) with its seven partitioners,
simulated and written to a results folder as ``testbed run`` does (tables, no figures):
``--case 0`` the paper's LARGE model under the paper preset, ``--case 1`` Llama-3.2-3B
under the decode preset (more transfers: the largest flows table). Meant to run in a
process of its own: ``run_all.py`` reads its peak resident set size (MB) with
``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``; run alone it prints its own
(target: <= 300 MB).

    python benchmarks/peak_memory.py [--tokens N] [--case 0|1]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
from pathlib import Path

import yaml

from testbed.experiments.results import write_results
from testbed.experiments.runner import run_scenario
from testbed.experiments.scenario import scenario_from_dict
from testbed.experiments.sweep import expand

E2 = Path(__file__).resolve().parents[1] / "experiments" / "e2_large_scale.yaml"
TARGET_MB = 300.0


def large_run(tokens: int = 1000, case: int = 0) -> int:
    """Simulate and write the run; returns the number of token rows."""
    data = yaml.safe_load(E2.read_text(encoding="utf-8"))
    _, runs = expand(data, source=str(E2))
    label = ("paper-large", "llama-3.2-3b")[case]
    scenario = dict(next(r for r in runs if r.labels["case"].startswith(label)
                         and r.labels["seed"] == 1).scenario)
    scenario["workload"] = {**scenario["workload"], "generate_tokens": tokens}
    with tempfile.TemporaryDirectory() as spool, tempfile.TemporaryDirectory() as folder:
        # as testbed run does: the large tables go to disk as each partitioner's run ends
        result = run_scenario(scenario_from_dict(scenario, source=str(E2)), spool=Path(spool))
        write_results(result, folder, figures=False)
    return len(result.tables["tokens"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--case", type=int, default=0, choices=(0, 1))
    args = parser.parse_args()
    rows = large_run(args.tokens, args.case)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # KiB on Linux
    print(f"# {rows} token rows; peak RSS {peak_mb:.0f} MB (target <= {TARGET_MB:g} MB)")
    print(f"peak_rss{'_llama' if args.case else ''}_mb={peak_mb:.1f}")


if __name__ == "__main__":
    main()
