"""Small scenarios whose tables pin the engine's numbers across rewrites (see
tests/test_engine_golden.py). Each uses only keys every engine version understands."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

#: Wall-clock columns: they differ between any two runs.
WALL_COLUMNS = ("decision_wall_s", "sim_wall_s", "mean_decision_wall_s")

#: The home/office set-up as the old engine knew it: no shared media (see the file).
HOME_TOPOLOGY = str(Path(__file__).parent / "golden" / "home_office_per_station.yaml")
HOME = {"model": {"name": "tinyllama-1.1b", "overrides": {"n_layers": 4}}, "cost": "decode",
        "topology": {"file": HOME_TOPOLOGY}, "seed": 3}

SCENARIOS = {
    # contended Wi-Fi links with a fading capacity, several partitioners, background load
    "home_fading": {
        **HOME, "name": "home_fading",
        "links": [{"a": "ap", "b": "jetson-nx", "both_directions": True,
                   "bandwidth": {"points": [["0 s", "300 Mbit/s"], ["150 ms", "20 Mbit/s"]],
                                 "loop": "300 ms"}}],
        "devices": {"*": {"background": {"uniform": "30 %", "step": "100 ms"}}},
        "workload": {"prompt_tokens": 32, "generate_tokens": 24, "decision_interval": 1},
        "partitioners": ["resource_aware", "resource_aware_plus", "round_robin", "greedy",
                         "edgeshard", "galaxy"]},
    # live migration under a fading link
    "home_live": {
        **HOME, "name": "home_live",
        "links": [{"a": "ap", "b": "pi5", "both_directions": True,
                   "bandwidth": {"points": [["0 s", "200 Mbit/s"], ["100 ms", "5 Mbit/s"]],
                                 "loop": "200 ms"}}],
        "workload": {"prompt_tokens": 32, "generate_tokens": 24, "decision_interval": 2},
        "migration": {"mode": "live", "weights_preloaded": True},
        "partitioners": ["resource_aware", "round_robin"]},
    # device failures with cache recovery
    "home_churn": {
        **HOME, "name": "home_churn",
        "devices": {"jetson-nx": {"failures": [["50 ms", "150 ms"]]},
                    "phone": {"failures": [["120 ms", "200 ms"]]}},
        "workload": {"prompt_tokens": 32, "generate_tokens": 30, "decision_interval": 1},
        "migration": {"cache_recovery": "resend"},
        "partitioners": ["resource_aware", "round_robin", "greedy"]},
    # the paper's cost preset on a generated full mesh
    "mesh_paper": {
        "name": "mesh_paper", "seed": 1, "model": "paper-small", "cost": "paper",
        "topology": {"generator": "full_mesh", "bandwidth": "100 Mbit/s", "latency": "1 ms",
                     "devices": [{"name": "a", "device": "jetson-orin-nx-16gb"},
                                 {"name": "b", "device": "jetson-orin-nano-8gb"},
                                 {"name": "c", "device": "raspberry-pi-5-8gb"},
                                 {"name": "d", "device": "intel-nuc13-pro-i7-1360p"}]},
        "workload": {"prompt_tokens": 16, "generate_tokens": 20, "decision_interval": 1},
        "partitioners": ["resource_aware", "resource_aware_plus", "greedy", "round_robin"]},
}


def table_digests(tables: dict[str, pd.DataFrame]) -> dict[str, str]:
    """SHA-256 of every table as CSV, wall-clock columns dropped."""
    out = {}
    for name in sorted(tables):
        frame = tables[name].drop(columns=[c for c in WALL_COLUMNS if c in tables[name]])
        out[name] = hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()
    return out
