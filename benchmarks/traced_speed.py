"""Simulated tokens per wall-clock second with real bandwidth traces on every link and a
decision every token.

The 8 devices and the full mesh of :mod:`sim_speed` (Llama-3-8B, 0.5 ms links), but every
one of the 56 link directions replays a measured trace: the shared real traces
(``../shared/traces``: Lumos5G, Mahimahi, Pensieve/FCC, Norway HSDPA, Oboe, UCC 5G) when
that folder is present, else the synthetic ones shipped in ``traces/*.csv``. Link ``k``
(in sorted order) replays file ``k mod n`` from ``7 k`` seconds in, looping, with a floor
of 1 Mbit/s (outages would otherwise stall a token for the whole outage). The paper's
partitioner (``resource_aware``) decides before every token and its placements migrate
blocks over those links (target: >= 100 tokens/s on 2 cores).

    python benchmarks/traced_speed.py [--tokens N] [--partitioner NAME]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from sim_speed import DEVICES

from testbed.cluster import TOPOLOGY_GENERATORS, make_device
from testbed.model import get_cost_model, get_model
from testbed.partition import PARTITIONERS
from testbed.sim.engine import SimConfig, Simulation
from testbed.traces.load import load_trace
from testbed.traces.replay import replay
from testbed.traces.series import trace_duration_s

REPO = Path(__file__).resolve().parents[1]
SHARED_TRACES = REPO.parent / "shared" / "traces"
TARGET = 100.0


def trace_files() -> tuple[str, list[Path]]:
    """("real", the shared traces) when present, else ("synthetic", traces/*.csv)."""
    if SHARED_TRACES.is_dir():
        files = sorted(p for p in SHARED_TRACES.rglob("*")
                       if p.is_file() and not p.name.lower().startswith("readme"))
        if files:
            return "real", files
    return "synthetic", sorted((REPO / "traces").glob("*.csv"))


def traced_topology(files: list[Path]):
    """The 8-device full mesh with a looping trace on every link direction."""
    devices = [make_device(f"d{i}", kind) for i, kind in enumerate(DEVICES)]
    topology = TOPOLOGY_GENERATORS.get("full_mesh")(devices, 1e9, 0.5e-3)
    series = [load_trace(path) for path in files]
    for k, (src, dst) in enumerate(sorted(topology.links)):
        base = series[k % len(series)]
        offset = (7.0 * k) % trace_duration_s(base)
        topology = topology.with_link_series(
            src, dst, replay(base, offset_s=offset, loop=True, clip_min_bps=1e6))
    return topology


def measure(tokens: int = 100, partitioner: str = "resource_aware") -> tuple[float, str]:
    """(simulated tokens per wall-clock second, "real" or "synthetic" traces)."""
    kind, files = trace_files()
    config = SimConfig(model=get_model("llama-3-8b"), cost=get_cost_model("decode"),
                       topology=traced_topology(files), prompt_tokens=128,
                       generate_tokens=tokens, decision_interval=1,
                       controller_hosts_blocks=True)
    started = time.perf_counter()
    records = Simulation(config, PARTITIONERS.get(partitioner)(seed=0)).run()
    wall = time.perf_counter() - started
    assert records.outcome == "ok" and len(records.tokens) == tokens, records.outcome
    return tokens / wall, kind


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--partitioner", default="resource_aware")
    args = parser.parse_args()
    rate, kind = measure(args.tokens, args.partitioner)
    verdict = "ok" if rate >= TARGET else "MISS"
    print(f"# {kind} traces, {args.partitioner} every token: {rate:.1f} simulated tokens/s "
          f"(target >= {TARGET:g}): {verdict}")
    print(f"tokens_per_s={rate:.1f}")


if __name__ == "__main__":
    main()
