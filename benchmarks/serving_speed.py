"""Serving speed: simulated output tokens per wall-clock second with many requests.

100 requests arrive at once, each with a 128-token prompt and 200 output tokens, and are
served with continuous batching (up to 100 at a time, chunked prefill) by Llama-3-8B (f16)
over the eight 8 GB edge devices of ``topologies/edge8_8gb.yaml``; ``resource_aware_plus``
decides before every pass. Prints the figure; ``run_all.py`` compares it with its target.

    python benchmarks/serving_speed.py [--requests N] [--tokens T] [--partitioner NAME]
"""

from __future__ import annotations

import argparse
import time

from testbed.experiments.runner import run_scenario
from testbed.experiments.scenario import scenario_from_dict


def measure(requests: int = 100, tokens: int = 200,
            partitioner: str = "resource_aware_plus") -> tuple[float, float]:
    """(output tokens per wall second, wall seconds) of one run."""
    scenario = scenario_from_dict({
        "name": "serving_speed", "model": "llama-3-8b",
        "topology": {"file": "edge8_8gb.yaml"},
        "workload": {"prompt_tokens": 128, "generate_tokens": tokens, "decision_interval": 1},
        "requests": {"arrivals": "list", "requests": [["0 s", 128, tokens]] * requests},
        "batching": {"max_batch": requests, "prefill": "chunked", "chunk_tokens": 512},
        "partitioners": [partitioner]})
    started = time.perf_counter()
    result = run_scenario(scenario)
    wall = time.perf_counter() - started
    done = result.tables["requests"]
    if result.outcomes[partitioner] != "ok" or not (done.outcome == "done").all():
        raise RuntimeError(f"the run did not serve every request: {result.outcomes}")
    return len(result.tables["tokens"]) / wall, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--partitioner", default="resource_aware_plus")
    args = parser.parse_args()
    rate, wall = measure(args.requests, args.tokens, args.partitioner)
    print(f"serving_tokens_per_s={rate:.1f} ({args.requests} requests x {args.tokens} "
          f"tokens in {wall:.2f} s wall)")


if __name__ == "__main__":
    main()
