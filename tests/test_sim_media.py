"""Shared media: airtime shared by the member links of a Wi-Fi BSS (closed forms, the
performance anomaly, properties), the 802.11 figures behind them, and topology files."""

from __future__ import annotations

import math

import pytest
import simpy
from hypothesis import given, settings, strategies as st

from testbed.cluster.medium import MediumSpec
from testbed.cluster.topology_file import load_topology
from testbed.cluster.wifi import WifiPhy, contention_s, relay_s, tcp_goodput_bps
from testbed.errors import ConfigError
from testbed.plan.network_view import NetworkView
from testbed.sim.network import Network

PREAMBLE_S = 40e-6
CONTENTION_S = 158.5e-6


def bss(capacities_bps: dict[str, float], latency_s: float = 0.0, *, wired: float = 0.0,
        preamble_s: float = 0.0, contention: float = 0.0, txop_bytes: float = 0.0,
        relay_s: float = 0.0):
    """An access point 'ap' with stations (their link's capacity both ways), all in one
    medium 'air'; with ``wired`` > 0 a wired node 'w' hangs off the AP at that rate."""
    cap, lat = {}, {}
    for node, bps in capacities_bps.items():
        for link in ((node, "ap"), ("ap", node)):
            cap[link] = bps
            lat[link] = latency_s
    if wired:
        cap[("w", "ap")] = cap[("ap", "w")] = wired
        lat[("w", "ap")] = lat[("ap", "w")] = 0.0
    medium = MediumSpec("air", frozenset(k for k in cap if "w" not in k), preamble_s,
                        contention, txop_bytes=txop_bytes, relay_s=relay_s)

    def paths(src, dst):
        if src == dst:
            return ()
        if src == "ap":
            return (("ap", dst),)
        if dst == "ap":
            return ((src, "ap"),)
        return ((src, "ap"), ("ap", dst))
    env = simpy.Environment()
    return env, Network(env, paths, cap, lat, media=[medium])


def rates(net: Network) -> dict[str, float]:
    return {f.tag: f.rate_bps for f in net.active_flows}


def test_one_station_alone_gets_its_goodput_plus_the_phy_header():
    env, net = bss({"s1": 300e6, "s2": 300e6}, latency_s=0.002, preamble_s=PREAMBLE_S,
                   contention=CONTENTION_S)
    done = net.transfer("s1", "ap", 1e6)
    env.run()
    assert done.value.end_s == pytest.approx(0.002 + 8e6 / 300e6 + PREAMBLE_S, rel=1e-12)


def test_stations_sending_at_once_share_the_airtime():
    env, net = bss({f"s{k}": 200e6 for k in range(4)})
    for k in range(4):
        net.transfer(f"s{k}", "ap", 1e6, tag=f"s{k}")
    env.run(until=1e-9)
    assert rates(net) == pytest.approx({f"s{k}": 50e6 for k in range(4)}, rel=1e-12)
    assert net.airtime("air") == pytest.approx(1.0, rel=1e-12)
    env.run()
    # four 1 MB transfers through one 200 Mbit/s channel end together at 4 x 40 ms
    assert [r.end_s for r in net.records] == pytest.approx([0.16] * 4, rel=1e-12)


def test_uplink_and_downlink_share_one_channel():
    env, net = bss({"s1": 100e6, "s2": 100e6})
    net.transfer("s1", "ap", 1e9, tag="up")
    net.transfer("ap", "s2", 1e9, tag="down")
    env.run(until=1e-9)
    assert rates(net) == pytest.approx({"up": 50e6, "down": 50e6}, rel=1e-12)


def test_a_relay_crosses_the_air_twice():
    env, net = bss({"s1": 300e6, "s2": 100e6}, preamble_s=PREAMBLE_S, contention=CONTENTION_S,
                   relay_s=91e-6)
    done = net.transfer("s1", "s2", 1e6)
    env.run()
    rate = 1 / (1 / 300e6 + 1 / 100e6)                   # 75 Mbit/s
    # a PHY header per hop; the access point waits SIFS, BlockAck and AIFS before it relays
    assert done.value.end_s == pytest.approx(8e6 / rate + 2 * PREAMBLE_S + 91e-6, rel=1e-12)


def test_a_message_from_a_wire_leaves_the_access_point_in_two_accesses():
    medium = MediumSpec("air", frozenset({("ap", "s")}), 40e-6, 150e-6, segment_bytes=1448)
    path = (("w", "ap"), ("ap", "s"))
    assert medium.air_time_s(path, 1000, False) == pytest.approx(40e-6)     # one segment
    assert medium.air_time_s(path, 4096, False) == pytest.approx(2 * 40e-6 + 150e-6)
    # queued behind others, its segments are all there when its turn comes: one access
    assert medium.air_time_s(path, 4096, True) == pytest.approx(40e-6 + 150e-6)
    assert medium.air_time_s((("ap", "s"),), 4096, False) == pytest.approx(40e-6)


def test_a_senders_short_messages_leave_one_after_another():
    env, net = bss({"s1": 100e6, "s2": 100e6, "s3": 100e6}, wired=1e9, txop_bytes=60_000)
    first = net.transfer("w", "s1", 50_000)         # the AP sends both downlinks
    second = net.transfer("w", "s2", 50_000)
    bulk = net.transfer("w", "s3", 1e6)              # longer than a TXOP: shares the air
    env.run()
    t1, t2 = first.value.end_s, second.value.end_s
    # while both short ones wait in one queue, the first and the bulk flow share the air
    assert t1 == pytest.approx(2 * 4e5 / 100e6, rel=1e-9)
    assert t2 == pytest.approx(t1 + 2 * 4e5 / 100e6, rel=1e-9)
    assert second.value.stalled_s == 0.0
    assert bulk.value.end_s == pytest.approx((8e6 + 2 * 4e5) / 100e6, rel=1e-9)


def test_a_slow_station_drags_the_fast_one_down():
    """The 802.11 performance anomaly (Heusse et al., INFOCOM 2003): max-min fair rates
    under airtime give both stations the same rate, 1 / (1/G_fast + 1/G_slow)."""
    env, net = bss({"fast": 400e6, "slow": 40e6})
    net.transfer("fast", "ap", 1e9, tag="fast")
    net.transfer("slow", "ap", 1e9, tag="slow")
    env.run(until=1e-9)
    equal = 1 / (1 / 400e6 + 1 / 40e6)
    assert rates(net) == pytest.approx({"fast": equal, "slow": equal}, rel=1e-12)
    assert equal < 40e6 < 400e6 / 2


def test_a_wired_bottleneck_leaves_its_airtime_to_the_others():
    # s1 -> w is limited to 20 Mbit/s by the wire: it uses 20/100 of the air, s2 gets the rest
    env, net = bss({"s1": 100e6, "s2": 100e6}, wired=20e6)
    net.transfer("s1", "w", 1e9, tag="s1")
    net.transfer("s2", "ap", 1e9, tag="s2")
    env.run(until=1e-9)
    assert rates(net) == pytest.approx({"s1": 20e6, "s2": 80e6}, rel=1e-12)


def test_a_message_into_a_busy_medium_pays_the_contention_overhead():
    env, net = bss({"s1": 100e6, "s2": 100e6}, preamble_s=PREAMBLE_S, contention=CONTENTION_S)
    net.transfer("s1", "ap", 1e9, tag="bulk")
    env.run(until=1.0)
    small = net.transfer("s2", "ap", 0)                   # an empty message: air time only
    env.run(small)
    # its fixed air time (header + contention) as bits, shared equally with the bulk flow
    assert small.value.end_s - 1.0 == pytest.approx(2 * (PREAMBLE_S + CONTENTION_S),
                                                    rel=1e-9)


def test_a_station_at_zero_capacity_stalls_alone():
    env, net = bss({"s1": 100e6, "s2": 100e6})
    net.set_capacity(("s1", "ap"), 0.0)
    net.transfer("s1", "ap", 1e6, tag="dead")
    net.transfer("s2", "ap", 1e6, tag="alive")
    env.run(until=1e-9)
    assert rates(net) == {"dead": 0.0, "alive": 100e6}


def test_a_capacity_change_on_a_member_link_reshares_the_airtime():
    env, net = bss({"s1": 100e6, "s2": 100e6})
    net.transfer("s1", "ap", 1e9, tag="s1")
    net.transfer("s2", "ap", 1e9, tag="s2")
    env.run(until=1.0)
    net.set_capacity(("s1", "ap"), 25e6)                  # s1 fades: 1/(1/25 + 1/100) = 20
    env.run(until=1.0 + 1e-9)                             # (re-shared once the instant is in)
    assert rates(net) == pytest.approx({"s1": 20e6, "s2": 20e6}, rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(caps=st.lists(st.floats(5e6, 800e6), min_size=2, max_size=5),
       flows=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 5),
                                st.floats(1, 2e6), st.floats(0, 0.05)),
                      min_size=1, max_size=12))
def test_airtime_never_above_one_and_every_byte_arrives(caps, flows):
    stations = {f"s{k}": c for k, c in enumerate(caps)}
    env, net = bss(stations, wired=300e6, preamble_s=PREAMBLE_S, contention=CONTENTION_S)
    nodes = [*stations, "ap", "w"]
    checks = []

    def observe(active, capacity):
        air = net.airtime("air")
        checks.append(air)
        assert air <= 1.0 + 1e-9
        for flow in active:
            for res in flow.resources:
                if res[0] != "medium":
                    assert flow.rate_bps <= capacity[res] * (1 + 1e-9)
    net.observers.append(observe)
    sent = []

    def start(at, src, dst, size):
        yield env.timeout(at)
        sent.append(net.transfer(src, dst, size))
    for a, b, size, at in flows:
        src = nodes[a % len(nodes)]
        dst = nodes[(a + 1 + b % (len(nodes) - 1)) % len(nodes)]    # never src itself
        env.process(start(at, src, dst, size))
    env.run()
    assert checks                                # every flow carries bytes: rates were set
    assert all(event.triggered for event in sent)
    assert sum(r.size_bytes for r in net.records) == pytest.approx(
        sum(event.value.size_bytes for event in sent if event.value is not None))


# ----- the 802.11 figures ------------------------------------------------------------------

@pytest.mark.parametrize("phy, mbps", [
    (WifiPhy("80211n", 20, 7, 1, 800), 65.0),        # 802.11-2020 Table 19-27
    (WifiPhy("80211n", 40, 7, 2, 400), 300.0),
    (WifiPhy("80211ac", 80, 9, 1, 800), 390.0),      # Table 21-37
    (WifiPhy("80211ac", 80, 9, 2, 400), 866.7),
    (WifiPhy("80211ac", 160, 8, 1, 800), 702.0),
    (WifiPhy("80211ax", 80, 11, 2, 800), 1201.0),    # 802.11ax-2021 Table 27-101
    (WifiPhy("80211ax", 20, 0, 1, 800), 8.6),
])
def test_phy_rates_are_the_standards(phy, mbps):
    assert phy.rate_bps / 1e6 == pytest.approx(mbps, abs=0.05)


def test_goodput_of_one_station_matches_ns3():
    """ns-3 3.44, 802.11ac 80 MHz one stream MCS 9 (390 Mbit/s), ConstantRateWifiManager,
    warm TCP CUBIC with 1448-byte segments, 65,535-byte A-MPDUs: 1 MiB took 29.04 ms (288.8
    Mbit/s) and 8 MiB 256 ms (262 Mbit/s); with the short guard interval (433.3 Mbit/s) 8
    MiB took 229 ms (293 Mbit/s). Measured with testbed/emulation/ns3 on this machine."""
    assert tcp_goodput_bps(WifiPhy("80211ac", 80, 9, 1, 800)) / 1e6 == pytest.approx(275,
                                                                                     rel=0.06)
    assert tcp_goodput_bps(WifiPhy("80211ac", 80, 9, 1, 400)) / 1e6 == pytest.approx(293,
                                                                                     rel=0.03)


def test_contention_is_aifs_backoff_sifs_and_block_ack():
    # AIFS[BE] 16 + 3 x 9 us, mean backoff 7.5 x 9 us, SIFS 16 us, BlockAck 32 us
    assert contention_s() == pytest.approx(43e-6 + 67.5e-6 + 16e-6 + 32e-6)
    assert relay_s() == pytest.approx(16e-6 + 32e-6 + 43e-6)


@pytest.mark.parametrize("bad, match", [
    (dict(standard="80211ac", width_mhz=80, mcs=10, spatial_streams=1, guard_interval_ns=800),
     "MCS 0-9"),
    (dict(standard="80211n", width_mhz=80, mcs=1, spatial_streams=1, guard_interval_ns=800),
     "20, 40 MHz"),
    (dict(standard="80211ax", width_mhz=80, mcs=1, spatial_streams=1, guard_interval_ns=400),
     "800, 1600, 3200"),
    (dict(standard="80211g", width_mhz=20, mcs=1, spatial_streams=1, guard_interval_ns=800),
     "80211n"),
])
def test_a_bad_phy_is_refused(bad, match):
    with pytest.raises(ConfigError, match=match):
        WifiPhy(**bad)


# ----- topology files ---------------------------------------------------------------------

TOPOLOGY = """
name: t
nodes:
  - {name: a, device: raspberry-pi-5-8gb}
  - {name: b, device: raspberry-pi-5-8gb}
  - {name: c, device: raspberry-pi-5-8gb}
  - {name: ap, switch: true}
links:
  - {a: a, b: ap, technology: wifi5}
  - {a: b, b: ap, technology: wifi5, mcs: 3}
  - {a: c, b: ap, technology: ethernet-1g}
"""


def write(tmp_path, media: str) -> str:
    path = tmp_path / "topology.yaml"
    path.write_text(TOPOLOGY + media, encoding="utf-8")
    return str(path)


def test_a_bss_takes_the_access_points_wifi_links(tmp_path):
    topology = load_topology(write(tmp_path, "media:\n  - {name: bss, access_point: ap}\n"))
    medium = topology.media["bss"]
    assert medium.members == {("a", "ap"), ("ap", "a"), ("b", "ap"), ("ap", "b")}
    assert medium.stations == ("a", "b")
    assert medium.preamble_s == pytest.approx(44e-6)      # VHT, 2 streams
    slow = WifiPhy("80211ac", 80, 3, 2, 400)
    assert topology.links[("b", "ap")].capacity_bps == pytest.approx(tcp_goodput_bps(slow))
    view = NetworkView(topology, {k: link.capacity_bps for k, link in topology.links.items()})
    fast = topology.links[("a", "ap")].capacity_bps
    both = 1 / (1 / fast + 1 / topology.links[("ap", "b")].capacity_bps)
    assert view.bandwidth_bps("a", "b") == pytest.approx(both)
    # two PHY headers, and the access point waits SIFS, BlockAck and AIFS to relay
    assert view.transfer_time_s("a", "b", 1e6) == pytest.approx(
        2 * 3e-3 + 8e6 / both + 2 * 44e-6 + 91e-6)
    assert medium.txop_bytes == 42 * 1448    # 65,535-byte A-MPDUs of 1,544-byte subframes


@pytest.mark.parametrize("media, field, match", [
    ("media:\n  - {name: m, access_point: c}\n", "media[0].access_point", "no Wi-Fi link"),
    ("media:\n  - {name: m, access_point: ap, stations: [c]}\n", "media[0].stations[0]",
     "no Wi-Fi link"),
    ("media:\n  - {name: m, access_point: ap, links: [[a, ap]]}\n", "media[0]", "either"),
    ("media:\n  - {name: m, links: [[a, zz]]}\n", "media[0].links[0]", "link of the topology"),
    ("media:\n  - {name: m, access_point: ap}\n  - {name: n, links: [[a, ap]]}\n", "media[1]",
     "at most one"),
    ("media:\n  - {name: m, access_point: ap, preamble: 5 us}\n", "media[0].preamble",
     "standard"),
    ("media:\n  - {name: m, links: [[c, ap]], contention: 5}\n", "media[0].contention",
     "unit"),
])
def test_bad_media_are_one_line_errors(tmp_path, media, field, match):
    with pytest.raises(ConfigError, match=match) as caught:
        load_topology(write(tmp_path, media))
    assert caught.value.field == field
    assert "\n" not in str(caught.value)


def test_an_mcs_on_a_wired_link_is_refused(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(TOPOLOGY.replace("technology: ethernet-1g", "technology: ethernet-1g, "
                                     "mcs: 2"), encoding="utf-8")
    with pytest.raises(ConfigError, match="Wi-Fi technology link only"):
        load_topology(str(path))


def test_shipped_wifi_topologies_use_media():
    from testbed.cluster.build import TOPOLOGIES_DIR
    for name in ("home_office.yaml", "star_wifi.yaml"):
        topology = load_topology(TOPOLOGIES_DIR / name)
        assert topology.media, name
        wifi_links = {k for k, link in topology.links.items()
                      if link.technology.startswith("wifi")}
        assert wifi_links == set().union(*(m.members for m in topology.media.values()))
        assert not math.isnan(sum(m.preamble_s for m in topology.media.values()))


# ----- the engine on a shared medium --------------------------------------------------------

def _home_tables(fast: bool, name: str):
    import dataclasses

    from golden_scenarios import SCENARIOS
    from testbed.experiments import runner
    from testbed.experiments.scenario import scenario_from_dict
    from testbed.partition import make_partitioner
    from testbed.sim.engine import Simulation
    data = dict(SCENARIOS[name], topology={"file": "home_office.yaml"})
    scenario = scenario_from_dict(data, source="<media test>")
    assert scenario.sim.topology.media
    out, swept = {}, 0
    for spec in scenario.partitioners:
        label = runner.partitioner_label(spec)
        config = dataclasses.replace(runner.sim_config(scenario), fast_path=fast)
        sim = Simulation(config, make_partitioner(runner.partitioner_spec(spec), seed=1))
        out[label] = sim.run().frames()
        swept += sim.swept_passes
    return out, swept


@pytest.mark.parametrize("name", ["home_fading", "home_live"])
def test_fast_sweep_equals_the_event_driven_run_on_a_medium(name):
    import numpy as np
    slow, _ = _home_tables(False, name)
    fast, swept = _home_tables(True, name)
    assert swept > 0 or name == "home_live"     # live migrations keep every pass event-driven
    for label, tables in slow.items():
        for table, frame in tables.items():
            other = fast[label][table]
            assert frame.shape == other.shape, (label, table)
            for column in frame.columns:
                if column == "decision_wall_s":
                    continue
                if frame[column].dtype.kind == "f":
                    np.testing.assert_allclose(other[column], frame[column], rtol=1e-12,
                                               err_msg=f"{label} {table}.{column}")
                else:
                    assert frame[column].equals(other[column]), (label, table, column)



@pytest.mark.parametrize("file", ["validate_ns3_wired.yaml", "validate_ns3_wifi.yaml"])
def test_fast_sweep_equals_the_event_driven_run_with_packets(file):
    import dataclasses
    from pathlib import Path

    import numpy as np

    from testbed.experiments import runner
    from testbed.experiments.scenario import load_scenario
    from testbed.partition import make_partitioner
    from testbed.sim.engine import Simulation
    path = Path(__file__).resolve().parents[1] / "experiments" / file
    scenario = load_scenario(path, quick=True)
    assert scenario.sim.packets
    swept = 0
    for spec in scenario.partitioners:
        tables = []
        for fast in (False, True):
            config = dataclasses.replace(
                runner.sim_config(scenario, dataflow=scenario.dataflow_of(spec)), fast_path=fast)
            sim = Simulation(config, make_partitioner(runner.partitioner_spec(spec), seed=1))
            tables.append(sim.run().frames())
            swept += sim.swept_passes
        for name, frame in tables[0].items():
            for column in frame.columns:
                if column == "decision_wall_s":
                    continue
                if frame[column].dtype.kind == "f":
                    np.testing.assert_allclose(tables[1][name][column], frame[column],
                                               rtol=1e-12, err_msg=f"{name}.{column}")
                else:
                    assert frame[column].equals(tables[1][name][column]), (name, column)
    assert swept > 0              # the layer pipeline's passes share no link: swept
