"""The ns-3 backend: its settings, what it builds from a topology and a plan (no ns-3
needed), and one validation end to end in ns-3 (skipped, saying why, without the extra)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from testbed.cluster.topology_file import load_topology
from testbed.emulation.ns3.build import Ns3Unsupported, network_description, plan_description
from testbed.emulation.ns3.settings import Ns3Settings, settings_from_config
from testbed.emulation.ns3.validate import unavailable_reason
from testbed.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
TOPOLOGIES = ROOT / "topologies"
NS3_MISSING = unavailable_reason()


def test_settings_default_and_parse():
    assert settings_from_config(None, source="s.yaml") == Ns3Settings()
    got = settings_from_config({"tcp": {"segment_size": 1000, "buffer": "1 MiB",
                                        "congestion": "newreno"},
                                "wifi": {"distance": "30 cm", "rate_control": "ideal"},
                                "replications": 2}, source="s.yaml")
    assert (got.segment_bytes, got.buffer_bytes, got.congestion, got.distance_m,
            got.rate_control, got.replications) == (1000, 1 << 20, "newreno", 0.3, "ideal", 2)


@pytest.mark.parametrize("data, field", [
    ({"tcp": {"congestion": "bbr"}}, "ns3.tcp.congestion"),
    ({"tcp": {"buffer": 4096}}, "ns3.tcp.buffer"),
    ({"wifi": {"distance": "5"}}, "ns3.wifi.distance"),
    ({"wifi": {"rate_control": "minstrel"}}, "ns3.wifi.rate_control"),
    ({"replications": 0}, "ns3.replications"),
    ({"speed": 1}, "ns3.speed"),
])
def test_bad_settings_are_one_line_errors(data, field):
    with pytest.raises(ConfigError) as caught:
        settings_from_config(data, source="s.yaml")
    assert caught.value.field == field and "\n" not in str(caught.value)


def test_a_topology_becomes_point_to_point_links_and_a_bss():
    topology = load_topology(TOPOLOGIES / "office_wifi5.yaml")
    network = network_description(topology, Ns3Settings(), horizon_s=10.0)
    nodes = network["nodes"]
    assert len(network["p2p"]) == 3                      # the three Ethernet links
    (bss,) = network["bss"]
    assert nodes[bss["ap"]] == "ap"
    assert sorted(nodes[s] for s in bss["stations"]) == ["jetson-nano", "jetson-nx", "pi4",
                                                         "pi5"]
    assert (bss["standard"], bss["data_mode"], bss["spatial_streams"], bss["short_guard"]) == \
        ("80211ac", "VhtMcs9", 2, True)
    assert bss["channel"] == "{0, 80, BAND_5GHZ, 0}"


def test_what_ns3_cannot_replay_is_refused():
    home = load_topology(TOPOLOGIES / "home_office.yaml")       # Wi-Fi 5 and Wi-Fi 6 stations
    with pytest.raises(Ns3Unsupported, match="different PHYs"):
        network_description(home, Ns3Settings(), 10.0)
    office = load_topology(TOPOLOGIES / "office_wifi5.yaml")
    from testbed.traces.series import Series
    fading = office.with_link_series("ap", "pi5", Series([0.0, 1.0], [4e8, 1e8]))
    with pytest.raises(Ns3Unsupported, match="wired links only"):
        network_description(fading, Ns3Settings(), 10.0)
    wired = load_topology(TOPOLOGIES / "office_wired.yaml")
    dead = wired.with_link_series("pi5", "switch", Series([0.0, 1.0], [1e9, 0.0]))
    with pytest.raises(Ns3Unsupported, match="0 bit/s"):
        network_description(dead, Ns3Settings(), 10.0)
    changing = wired.with_link_series("pi5", "switch", Series([0.0, 1.0], [1e9, 2e8]))
    changes = network_description(changing, Ns3Settings(), 10.0)["changes"]
    assert [(c["at_s"], c["bps"]) for c in changes] == [(1.0, 2e8)]


def test_a_plan_becomes_arrays_with_every_dependency_an_event():
    from testbed.emulation import validate
    from testbed.experiments.scenario import load_scenario
    scenario = load_scenario(ROOT / "experiments" / "validate_ns3_wired.yaml", quick=True)
    (run, dataflow), _ = validate.simulations(scenario, scenario.sim.topology)
    plan = validate.compiled_plan(scenario, run, dataflow, 0)
    nodes = list(scenario.sim.topology.graph.nodes)
    described = plan_description(plan, nodes)
    tasks = described["tasks"]
    assert len(tasks) == len(plan.tasks)
    assert len(described["xfers"]) == len(plan.transfers)
    produced = {t["done_event"] for t in tasks} | set(described["xfer_event"]) | \
        set(described["signal_event"])
    assert all(dep in produced for t in tasks for dep in t["deps"])
    assert len(produced) == described["n_events"]
    sends = [t for t in tasks if t["op"] == 2]
    pairs = {(t["device"], t["dst"]) for t in sends}
    assert len(described["connections"]) >= len(pairs)


@pytest.mark.ns3
@pytest.mark.slow
@pytest.mark.skipif(NS3_MISSING is not None, reason=NS3_MISSING or "")
def test_validate_ns3_end_to_end(tmp_path):
    """`testbed validate ns3` on the Wi-Fi scenario (quick): the measurement interface, and
    accuracy no worse than what it was when the backend landed (the targets are in the
    issue; ns-3's own run-to-run spread is reported beside them)."""
    out = tmp_path / "val"
    proc = subprocess.run([sys.executable, "-m", "testbed.cli", "validate", "ns3",
                           str(ROOT / "experiments" / "validate_ns3_wifi.yaml"), "--quick",
                           "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = pd.read_csv(out / "validation.csv")
    assert list(table.columns) == ["metric", "n", "median_err_pct", "p90_err_pct"]
    rows = table.set_index("metric")
    assert rows.loc["transfer_time", "n"] >= 150
    assert rows.loc["token_latency", "p90_err_pct"] <= 10.0           # the target
    spread = rows.loc["transfer_time[ns-3 run 2 vs 1]", "median_err_pct"]
    assert 0 < spread                     # 802.11 backoffs are random: runs differ
    assert rows.loc["transfer_time", "median_err_pct"] <= 2 * spread
    assert (out / "validation.png").stat().st_size > 10_000
    meta = json.loads((out / "meta.json").read_text())
    assert meta["settings"]["tcp"]["segment_size"] == 1448 and meta["ns3_version"] != "unknown"


@pytest.mark.ns3
@pytest.mark.slow
@pytest.mark.skipif(NS3_MISSING is not None, reason=NS3_MISSING or "")
def test_validate_ns3_wired_is_close(tmp_path):
    out = tmp_path / "wired"
    proc = subprocess.run([sys.executable, "-m", "testbed.cli", "validate", "ns3",
                           str(ROOT / "experiments" / "validate_ns3_wired.yaml"), "--quick",
                           "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = pd.read_csv(out / "validation.csv").set_index("metric")
    assert rows.loc["token_latency", "p90_err_pct"] <= 2.0           # the wired target
    assert rows.loc["transfer_time", "median_err_pct"] <= 2.0        # (measured 0.07 %)


def test_the_cli_says_when_ns3_is_missing(monkeypatch, capsys, tmp_path):
    from testbed import cli
    from testbed.emulation.ns3 import validate
    monkeypatch.setattr(validate, "unavailable_reason", lambda: "the ns3 package is not "
                        "installed; pip install -e '.[ns3]'")
    status = cli.main(["validate", "ns3", str(ROOT / "experiments" / "validate_ns3_wifi.yaml"),
                       "--out", str(tmp_path / "x")])
    assert status == 3
    err = capsys.readouterr().err
    assert "cannot run the ns-3 backend here" in err and ".[ns3]" in err


@pytest.mark.ns3
@pytest.mark.slow
@pytest.mark.skipif(NS3_MISSING is not None, reason=NS3_MISSING or "")
def test_slow_start_matches_ns3_where_the_fluid_model_does_not():
    """A message on a fresh connection (initial window 10, TCP CUBIC as Linux) over 100
    Mbit/s with a 10 ms round trip: the transport model within 5 % of ns-3 from 16 KiB to
    8 MiB, where the fluid time is up to 59 % short (measured: 16 KiB 15.28 ms in ns-3,
    6.31 fluid, 15.15 modelled; 1 MiB 113.6, 88.9, 111.5)."""
    from testbed.emulation.ns3.single import single_transfer_s
    from testbed.sim.transport import slow_start_s
    sizes = [16 * 1024, 256 * 1024, 1 << 20, 8 << 20]
    measured = single_transfer_s(sizes, goodput_bps=100e6, one_way_s=0.005)
    for size, ns3_s in zip(sizes, measured):
        fluid = 0.005 + size * 8 / 100e6
        model = fluid + slow_start_s(size, 14480, 100e6, 0.010)[0]
        assert model == pytest.approx(ns3_s, rel=0.05), size
    assert (0.005 + sizes[0] * 8 / 100e6) < 0.5 * measured[0]


@pytest.mark.ns3
@pytest.mark.slow
@pytest.mark.skipif(NS3_MISSING is not None, reason=NS3_MISSING or "")
def test_bulk_transfers_on_a_shared_bss_match_ns3():
    """The issue's cases, on office_wifi5 (2x2 VHT80 MCS 9): 8 MiB from one station, from
    four at once, station -> AP -> station, a four-station relay ring, and the AP to four
    stations. With the shared medium every mean is within 16 % of ns-3's (measured: -5, -5,
    0, +10, +15 %); with a link per station the multi-station ones are 41-86 % short."""
    import simpy

    from testbed.emulation.ns3.single import concurrent_transfers_s
    from testbed.emulation.ns3.validate import media_without_latency
    from testbed.sim.network import Network
    topology = media_without_latency(load_topology(TOPOLOGIES / "office_wifi5.yaml"))
    mib, st = 1 << 20, ["jetson-nx", "jetson-nano", "pi5", "pi4"]
    cases = [[("jetson-nx", "nuc", 8 * mib)],
             [(s, "nuc", 8 * mib) for s in st],
             [("jetson-nx", "pi5", 8 * mib)],
             [(st[k], st[(k + 1) % 4], 8 * mib) for k in range(4)],
             [("nuc", s, 8 * mib) for s in st]]

    def modelled(topo, transfers):
        env = simpy.Environment()
        net = Network(env, topo.path, {k: v.capacity_bps for k, v in topo.links.items()},
                      {k: v.latency_s for k, v in topo.links.items()},
                      media=topo.media.values())
        events = [net.transfer(s, d, z) for s, d, z in transfers]
        env.run()
        return sum(e.value.end_s for e in events) / len(events)
    measured = [sum(times) / len(times) for times in concurrent_transfers_s(topology, cases)]
    for transfers, ns3_s in zip(cases, measured):
        assert modelled(topology, transfers) == pytest.approx(ns3_s, rel=0.16), transfers
    for transfers, ns3_s in zip(cases[1:], measured[1:]):
        assert modelled(topology.without_media(), transfers) < 0.6 * ns3_s, transfers


def test_what_ns3_cannot_build_is_refused_before_anything_runs(monkeypatch, tmp_path):
    from testbed.emulation.ns3 import validate
    monkeypatch.setattr(validate, "unavailable_reason", lambda: None)
    text = (ROOT / "experiments" / "validate_ns3_wifi.yaml").read_text(encoding="utf-8")
    text = text.replace("{file: office_wifi5.yaml}", "{file: home_office.yaml}")
    for old, new in (('"L0-3.attn6": pi4, "L0-3.attn7": pi4', '"L0-3.attn6": phone, '
                      '"L0-3.attn7": phone'), ('"L3": pi4', '"L3": phone')):
        text = text.replace(old, new)
    path = tmp_path / "mixed.yaml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setattr(validate, "simulations", lambda *a: pytest.fail("simulated first"))
    with pytest.raises(ConfigError, match="different PHYs") as caught:
        validate.validate_ns3(path, tmp_path / "out", echo=lambda _text: None)
    assert caught.value.field == "topology"
