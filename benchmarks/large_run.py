"""Wall time of a 48-device, 500-step run with the paper preset.

48 tiered devices drawn as in the paper's prototype (``tiered: {n_devices: 48, seed: 48}``),
the paper's LARGE model under the paper cost preset, random background load (30 %,
redrawn every second), a 128-token prompt, 500 generated tokens, a decision before every
token by the paper's partitioner (``resource_aware``), blocking migrations that carry the
weights. The time covers building the scenario and simulating it (target: <= 60 s).

    python benchmarks/large_run.py [--tokens N]
"""

from __future__ import annotations

import argparse
import time

from testbed.experiments.runner import run_scenario
from testbed.experiments.scenario import scenario_from_dict

TARGET_S = 60.0


def scenario(tokens: int = 500) -> dict:
    return {
        "name": "large-48", "seed": 1, "model": "paper-large", "cost": "paper",
        "topology": {"tiered": {"n_devices": 48, "seed": 48}},
        "devices": {"*": {"background": {"uniform": "30 %", "step": "1 s"}}},
        "workload": {"prompt_tokens": 128, "generate_tokens": tokens, "decision_interval": 1},
        "migration": {"mode": "blocking", "weights_preloaded": False},
        "partitioners": ["resource_aware"],
    }


def measure(tokens: int = 500) -> float:
    """Wall-clock seconds to build and simulate the run."""
    started = time.perf_counter()
    result = run_scenario(scenario_from_dict(scenario(tokens), source="<large_run>"))
    wall = time.perf_counter() - started
    assert (result.summary.outcome == "ok").all(), result.outcomes
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=500)
    args = parser.parse_args()
    wall = measure(args.tokens)
    print(f"# 48 devices, {args.tokens} steps: {wall:.1f} s (target <= {TARGET_S:g} s)")
    print(f"wall_s={wall:.2f}")


if __name__ == "__main__":
    main()
