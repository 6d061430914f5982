"""The devices table: each device's busy time over the run (what utilisation and energy
need), equal to the sum of its computations."""

from __future__ import annotations

import dataclasses

import pytest

from testbed.experiments import runner
from testbed.experiments.scenario import scenario_from_dict
from testbed.partition import make_partitioner
from testbed.sim.engine import Simulation

SCENARIO = {"model": {"name": "tinyllama-1.1b", "overrides": {"n_layers": 4}},
            "topology": {"file": "home_office.yaml"},
            "devices": {"*": {"background": {"uniform": "40 %", "step": "20 ms"}}},
            "network": {"message_costs": "catalog"}, "seed": 5,
            "workload": {"prompt_tokens": 16, "generate_tokens": 12, "decision_interval": 1}}


@pytest.mark.parametrize("partitioner", ["round_robin", "resource_aware"])
def test_busy_time_is_the_sum_of_the_devices_computations(partitioner):
    scenario = scenario_from_dict(dict(SCENARIO))
    config = dataclasses.replace(runner.sim_config(scenario, record_jobs=True))
    frames = Simulation(config, make_partitioner(partitioner, seed=1)).run().frames()
    devices, jobs, tokens = frames["devices"], frames["jobs"], frames["tokens"]
    assert sorted(devices.device) == sorted(scenario.sim.topology.devices)
    run_s = tokens.end_s.max()
    assert (devices.run_s == run_s).all()
    busy = (jobs.end_s - jobs.start_s).groupby(jobs.device).sum()
    assert busy.sum() > 0
    for row in devices.itertuples():
        assert row.busy_s == pytest.approx(busy.get(row.device, 0.0), rel=1e-9, abs=1e-12)
        assert 0.0 <= row.busy_s <= row.run_s
