"""Energy: devices draw idle power plus dynamic power while busy; every bit sent and
received costs its link technology's energy per bit; resource_aware_plus can weigh it."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from testbed.cluster.power import link_energy_j_per_bit, route_energy_j_per_bit
from testbed.experiments.energy import device_energy, network_energy_j
from testbed.experiments.runner import run_scenario
from testbed.experiments.scenario import scenario_from_dict


def home_office(**extra):
    data = {"model": {"name": "tinyllama-1.1b", "overrides": {"n_layers": 4}},
            "topology": {"file": "home_office.yaml"}, "seed": 1,
            "workload": {"prompt_tokens": 16, "generate_tokens": 8},
            "partitioners": ["round_robin", "edgeshard"]}
    data.update(extra)
    return scenario_from_dict(data)


def test_catalog_figures_are_per_bit_not_per_byte():
    # Huang et al. 2012: Wi-Fi uplink 283.17 mW per Mbit/s = 283.17 nJ per bit
    assert link_energy_j_per_bit("wifi5") == pytest.approx((283.17e-9, 137.01e-9))
    assert link_energy_j_per_bit("ethernet-1g") == pytest.approx((0.5e-9, 0.5e-9))
    assert link_energy_j_per_bit("a wire without a figure") is None


def test_a_route_pays_every_hop_sent_and_received():
    topology = home_office().sim.topology
    # mac-mini -> switch -> ap over Ethernet, then ap -> jetson-nx over Wi-Fi 5
    assert route_energy_j_per_bit(topology, "mac-mini", "jetson-nx") == \
        pytest.approx(2 * (0.5e-9 + 0.5e-9) + 283.17e-9 + 137.01e-9)
    flows = pd.DataFrame({"src": ["mac-mini", "mac-mini"], "dst": ["nuc", "nuc"],
                          "size_bytes": [1000.0, 500.0]})
    # 1500 bytes = 12 000 bits over two Ethernet hops at 1 nJ/bit each
    assert network_energy_j(flows, topology) == pytest.approx(12_000 * 2e-9)


def test_device_energy_is_idle_power_over_the_run_plus_dynamic_power_while_busy():
    topology = home_office().sim.topology
    devices = pd.DataFrame({"device": ["nuc", "pi5"], "busy_s": [2.0, 0.0],
                            "run_s": [10.0, 10.0]})
    out = device_energy(devices, topology)
    nuc, pi5 = topology.devices["nuc"], topology.devices["pi5"]
    assert out.energy_j.tolist() == pytest.approx([
        nuc.idle_power_w * 10 + (nuc.active_power_w - nuc.idle_power_w) * 2,
        pi5.idle_power_w * 10])


def test_the_summary_adds_devices_and_network_and_divides_by_output_tokens():
    result = run_scenario(home_office())
    devices, flows = result.tables["devices"], result.tables["flows"]
    topology = result.scenario.sim.topology
    for row in result.summary.itertuples():
        mine = devices[devices.partitioner == row.partitioner]
        assert row.device_energy_j == pytest.approx(mine.energy_j.sum())
        assert row.network_energy_j == pytest.approx(
            network_energy_j(flows[flows.partitioner == row.partitioner], topology))
        assert row.energy_j == pytest.approx(row.device_energy_j + row.network_energy_j)
        assert row.energy_j_per_token == pytest.approx(row.energy_j / 8)
        assert row.energy_j_per_request == pytest.approx(row.energy_j)
    spread = result.summary.set_index("partitioner")
    # round robin sends every layer across Wi-Fi; edgeshard keeps the model together
    assert spread.network_energy_j["round_robin"] > 10 * spread.network_energy_j["edgeshard"]


def test_a_device_of_unknown_power_makes_device_energy_unknown_not_zero():
    result = run_scenario(home_office(topology={"generator": "full_mesh", "bandwidth":
                                                "1 Gbit/s", "latency": "1 ms", "devices": [
        {"name": "ctl", "device": "apple-m2-mac-mini"},
        {"name": "x", "device": {"peak_flops": "5 TFLOP/s", "mem_bw": "50 GB/s",
                                 "memory": "8 GiB"}}]}, controller={"device": "ctl"},
        partitioners=["single_device"]))
    assert math.isnan(result.summary.device_energy_j[0])
    assert math.isnan(result.summary.energy_j_per_token[0])


def test_the_energy_weight_trades_delay_for_joules():
    fast = {"name": "fast", "device": {"peak_flops": "50 TFLOP/s", "mem_bw": "400 GB/s",
                                       "memory": "16 GiB"},
            "idle_power": "0.5 W", "active_power": "200 W"}
    frugal = {"name": "frugal", "device": {"peak_flops": "5 TFLOP/s", "mem_bw": "50 GB/s",
                                           "memory": "16 GiB"},
              "idle_power": "0.5 W", "active_power": "5 W"}
    result = run_scenario(home_office(
        topology={"generator": "full_mesh", "bandwidth": "1 Gbit/s", "latency": "1 ms",
                  "devices": [{"name": "ctl", "device": "apple-m2-mac-mini",
                               "idle_power": "0.5 W"}, fast, frugal]},
        controller={"device": "ctl"},
        partitioners=["resource_aware_plus",
                      {"name": "resource_aware_plus", "label": "frugal",
                       "energy_weight_s_per_j": 1.0}]))
    summary = result.summary.set_index("partitioner")
    busy = result.tables["devices"].pivot(index="partitioner", columns="device",
                                          values="busy_s")
    assert busy.loc["resource_aware_plus", "frugal"] == 0      # all on the fast device
    assert busy.loc["frugal", "fast"] == 0                     # all on the frugal one
    assert summary.tpot_p50_s["frugal"] > 2 * summary.tpot_p50_s["resource_aware_plus"]
    assert summary.energy_j_per_token["frugal"] < 0.5 * \
        summary.energy_j_per_token["resource_aware_plus"]
    assert np.isfinite(summary.energy_j_per_token).all()
