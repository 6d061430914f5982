"""``network.latency_scale``: every link's latency scaled, routes kept (sensitivity studies
of the claims that rest on per-hop latencies)."""

from __future__ import annotations

import pytest

from testbed.errors import ConfigError
from testbed.experiments.runner import run_scenario
from testbed.experiments.scenario import scenario_from_dict

BASE = {"model": "gpt2-small", "topology": {"tiered": {"n_devices": 8, "seed": 3}},
        "workload": {"prompt_tokens": 16, "generate_tokens": 6},
        "partitioners": ["resource_aware", "edgeshard"]}


def scenario(scale=None):
    data = dict(BASE)
    if scale is not None:
        data["network"] = {"latency_scale": scale}
    return scenario_from_dict(data)


@pytest.mark.parametrize("scale", [0, 0.1, 3])
def test_every_link_latency_is_scaled_and_routes_stay(scale):
    plain, scaled = scenario().sim.topology, scenario(scale).sim.topology
    assert any(link.latency_s > 0 for link in plain.links.values())
    for key, link in plain.links.items():
        assert scaled.links[key].latency_s == pytest.approx(scale * link.latency_s)
    for src in plain.devices:
        for dst in plain.devices:
            assert scaled.path(src, dst) == plain.path(src, dst)


def test_without_latency_the_per_token_time_drops_by_the_latency_on_the_path():
    times = {scale: run_scenario(scenario(scale)).summary.set_index("partitioner").tpot_p50_s
             for scale in (0, 1)}
    assert (times[0] < times[1]).all()
    assert times[0]["resource_aware"] > 0


@pytest.mark.parametrize("value", [-1, "fast", True, float("inf")])
def test_a_bad_scale_names_its_field(value):
    with pytest.raises(ConfigError, match="network.latency_scale"):
        scenario(value)
