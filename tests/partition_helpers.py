"""Build observations for partitioner tests without running the engine."""

from __future__ import annotations

import numpy as np

from testbed.cluster import TOPOLOGY_GENERATORS, DeviceSpec
from testbed.model import get_cost_model, get_model
from testbed.plan.network_view import NetworkView
from testbed.plan.observation import DeviceState, Observation
from testbed.plan.work import DECODE, step_work


def random_observation(seed: int, *, n_devices: int = 3, model: str = "paper-small",
                       n_layers: int = 1, preset: str = "paper", heads: int | None = None,
                       current=None, interval: int = 1, seq_len: int = 64,
                       memory_scale: float = 1.0, hosts_blocks: bool = False) -> Observation:
    """A small random cluster in the style of the paper's prototype (log-normal compute and
    memory, uniform link bandwidths), with the controller as device 0."""
    rng = np.random.default_rng(seed)
    spec = get_model(model).with_overrides(n_layers=n_layers)
    if heads is not None:
        spec = spec.with_overrides(n_heads=heads, n_kv_heads=heads)
    devices = []
    for i in range(n_devices):
        flops = float(np.clip(rng.lognormal(np.log(5e10), 1.0), 1e9, 5e11))
        memory = float(np.clip(rng.lognormal(np.log(8e9), 0.7), 2e9, 3.2e10)) * memory_scale
        devices.append(DeviceSpec(f"d{i}", "custom", flops, flops / 4, memory, 1.0, 1.0))
    topology = TOPOLOGY_GENERATORS.get("full_mesh")(devices, 1e9, 1e-3)
    capacity = {key: float(rng.uniform(0.05e9, 1e9)) for key in topology.links}
    for (a, b) in list(capacity):
        capacity[(b, a)] = capacity[(a, b)] if a < b else capacity[(b, a)]
    states = tuple(DeviceState(d, True, float(rng.uniform(0.7, 1.0)), 1.0) for d in devices)
    cost = get_cost_model(preset)
    work = step_work(cost, spec, DECODE, seq_len, seq_len // 2)
    return Observation(0.0, 2, work, spec, cost, states, NetworkView(topology, capacity),
                       "d0", hosts_blocks, current, interval)
