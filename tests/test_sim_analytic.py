"""With constant capacities and nothing contending, the simulator equals the closed form."""

import pytest

from testbed.cluster import TOPOLOGY_GENERATORS, make_device
from testbed.model import get_cost_model, get_model
from testbed.model.blocks import blocks_of
from testbed.partition.fixed import Fixed
from testbed.plan.network_view import NetworkView
from testbed.plan.delay import token_delay
from testbed.plan.observation import DeviceState
from testbed.plan.placement import Placement
from testbed.sim.engine import SimConfig, Simulation

DEVICES = [("ctl", "apple-m2-mac-mini"), ("a", "jetson-orin-nx-16gb"),
           ("b", "jetson-orin-nano-8gb"), ("c", "raspberry-pi-5-8gb")]


def mesh(bandwidth_bps=200e6, latency_s=0.002):
    devices = [make_device(name, kind) for name, kind in DEVICES]
    return TOPOLOGY_GENERATORS.get("full_mesh")(devices, bandwidth_bps, latency_s)


def spread(model):
    """Attention blocks dealt over a, b, c; proj on b, ffn on c; every layer crosses links."""
    devices = []
    for block in blocks_of(model):
        if block.kind == "attn":
            devices.append("abc"[block.index % 3])
        else:
            devices.append({"proj": "b", "ffn": "c"}[block.kind])
    return Placement(model, devices)


class Given(Fixed):
    """A fixed placement given as a Placement object."""

    name = "given"

    def __init__(self, placement):
        self.placement = placement

    def decide(self, obs):
        return self.placement


@pytest.mark.parametrize("model_name, preset, layers", [
    ("gpt2-small", "decode", 2),        # MHA
    ("llama-3.2-1b", "decode", 3),      # GQA: 8 K/V groups of 4 query heads
    ("paper-medium", "paper", 1),       # the seed authors' formulas
    ("qwen2.5-0.5b", "paper", 2),       # GQA under the paper preset
])
def test_token_latency_equals_closed_form(model_name, preset, layers):
    model = get_model(model_name).with_overrides(n_layers=layers)
    cost = get_cost_model(preset)
    topology = mesh()
    placement = spread(model)
    config = SimConfig(model=model, cost=cost, topology=topology, prompt_tokens=20,
                       generate_tokens=6)
    sim = Simulation(config, Given(placement))
    records = sim.run()
    assert records.outcome == "ok"
    view = NetworkView(topology, {k: link.capacity_bps for k, link in topology.links.items()})
    states = {name: DeviceState(spec) for name, spec in topology.devices.items()}
    states[topology.controller] = DeviceState(topology.devices[topology.controller])
    for row in records.tokens:
        work = sim.generation.step_of(row.token)
        expected = token_delay(placement, work, states, view, topology.controller)
        assert row.latency_s == pytest.approx(expected.total_s, rel=1e-9, abs=0)
        assert row.compute_s == pytest.approx(expected.compute_s, rel=1e-9)
        assert row.comm_s == pytest.approx(expected.comm_s, rel=1e-9)
        assert row.compute_s + row.comm_s + row.migration_wait_s == \
            pytest.approx(row.latency_s, rel=1e-12)
    # tokens follow each other without gaps, and later tokens attend to more positions
    assert all(b.start_s == a.end_s for a, b in zip(records.tokens, records.tokens[1:]))
    decode = [r for r in records.tokens if r.phase == "decode"]
    assert [r.seq_len for r in decode] == list(range(decode[0].seq_len,
                                                     decode[0].seq_len + len(decode)))
