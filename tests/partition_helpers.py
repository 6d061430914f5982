"""Observations in the style of the paper's prototype, for solver tests (no engine)."""

from __future__ import annotations

import dataclasses

import numpy as np

from testbed.experiments.optimality_gap import GapCluster, draw_cluster
from testbed.model import get_cost_model, get_model
from testbed.plan.network_view import NetworkView
from testbed.plan.observation import DeviceState, Observation
from testbed.plan.work import DECODE, step_work


def random_observation(seed: int, *, n_devices: int = 3, model: str = "paper-small",
                       n_layers: int = 1, preset: str = "paper", heads: int | None = None,
                       current=None, interval: int = 1, seq_len: int = 64,
                       memory_scale: float = 1.0, hosts_blocks: bool = False) -> Observation:
    """``n_devices`` random devices (the first, "ctl", is the controller) on a full mesh
    with uniform bandwidths and 1 ms links, background load up to 30 %, as E1 draws
    them."""
    rng = np.random.default_rng(seed)
    base = GapCluster()          # E1's distributions (1 ms links)
    cluster = dataclasses.replace(
        base, memory_median_bytes=base.memory_median_bytes * memory_scale,
        memory_min_bytes=base.memory_min_bytes * memory_scale,
        memory_max_bytes=base.memory_max_bytes * memory_scale)
    devices, topology, capacity = draw_cluster(cluster, n_devices - 1, rng)
    spec = get_model(model).with_overrides(n_layers=n_layers)
    if heads is not None:
        spec = spec.with_overrides(n_heads=heads, n_kv_heads=heads)
    states = tuple(DeviceState(d, True, float(rng.uniform(0.7, 1.0)), 1.0) for d in devices)
    cost = get_cost_model(preset)
    work = step_work(cost, spec, DECODE, seq_len, seq_len // 2)
    return Observation(0.0, 2, work, spec, cost, states, NetworkView(topology, capacity),
                       "ctl", hosts_blocks, current, interval)
