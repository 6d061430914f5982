"""The speed-ups give the very same numbers as the plain computations they replace:
capacity replay by callbacks, re-sharing skipped for unused links, the per-step service
time cache, and the looped layer time of local search."""

from __future__ import annotations

import numpy as np
import pytest

from partition_helpers import random_observation
from testbed.cluster import TOPOLOGY_GENERATORS, make_device
from testbed.model import get_cost_model, get_model
from testbed.partition import PARTITIONERS
from testbed.plan.counts import CountDelay
from testbed.sim import network as network_module
from testbed.sim.compute import ComputeQueue
from testbed.sim.engine import SimConfig, Simulation
from testbed.traces.series import Series

KINDS = ["jetson-orin-nx-16gb", "jetson-orin-nano-8gb", "raspberry-pi-5-8gb",
         "apple-m2-mac-mini"]


def fading_run(partitioner: str) -> dict:
    """gpt2-small (2 layers) over 4 devices, every link fading on its own schedule."""
    devices = [make_device(f"d{i}", kind) for i, kind in enumerate(KINDS)]
    topology = TOPOLOGY_GENERATORS.get("full_mesh")(devices, 1e9, 1e-3)
    rng = np.random.default_rng(5)
    for k, (src, dst) in enumerate(sorted(topology.links)):
        times = np.cumsum(rng.uniform(0.001, 0.02, size=40))
        values = rng.uniform(5e6, 500e6, size=40)
        series = Series((0.0, *times[:-1]), tuple(values), loop_period_s=float(times[-1]),
                        unit="bit/s")
        topology = topology.with_link_series(src, dst, series)
    background = {d.name: Series((0.0, 0.01, 0.02), (1.0, 0.6, 0.9), loop_period_s=0.03)
                  for d in devices}
    config = SimConfig(model=get_model("gpt2-small").with_overrides(n_layers=2),
                       cost=get_cost_model("decode"), topology=topology, prompt_tokens=16,
                       generate_tokens=12, avail_compute=background, record_jobs=True)
    records = Simulation(config, PARTITIONERS.get(partitioner)(seed=0)).run()
    assert records.outcome == "ok"
    frames = records.frames()
    frames["tokens"] = frames["tokens"].drop(columns="decision_wall_s")
    return frames


def plain_network(monkeypatch) -> None:
    """Every capacity change re-shares all flows; traces replay as a SimPy process; every
    service time is computed afresh."""
    def set_capacity(self, resource, bps):
        bps *= self._factor(resource)
        if self._capacity.get(resource) == bps:
            return
        self._advance()
        self._capacity[resource] = bps
        self._reallocate()

    def replay(env, network, resource, series):
        env.process(network_module.replay_capacity(env, network, resource, series))

    def service_time_s(self, cost, n_blocks, start_s):
        c, m = self.availability(start_s)
        return n_blocks * self.spec.compute_time_s(cost.flops, cost.bytes_read, c, m)

    monkeypatch.setattr(network_module.Network, "set_capacity", set_capacity)
    monkeypatch.setattr("testbed.sim.engine.CapacityReplay", replay)
    monkeypatch.setattr(ComputeQueue, "service_time_s", service_time_s)


@pytest.mark.parametrize("partitioner", ["resource_aware", "round_robin"])
def test_simulation_fast_paths_change_no_number(partitioner, monkeypatch):
    rebased = []
    original = network_module.Network._rebase
    with monkeypatch.context() as patch:
        patch.setattr(network_module.Network, "_rebase",
                      lambda self: (rebased.append(1), original(self)))
        fast = fading_run(partitioner)
    assert len(fast["flows"]) > 50 and len(rebased) > 50   # the fast path was taken
    with monkeypatch.context() as patch:
        plain_network(patch)
        plain = fading_run(partitioner)
    for name, frame in fast.items():
        assert frame.equals(plain[name]), name


@pytest.mark.parametrize("seed", range(6))
def test_looped_layer_time_is_the_numpy_one_exactly(seed):
    obs = random_observation(seed, n_devices=6, model="paper-medium", n_layers=2)
    fast = CountDelay(obs)
    rng = np.random.default_rng(seed)
    n = len(fast.names)
    for _ in range(200):
        counts = rng.integers(0, 3, size=n) * (rng.random(n) < 0.6)
        proj, ffn, src = (int(x) for x in rng.integers(0, n, size=3))
        expected = float(fast.branches(counts, proj, src).max() + fast.cp[proj]
                         + fast.x_proj[proj, ffn] + fast.cf[ffn])
        assert fast.layer_s(counts, proj, ffn, src) == expected
