"""experiments/fidelity_dllama.yaml end to end, and the scenario keys it relies on:
per-entry dataflows, per-message costs, named dtypes, a preallocated K/V cache."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from testbed.cluster.message_costs import message_cost_table
from testbed.errors import ConfigError
from testbed.experiments.runner import run_scenario
from testbed.experiments.scenario import scenario_from_dict

ROOT = Path(__file__).resolve().parents[1]
FILE = ROOT / "experiments" / "fidelity_dllama.yaml"
COLUMNS = ["setup", "devices", "published_ms", "simulated_ms", "error_pct",
           "published_bytes_sent", "simulated_bytes_sent", "published_bytes_received",
           "simulated_bytes_received"]


@pytest.fixture(scope="module")
def fidelity(tmp_path_factory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("fidelity") / "out"
    proc = subprocess.run([sys.executable, "-m", "testbed.cli", "run", str(FILE), "--quick",
                           "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "rows agree" in proc.stdout
    assert (out / "fidelity.png").stat().st_size > 0 and (out / "summary.csv").exists()
    return pd.read_csv(out / "fidelity.csv")


def test_fidelity_csv_has_the_measurement_interface(fidelity):
    assert COLUMNS == [c for c in fidelity.columns if c in COLUMNS]
    assert list(fidelity.devices[:4]) == [1, 2, 4, 8]
    assert fidelity.setup.is_unique


def test_root_sync_bytes_match_the_published_table_on_every_row(fidelity):
    timed = fidelity[fidelity.published_bytes_sent.notna()]
    assert len(timed) == 6
    for column in ("sent", "received"):
        error = (timed[f"simulated_bytes_{column}"] / timed[f"published_bytes_{column}"] - 1)
        assert (error.abs() <= 0.02).all(), error


def test_the_one_device_row_is_the_calibration_and_13b_does_not_fit_one_pi(fidelity):
    one = fidelity[(fidelity.devices == 1) & (fidelity.model == "llama-2-7b")].iloc[0]
    assert abs(one.error_pct) < 1.0                       # fitted to this row's time
    assert one.root_memory_bytes < one.root_capacity_bytes
    big = fidelity[(fidelity.devices == 1) & (fidelity.model == "llama-2-13b")].iloc[0]
    assert big.published_outcome == big.simulated_outcome == "not enough memory"
    assert bool(big.agrees)


def test_distributing_speeds_up_until_four_devices_as_published(fidelity):
    seven = fidelity[fidelity.model == "llama-2-7b"].set_index("devices")
    assert seven.simulated_ms[1] > seven.simulated_ms[2] > seven.simulated_ms[4]
    assert (seven.simulated_transfer_ms[[2, 4, 8]] > 0).all()
    for n in (1, 2):
        assert abs(seven.error_pct[n]) <= 15


def base(**changes) -> dict:
    scenario = {
        "name": "t", "seed": 0,
        "model": {"name": "gpt2-small", "overrides": {"n_layers": 2}},
        "topology": {"generator": "star", "hub": "switch", "technology": "ethernet-1g",
                     "bandwidth": "1 Gbit/s", "latency": "10 us",
                     "devices": [{"name": "pi0", "device": "raspberry-pi-4-8gb"},
                                 {"name": "pi1", "device": "raspberry-pi-4-8gb"},
                                 {"name": "nuc", "device": "intel-nuc13-pro-i7-1360p"}]},
        "workload": {"prompt_tokens": 4, "generate_tokens": 3, "decision_interval": 3},
        "controller": {"device": "pi0", "hosts_blocks": True},
        "partitioners": ["round_robin"]}
    scenario.update(changes)
    return scenario


def test_message_costs_catalog_charges_cited_figures_per_device_and_link():
    rows = message_cost_table()
    assert all(r["source"].strip() for r in rows)
    scenario = scenario_from_dict(base(network={"message_costs": "catalog"}))
    costs = scenario.sim.messages
    assert costs.send("pi0") == pytest.approx(37.25e-6) and costs.recv("pi1") > 0
    assert costs.send("nuc") == 0.0                   # no published figure: no cost
    assert costs.link_s[("pi0", "switch")] == pytest.approx(12.304e-6)
    plain = run_scenario(scenario_from_dict(base())).tables["tokens"].latency_s
    costly = run_scenario(scenario).tables["tokens"].latency_s
    assert (costly.values > plain.values).all()
    explicit = scenario_from_dict(base(network={"message_costs": {"send": "5 us",
                                                                   "per_link": "1 us"}}))
    assert explicit.sim.messages.send("nuc") == pytest.approx(5e-6)
    assert explicit.sim.messages.recv("nuc") == 0.0


@pytest.mark.parametrize("network, message", [
    ({"message_costs": "lots"}, "network.message_costs"),
    ({"message_costs": {"send": 5}}, "network.message_costs.send"),
    ({"message_costs": {"sned": "5 us"}}, "sned"),
])
def test_bad_message_costs_are_one_line_errors(network, message):
    with pytest.raises(ConfigError, match=message) as caught:
        scenario_from_dict(base(network=network))
    assert "\n" not in str(caught.value)


def test_each_partitioner_entry_can_run_its_own_dataflow():
    model = {"name": "gpt2-small", "overrides": {"n_layers": 2, "proj_shards": 2,
                                                 "ffn_shards": 2}}
    scenario = scenario_from_dict(base(
        model=model, partitioners=[
            {"name": "slices", "devices": ["pi0", "pi1"], "label": "tp",
             "dataflow": {"name": "tensor_parallel", "collective": "star"}},
            {"name": "slices", "devices": ["pi0", "pi1"], "label": "dllama",
             "dataflow": "root_sync"},
            {"name": "slices", "devices": ["pi0", "pi1"], "label": "heads"}]))
    result = run_scenario(scenario)
    assert set(result.outcomes.values()) == {"ok"}
    flows = result.tables["flows"]
    kinds = {label: len(flows[flows.partitioner == label]) for label in ("tp", "dllama",
                                                                        "heads")}
    assert len(set(kinds.values())) == 3              # three different patterns of traffic


@pytest.mark.parametrize("entry, message", [
    ({"name": "resource_aware", "dataflow": "tensor_parallel"}, "head_level"),
    ({"name": "round_robin", "dataflow": "pipeline"}, "unknown dataflow"),
])
def test_partitioners_refuse_dataflows_their_estimates_do_not_follow(entry, message):
    with pytest.raises(ConfigError, match=message):
        scenario_from_dict(base(partitioners=[entry]))


def test_partitioners_that_place_whole_blocks_refuse_a_cut_model():
    model = {"name": "gpt2-small", "overrides": {"n_layers": 2, "ffn_shards": 2}}
    with pytest.raises(ConfigError, match="cut into 1 proj and 2 ffn shards"):
        scenario_from_dict(base(model=model, partitioners=["resource_aware_plus"]))


def test_a_preallocated_cache_is_held_from_the_start_and_decides_what_fits():
    def peak(overrides):
        model = {"name": "gpt2-small", "overrides": {"n_layers": 2, **overrides}}
        result = run_scenario(scenario_from_dict(base(model=model,
                                                      partitioners=["single_device"])))
        memory = result.tables["memory"]
        decode = memory[(memory.used_bytes > 0) & (memory.token > 1)]   # token 1: prefill
        return decode.groupby("token").used_bytes.sum()
    grows, fixed = peak({}), peak({"kv_prealloc_tokens": 1024})
    per_position = 2 * 2 * 12 * 64 * 2.0              # K and V, 2 layers, 12 heads, f16
    assert grows.diff().dropna().tolist() == pytest.approx([per_position], rel=1e-9)
    assert fixed.iloc[0] - grows.iloc[0] == pytest.approx((1024 - 5) * per_position, rel=1e-9)
    assert fixed.nunique() == 1                        # allocated once, for the context


def test_activation_dtype_sets_the_bytes_on_the_wire():
    def moved(dtype):
        model = {"name": "gpt2-small", "overrides": {"n_layers": 2,
                                                     "activation_dtype": dtype}}
        flows = run_scenario(scenario_from_dict(base(model=model))).tables["flows"]
        return flows.size_bytes.sum()
    assert moved("f32") == pytest.approx(2 * moved("f16"))
    assert moved("q8_0") == pytest.approx(moved("f16") * 34 / 64)
