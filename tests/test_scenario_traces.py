"""Scenario links that replay real trace files and synthetic generators."""

from pathlib import Path

import pytest

from testbed.experiments.runner import run_scenario
from testbed.experiments.scenario import scenario_from_dict
from testbed.traces.load import load_trace

SHARED = Path(__file__).resolve().parents[2] / "shared" / "traces"
LUMOS = SHARED / "lumos5g_mmwave" / "5g_trace_100_walking"


def base(links):
    return {"name": "t", "model": {"name": "gpt2-small", "overrides": {"n_layers": 2}},
            "topology": {"file": "home_office.yaml"}, "links": links,
            "workload": {"prompt_tokens": 16, "generate_tokens": 8},
            "partitioners": [{"name": "fixed", "placement": {"*": "jetson-nx"}}]}


@pytest.mark.skipif(not LUMOS.exists(), reason="../shared/traces is not beside the checkout")
def test_a_real_trace_drives_a_link_scaled_to_a_mean():
    scenario = scenario_from_dict(base([{"a": "ap", "b": "jetson-nx", "trace": {
        "file": str(LUMOS), "scale_to_mean": "100 Mbit/s", "offset": "10 s"}}]))
    series = scenario.sim.topology.links[("ap", "jetson-nx")].series
    raw = load_trace(LUMOS)
    assert series is not None
    assert series.mean() == pytest.approx(100e6, rel=1e-9)
    # the same shape, 10 s in, times one factor
    factor = series.value_at(0.0) / raw.value_at(10.0)
    for t in (3.0, 50.5, 400.0):
        assert series.value_at(t) == pytest.approx(factor * raw.value_at(t + 10.0), rel=1e-9)
    result = run_scenario(scenario)
    assert result.outcomes == {"fixed": "ok"}
    hops = result.tables["flows"]
    assert ((hops.src == "mac-mini") & (hops.dst == "jetson-nx")).any()


def test_a_generated_trace_is_the_same_for_the_same_seed_and_differs_across_seeds():
    links = [{"a": "phone", "b": "ap", "trace": {
        "generator": "gilbert_elliott", "step": "100 ms", "duration": "30 s",
        "good": "50 Mbit/s", "bad": "1 Mbit/s", "mean_good": "2 s", "mean_bad": "500 ms"}}]
    one = scenario_from_dict({**base(links), "seed": 1}).sim.topology.links[("phone", "ap")]
    again = scenario_from_dict({**base(links), "seed": 1}).sim.topology.links[("phone", "ap")]
    other = scenario_from_dict({**base(links), "seed": 2}).sim.topology.links[("phone", "ap")]
    assert one.series == again.series
    assert one.series != other.series


def test_a_link_needs_exactly_one_of_bandwidth_or_trace():
    from testbed.errors import ConfigError
    with pytest.raises(ConfigError, match="exactly one of 'bandwidth' or 'trace'"):
        scenario_from_dict(base([{"a": "ap", "b": "phone", "bandwidth": "1 Mbit/s",
                                  "trace": {"generator": "constant", "rate": "1 Mbit/s"}}]))
