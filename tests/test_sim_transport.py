"""Transport round trips: slow start's closed form, connection state, the retransmission
timer after an outage, and the scenario's transport section."""

from __future__ import annotations

import math

import pytest
import simpy
from hypothesis import given, settings, strategies as st

from testbed.errors import ConfigError
from testbed.sim.network import Network
from testbed.sim.transport import WARM, TransportSpec, TransportState, slow_start_s

IW = 10 * 1448


def line(rate_bps: float, latency_s: float, transport: TransportSpec):
    """a -- b, one link each way."""
    cap = {("a", "b"): rate_bps, ("b", "a"): rate_bps}
    lat = {("a", "b"): latency_s, ("b", "a"): latency_s}
    env = simpy.Environment()
    paths = lambda s, d: () if s == d else ((s, d),)  # noqa: E731
    return env, Network(env, paths, cap, lat, transport=transport)


def test_the_issue_numbers_10_ms_rtt_100_mbit():
    """16 KiB on a new window over a 10 ms round trip at 100 Mbit/s: +140 % over the fluid
    time; 1 MiB: +26 % (issue 11, measured in ns-3)."""
    rate, rtt = 100e6, 0.010
    for size, gain in ((16 * 1024, 1.40), (1 << 20, 0.26)):
        fluid = rtt / 2 + size * 8 / rate
        extra, _ = slow_start_s(size, IW, rate, rtt)
        assert extra / fluid == pytest.approx(gain, abs=0.02)


def test_slow_start_rounds_by_hand():
    # 100 kB at 8 Mbit/s, rtt 100 ms: BDP 100 kB. Rounds of 14480, 28960, 57920 B are
    # window-limited (each costs 100 ms instead of w / rate); the rest flows at the rate.
    rate, rtt = 8e6, 0.1
    extra, window = slow_start_s(100_000, IW, rate, rtt)
    expected = sum(rtt - w * 8 / rate for w in (IW, 2 * IW))
    # after two rounds 43,440 B are sent; 56,560 B are left, the window is 57,920: one go
    assert extra == pytest.approx(expected)
    assert window == 4 * IW
    assert slow_start_s(IW, IW, rate, rtt) == (0.0, IW)          # fits the initial window
    assert slow_start_s(1e9, 1e9, rate, rtt)[0] == 0.0           # window above the BDP


def test_a_message_over_a_new_connection_pays_the_handshake_and_slow_start():
    spec = TransportSpec(connections="new")
    env, net = line(100e6, 0.005, spec)
    done = net.transfer("a", "b", 16 * 1024)
    env.run()
    fluid = 0.005 + 16 * 1024 * 8 / 100e6
    extra, _ = slow_start_s(16 * 1024, IW, 100e6, 0.010)
    assert done.value.end_s == pytest.approx(fluid + 0.010 + extra, rel=1e-12)


def test_a_persistent_connection_keeps_its_window_until_it_idles():
    spec = TransportSpec(connections="persistent", handshake=False, idle_restart_s=0.2)
    state = TransportState(spec)
    first = state.extra_s("a", "b", 100_000, 8e6, 0.1, now_s=0.0)
    assert first == pytest.approx(slow_start_s(100_000, IW, 8e6, 0.1)[0])
    state.finished("a", "b", 0.5)
    again = state.extra_s("a", "b", 100_000, 8e6, 0.1, now_s=0.6)   # window grew: no stall
    assert again == 0.0
    state.finished("a", "b", 1.0)
    idle = state.extra_s("a", "b", 100_000, 8e6, 0.1, now_s=1.3)    # idle 300 ms > 200 ms
    assert idle == pytest.approx(first)
    assert state.extra_s("b", "a", 100_000, 8e6, 0.1, now_s=1.3) == pytest.approx(first)


def test_warm_connections_add_nothing():
    env, net = line(100e6, 0.005, WARM)
    done = net.transfer("a", "b", 1 << 20)
    env.run()
    assert done.value.end_s == pytest.approx(0.005 + 8 * (1 << 20) / 100e6, rel=1e-12)


@pytest.mark.parametrize("outage_s, resume_s", [(0.1, 0.2), (0.3, 0.6), (0.7, 1.4)])
def test_after_an_outage_the_flow_resumes_at_the_next_retransmission(outage_s, resume_s):
    """Capacity drops to 0 at 1 s and returns ``outage_s`` later; TCP retransmits at
    1 + 0.2, 1 + 0.6, 1 + 1.4 s (minimum RTO 200 ms, doubling): the first one after the
    capacity is back."""
    spec = TransportSpec(connections="warm", rto_min_s=0.2)
    env, net = line(8e6, 0.0, spec)
    done = net.transfer("a", "b", 2e6)         # 2 s alone at 8 Mbit/s

    def outage():
        yield env.timeout(1.0)
        net.set_capacity(("a", "b"), 0.0)
        yield env.timeout(outage_s)
        net.set_capacity(("a", "b"), 8e6)
    env.process(outage())
    env.run()
    assert done.value.end_s == pytest.approx(2.0 + resume_s, rel=1e-9)
    # the fluid model without the timer resumes as soon as the capacity is back
    env, net = line(8e6, 0.0, WARM)
    done = net.transfer("a", "b", 2e6)
    env.process(outage())
    env.run()
    assert done.value.end_s == pytest.approx(2.0 + outage_s, rel=1e-9)


def test_the_transport_section_of_a_scenario(tmp_path):
    from testbed.experiments.scenario import scenario_from_dict
    base = {"model": {"name": "tinyllama-1.1b", "overrides": {"n_layers": 2}},
            "topology": {"file": "line_4.yaml"}}
    scenario = scenario_from_dict({**base, "network": {"transport": {
        "connections": "persistent", "idle_restart": "200 ms", "warm_up": "64 KiB",
        "rto_min": "200 ms"}}})
    spec = scenario.sim.transport
    assert (spec.connections, spec.idle_restart_s, spec.warm_up_bytes, spec.rto_min_s) == \
        ("persistent", 0.2, 65536, 0.2)
    assert math.isinf(scenario_from_dict(dict(base)).sim.transport.idle_restart_s)
    for bad, field in (({"connections": "cold"}, "network.transport.connections"),
                       ({"rto_min": 5}, "network.transport.rto_min"),
                       ({"initial_window": 0}, "network.transport.initial_window"),
                       ({"handshake": "yes"}, "network.transport.handshake"),
                       ({"window": 4}, "network.transport.window")):
        with pytest.raises(ConfigError) as caught:
            scenario_from_dict({**base, "network": {"transport": bad}})
        assert caught.value.field == field, bad


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.floats(1, 2e6), min_size=1, max_size=8),
       starts=st.lists(st.floats(0, 0.5), min_size=8, max_size=8),
       outage=st.tuples(st.floats(0, 1.0), st.floats(0.01, 1.0)),
       connections=st.sampled_from(["warm", "persistent", "new"]),
       packets=st.booleans())
def test_every_flow_arrives_no_sooner_than_its_fluid_time_and_never_above_capacity(
        sizes, starts, outage, connections, packets):
    """With round trips, the retransmission timer, per-packet effects and an outage on the
    way, every transfer still arrives, no earlier than alone on an idle path, and no rate
    ever exceeds a capacity."""
    spec = TransportSpec(connections=connections, rto_min_s=0.2, idle_restart_s=0.2)
    env, net = line(8e6, 0.002, spec) if not packets else _line_with_packets(spec)
    seen = []

    def observe(active, capacity):
        for flow in active:
            for res in flow.resources:
                assert flow.rate_bps <= capacity[res] * (1 + 1e-9)
        seen.append(len(active))
    net.observers.append(observe)
    events = []

    def send(at, size):
        yield env.timeout(at)
        events.append((env.now, size, net.transfer("a", "b", size)))

    def cut(at, length):
        yield env.timeout(at)
        net.set_capacity(("a", "b"), 0.0)
        yield env.timeout(length)
        net.set_capacity(("a", "b"), 8e6)
    for size, at in zip(sizes, starts):
        env.process(send(at, size))
    env.process(cut(*outage))
    env.run()
    assert len(events) == len(sizes) and seen
    for began, size, done in events:
        assert done.triggered
        assert done.value.end_s >= began + 0.002 + size * 8 / 8e6 - 1e-12


def _line_with_packets(spec):
    cap = {("a", "b"): 8e6, ("b", "a"): 8e6}
    lat = {("a", "b"): 0.002, ("b", "a"): 0.002}
    env = simpy.Environment()
    paths = lambda s, d: () if s == d else ((s, d),)  # noqa: E731
    return env, Network(env, paths, cap, lat, transport=spec, packets=True)
