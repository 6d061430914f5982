"""Topologies: shipped files, routing, asymmetric and time-varying links, generators, and
one-line errors for malformed files."""

import itertools
import math
import random
import runpy
from pathlib import Path

import networkx as nx
import pytest

from testbed.cluster.wifi import WifiPhy, tcp_goodput_bps
from hypothesis import given, settings, strategies as st

from testbed.cluster import (
    TOPOLOGY_GENERATORS, DeviceSpec, LinkSpec, Topology, build_topology, load_topology,
    make_device,
)
from testbed.errors import ConfigError
from testbed.traces.series import Series

TOPOLOGIES = Path(__file__).resolve().parents[1] / "topologies"
SHIPPED = sorted(TOPOLOGIES.glob("*.yaml"))


def _device(name):
    return DeviceSpec(name, "custom", peak_flops=1e12, mem_bw_bytes_per_s=1e11, memory_bytes=8e9)


def _write(tmp_path, text, name="topo.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ----- shipped topologies ----------------------------------------------------------------------

def test_the_expected_topologies_ship():
    names = {path.stem for path in SHIPPED}
    assert {"full_mesh_4", "star_wifi", "line_4", "home_office", "paper_edge8",
            "paper_clusters16", "paper_cloud24"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_topology_loads_is_connected_and_routes_every_device_pair(path):
    topology = load_topology(path)
    assert nx.is_connected(topology.graph)
    assert topology.controller in topology.devices
    assert path.read_text().startswith("#")  # a header saying what it models
    for src, dst in itertools.permutations(topology.device_names, 2):
        route = topology.path(src, dst)
        assert route[0][0] == src and route[-1][1] == dst
        assert all(a[1] == b[0] for a, b in zip(route, route[1:]))
        assert all(key in topology.links for key in route)
        assert topology.path_latency_s(src, dst) == pytest.approx(
            sum(topology.links[key].latency_s for key in route))
        assert 0 < topology.bottleneck_bps(src, dst) < math.inf


@pytest.mark.parametrize("stem, count", [("paper_edge8", 8), ("paper_clusters16", 16),
                                         ("paper_cloud24", 24)])
def test_paper_topologies_have_their_sizes_and_paper_ranges(stem, count):
    topology = load_topology(TOPOLOGIES / f"{stem}.yaml")
    assert len(topology.devices) == count and not topology.switches
    for device in topology.devices.values():
        assert 1e9 <= device.peak_flops <= 5e11
        assert 2e9 <= device.memory_bytes <= 64e9
    for link in topology.links.values():
        assert 0.01e9 <= link.capacity_bps <= 40e9
    strongest = max(topology.devices.values(), key=lambda d: d.peak_flops)
    assert topology.controller == strongest.name


def test_paper_topologies_are_what_their_script_generates():
    script = runpy.run_path(str(TOPOLOGIES / "make_paper_topologies.py"))
    for file_name, text in script["render_all"]().items():
        assert (TOPOLOGIES / file_name).read_text(encoding="utf-8") == text, file_name


def test_technology_links_take_their_figures_from_the_link_table():
    topology = load_topology(TOPOLOGIES / "star_wifi.yaml")
    link = topology.links[("phone", "ap")]
    assert link.technology == "wifi5"
    # a Wi-Fi station alone: the TCP goodput of a 2x2 VHT 80 MHz MCS 9 short-GI PHY
    phy = WifiPhy("80211ac", 80, 9, 2, 400)
    assert phy.rate_bps == pytest.approx(866.67e6, rel=1e-4)
    assert link.capacity_bps == pytest.approx(tcp_goodput_bps(phy))
    assert link.latency_s == pytest.approx(3e-3)
    assert topology.switches == ("ap",)
    assert topology.path("phone", "pi4") == (("phone", "ap"), ("ap", "pi4"))


def test_home_office_controller_and_switches():
    topology = load_topology(TOPOLOGIES / "home_office.yaml")
    assert topology.controller == "mac-mini"
    assert set(topology.switches) == {"switch", "ap"}
    assert 5 <= len(topology.devices) <= 6
    assert topology.path("mac-mini", "phone") == (
        ("mac-mini", "switch"), ("switch", "ap"), ("ap", "phone"))


# ----- routing ---------------------------------------------------------------------------------

def _topology(edges_ms, nodes=None):
    """A topology of custom devices from (a, b, latency in ms) triples."""
    nodes = nodes or sorted({n for a, b, _ in edges_ms for n in (a, b)})
    links = [LinkSpec(a, b, 1e9, ms * 1e-3) for a, b, ms in edges_ms]
    return Topology([_device(n) for n in nodes], links, name="hand-made")


def test_routing_prefers_least_latency_over_fewest_hops():
    topology = _topology([("a", "d", 5), ("a", "b", 1), ("b", "c", 1), ("c", "d", 1)])
    assert topology.path("a", "d") == (("a", "b"), ("b", "c"), ("c", "d"))
    assert topology.path_latency_s("a", "d") == pytest.approx(3e-3)


def test_routing_ties_go_to_fewest_hops_then_smallest_node_sequence():
    # a -> d: direct 2 ms ties with a-b-d and a-c-d (1 + 1 ms): fewest hops wins
    topology = _topology([("a", "d", 2), ("a", "c", 1), ("c", "d", 1), ("a", "b", 1),
                          ("b", "d", 1)])
    assert topology.path("a", "d") == (("a", "d"),)
    # without the direct link, a-b-d and a-c-d tie in latency and hops: "b" < "c"
    topology = _topology([("a", "c", 1), ("c", "d", 1), ("a", "b", 1), ("b", "d", 1)])
    assert topology.path("a", "d") == (("a", "b"), ("b", "d"))
    assert topology.path("d", "a") == (("d", "b"), ("b", "a"))


def test_latency_ties_are_exact_despite_floating_point_sums():
    # 0.1 ms + 0.2 ms != 0.3 ms in floating point; it is still a tie, so fewest hops wins
    assert 0.1e-3 + 0.2e-3 != 0.3e-3
    topology = _topology([("a", "b", 0.1), ("b", "c", 0.2), ("a", "c", 0.3)])
    assert topology.path("a", "c") == (("a", "c"),)


def test_path_to_self_is_empty_and_unknown_nodes_are_key_errors():
    topology = _topology([("a", "b", 1)])
    assert topology.path("a", "a") == ()
    assert topology.path_latency_s("a", "a") == 0.0
    assert topology.bottleneck_bps("a", "a") == math.inf
    with pytest.raises(KeyError):
        topology.path("a", "zz")


def _brute_force(graph, latency_ms, src, dst):
    return min(nx.all_simple_paths(graph, src, dst),
               key=lambda p: (sum(latency_ms[frozenset(e)] for e in zip(p, p[1:])),
                              len(p), tuple(p)))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(2, 7))
def test_routes_match_brute_force_and_do_not_depend_on_input_order(seed, n):
    rng = random.Random(seed)
    graph = nx.gnp_random_graph(n, 0.6, seed=seed)
    graph.add_edges_from((i, i + 1) for i in range(n - 1))  # connected
    names = {i: f"n{i}" for i in graph}
    graph = nx.relabel_nodes(graph, names)
    latency_ms = {frozenset(e): rng.choice([1, 2, 3]) for e in graph.edges}
    edges = [(a, b, latency_ms[frozenset((a, b))]) for a, b in graph.edges]
    first = _topology(edges)
    shuffled = edges[:]
    rng.shuffle(shuffled)
    nodes = sorted(graph)
    rng.shuffle(nodes)
    second = _topology([(b, a, ms) for a, b, ms in shuffled], nodes=nodes)
    for src, dst in itertools.permutations(graph, 2):
        best = _brute_force(graph, latency_ms, src, dst)
        assert first.path(src, dst) == tuple(zip(best, best[1:]))
        assert second.path(src, dst) == first.path(src, dst)


# ----- directions and time-varying capacity ----------------------------------------------------

def test_asymmetric_bandwidth_directions_are_kept_apart(tmp_path):
    path = _write(tmp_path, """
nodes:
  - {name: jetson, device: jetson-orin-nano-8gb}
  - {name: ap, switch: true}
  - {name: pi, device: raspberry-pi-5-8gb}
links:
  - {a: jetson, b: ap, bandwidth: "100 Mbit/s", bandwidth_ba: "50 Mbit/s", latency: "3 ms"}
  - {a: pi, b: ap, bandwidth: "1 Gbit/s", latency: "1 ms"}
""")
    topology = load_topology(path)
    assert topology.links[("jetson", "ap")].capacity_bps == 100e6
    assert topology.links[("ap", "jetson")].capacity_bps == 50e6
    assert topology.bottleneck_bps("jetson", "pi") == 100e6
    assert topology.bottleneck_bps("pi", "jetson") == 50e6
    assert topology.links[("ap", "jetson")].latency_s == pytest.approx(3e-3)


def test_series_link_bottleneck_changes_at_the_breakpoint_and_loops(tmp_path):
    path = _write(tmp_path, """
nodes:
  - {name: laptop, device: apple-m2-mac-mini}
  - {name: jetson, device: jetson-orin-nano-8gb}
links:
  - {a: laptop, b: jetson, latency: "1 ms",
     bandwidth: {points: [["0 s", "100 Mbit/s"], ["5 s", "20 Mbit/s"]], loop: "10 s"}}
""")
    topology = load_topology(path)
    link = topology.links[("laptop", "jetson")]
    assert link.series is not None and link.capacity_bps == 100e6  # nominal = peak
    expected = {0.0: 100e6, 4.999: 100e6, 5.0: 20e6, 9.9: 20e6, 10.0: 100e6, 15.0: 20e6}
    for t_s, bps in expected.items():
        assert topology.bottleneck_bps("laptop", "jetson", t_s) == bps, t_s
        assert topology.bottleneck_bps("jetson", "laptop", t_s) == bps, t_s


def test_with_link_series_replaces_one_direction_of_a_copy():
    topology = _topology([("a", "b", 1), ("b", "c", 1)])
    series = Series((0.0, 2.0), (5e8, 1e8), unit="bit/s")
    traced = topology.with_link_series("b", "c", series)
    assert traced.bottleneck_bps("a", "c", 3.0) == 1e8
    assert traced.bottleneck_bps("c", "a", 3.0) == 1e9      # other direction untouched
    assert topology.bottleneck_bps("a", "c", 3.0) == 1e9    # original untouched
    assert traced.path("a", "c") == topology.path("a", "c")
    with pytest.raises(KeyError):
        topology.with_link_series("a", "c", series)


# ----- construction in code, generators, build_topology ----------------------------------------

def test_disconnected_topology_lists_its_parts():
    with pytest.raises(ConfigError) as info:
        _topology([("a", "b", 1), ("c", "d", 1)])
    assert "{a, b} | {c, d}" in str(info.value) and info.value.field == "links"


def test_a_link_given_in_one_direction_is_mirrored():
    topology = Topology([_device("a"), _device("b")], [LinkSpec("a", "b", 1e8, 1e-3)])
    assert topology.links[("b", "a")] == LinkSpec("b", "a", 1e8, 1e-3)
    assert topology.controller == "a" and topology.source == "<generated>"


@pytest.mark.parametrize("generator, edges", [("full_mesh", 6), ("star", 4), ("line", 3)])
def test_generators(generator, edges):
    devices = [make_device(f"d{i}", "jetson-orin-nano-8gb") for i in range(4)]
    topology = TOPOLOGY_GENERATORS.get(generator)(devices, 1e9, 0.5e-3)
    assert topology.graph.number_of_edges() == edges
    assert topology.device_names == ["d0", "d1", "d2", "d3"]
    assert len(topology.links) == 2 * edges
    hops = {"full_mesh": 1, "star": 2, "line": 3}[generator]
    assert len(topology.path("d0", "d3")) == hops
    if generator == "star":
        assert topology.switches == ("ap",)


def test_build_topology_from_a_generator_spec(tmp_path):
    spec = {"generator": "star", "hub": "router", "controller": "b",
            "devices": [{"name": "a", "device": "jetson-orin-nano-8gb", "memory": "4 GiB"},
                        {"name": "b", "device": {"peak_flops": "50 GFLOP/s",
                                                 "mem_bw": "20 GB/s", "memory": "4 GiB"}}],
            "bandwidth": "100 Mbit/s", "latency": "2 ms"}
    topology = build_topology(spec, source=str(tmp_path / "scenario.yaml"))
    assert topology.switches == ("router",) and topology.controller == "b"
    assert topology.devices["a"].memory_bytes == 4 * 2**30
    assert topology.devices["b"].model == "custom"
    assert topology.devices["b"].mem_bw_bytes_per_s == 20e9
    assert topology.links[("a", "router")].capacity_bps == 100e6


def test_build_topology_finds_files_next_to_the_source_then_in_topologies(tmp_path):
    _write(tmp_path, "nodes:\n  - {name: solo, device: jetson-nano-4gb}\n", "mine.yaml")
    source = str(tmp_path / "scenario.yaml")
    assert build_topology({"file": "mine.yaml"}, source=source).device_names == ["solo"]
    shipped = build_topology({"file": "full_mesh_4.yaml"}, source=source)
    assert shipped.name == "full-mesh-4"


@pytest.mark.parametrize("spec, field", [
    ({"file": "nowhere.yaml"}, "topology.file"),
    ({"generator": "ring", "devices": [], "bandwidth": "1 Gbit/s", "latency": "1 ms"},
     "topology.generator"),
    ({"generator": "line", "devices": [{"name": "a", "device": "jetson-nano-4gb"}],
      "bandwidth": "1000", "latency": "1 ms"}, "topology.bandwidth"),
    ({"generator": "line", "devices": [{"name": "a", "device": "jetson-nano"}],
      "bandwidth": "1 Gbit/s", "latency": "1 ms"}, "topology.devices[0].device"),
    ({"generator": "line", "devices": [{"name": "a", "device": "jetson-nano-4gb"}],
      "bandwidth": "1 Gbit/s", "latency": "1 ms", "hub": "x"}, "topology.hub"),
    ({"generator": "line", "devices": [{"name": "a", "device": "jetson-nano-4gb"}],
      "bandwidth": "1 Gbit/s", "latency": "1 ms", "controller": "b"}, "topology.controller"),
    ({"topology": "x"}, "topology"),
])
def test_bad_topology_specs_name_the_scenario_and_field(tmp_path, spec, field):
    source = str(tmp_path / "scenario.yaml")
    with pytest.raises(ConfigError) as info:
        build_topology(spec, source=source)
    assert str(info.value).startswith(f"{source}: {field}")
    assert "\n" not in str(info.value)


# ----- GraphML ---------------------------------------------------------------------------------

GRAPHML = """<?xml version="1.0" encoding="UTF-8"?>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns">
  <key id="d0" for="node" attr.name="device" attr.type="string"/>
  <key id="d1" for="node" attr.name="switch" attr.type="boolean"/>
  <key id="d2" for="node" attr.name="memory" attr.type="string"/>
  <key id="d3" for="edge" attr.name="bandwidth" attr.type="{bw_type}"/>
  <key id="d4" for="edge" attr.name="latency" attr.type="string"/>
  <key id="d5" for="edge" attr.name="bandwidth_ba" attr.type="string"/>
  <key id="d6" for="graph" attr.name="controller" attr.type="string"/>
  <key id="d7" for="graph" attr.name="name" attr.type="string"/>
  <graph edgedefault="undirected">
    <data key="d6">pi</data>
    <data key="d7">lab</data>
    <node id="pi"><data key="d0">raspberry-pi-5-8gb</data><data key="d2">4 GiB</data></node>
    <node id="sw"><data key="d1">true</data></node>
    <node id="jetson"><data key="d0">jetson-orin-nano-8gb</data></node>
    <edge source="sw" target="pi"><data key="d3">{bw}</data><data key="d4">1 ms</data>
      <data key="d5">10 Mbit/s</data></edge>
    <edge source="jetson" target="sw"><data key="d3">1 Gbit/s</data>
      <data key="d4">1 ms</data></edge>
  </graph>
</graphml>
"""


def test_graphml_topology_keeps_edge_orientation_and_attributes(tmp_path):
    path = _write(tmp_path, GRAPHML.format(bw_type="string", bw="100 Mbit/s"), "lab.graphml")
    topology = load_topology(path)
    assert topology.name == "lab" and topology.controller == "pi"
    assert topology.switches == ("sw",) and topology.device_names == ["pi", "jetson"]
    assert topology.devices["pi"].memory_bytes == 4 * 2**30
    assert topology.links[("sw", "pi")].capacity_bps == 100e6
    assert topology.links[("pi", "sw")].capacity_bps == 10e6


def test_graphml_bare_number_bandwidth_is_an_error(tmp_path):
    path = _write(tmp_path, GRAPHML.format(bw_type="double", bw="100"), "lab.graphml")
    with pytest.raises(ConfigError) as info:
        load_topology(path)
    assert str(info.value).startswith(f"{path}: links[0].bandwidth: got bare number")


def test_graphml_syntax_error_gives_the_line(tmp_path):
    path = _write(tmp_path, "<graphml>\n<graph>\n</graphml>\n", "bad.graphml")
    with pytest.raises(ConfigError, match=r"bad.graphml: line 3: GraphML syntax error"):
        load_topology(path)


# ----- malformed YAML files --------------------------------------------------------------------

NODES = """nodes:
  - {name: a, device: jetson-orin-nano-8gb}
  - {name: b, device: raspberry-pi-5-8gb}
  - {name: ap, switch: true}
"""
GOOD_LINKS = """links:
  - {a: a, b: ap, bandwidth: "100 Mbit/s", latency: "2 ms"}
  - {a: b, b: ap, bandwidth: "100 Mbit/s", latency: "2 ms"}
"""


def _one_link(link):
    return NODES + "links:\n  - {a: b, b: ap, bandwidth: \"100 Mbit/s\", latency: \"2 ms\"}\n" \
        + f"  - {link}\n"


MALFORMED = {
    "missing unit": (_one_link('{a: a, b: ap, bandwidth: "100", latency: "2 ms"}'),
                     "links[1].bandwidth", "without a unit"),
    "bare number": (_one_link('{a: a, b: ap, bandwidth: 100, latency: "2 ms"}'),
                    "links[1].bandwidth", "bare number"),
    "bare number latency": (_one_link('{a: a, b: ap, bandwidth: "1 Gbit/s", latency: 2}'),
                            "links[1].latency", "bare number"),
    "negative bandwidth": (_one_link('{a: a, b: ap, bandwidth: "-5 Mbit/s", latency: "2 ms"}'),
                           "links[1].bandwidth", "> 0"),
    "zero bandwidth": (_one_link('{a: a, b: ap, bandwidth: "0 Mbit/s", latency: "2 ms"}'),
                       "links[1].bandwidth", "> 0"),
    "zero reverse bandwidth": (_one_link('{a: a, b: ap, bandwidth: "1 Mbit/s", '
                                         'bandwidth_ba: "0 bit/s", latency: "2 ms"}'),
                               "links[1].bandwidth_ba", "> 0"),
    "negative latency": (_one_link('{a: a, b: ap, bandwidth: "1 Mbit/s", latency: "-2 ms"}'),
                         "links[1].latency", ">= 0"),
    "non-numeric value": (_one_link('{a: a, b: ap, bandwidth: "fast", latency: "2 ms"}'),
                          "links[1].bandwidth", "'fast'"),
    "unknown unit": (_one_link('{a: a, b: ap, bandwidth: "5 furlongs/s", latency: "2 ms"}'),
                     "links[1].bandwidth", "unknown unit"),
    "missing bandwidth": (_one_link('{a: a, b: ap, latency: "2 ms"}'),
                          "links[1].bandwidth", "technology"),
    "unknown technology": (_one_link("{a: a, b: ap, technology: wifi-5}"),
                           "links[1].technology", "wifi5"),
    "link to unknown node": (_one_link('{a: a, b: router, bandwidth: "1 Mbit/s", '
                                       'latency: "2 ms"}'), "links[1].b", "'router'"),
    "self-loop": (_one_link('{a: a, b: a, bandwidth: "1 Mbit/s", latency: "2 ms"}'),
                  "links[1]", "self-loop"),
    "duplicate link": (_one_link('{a: ap, b: b, bandwidth: "1 Mbit/s", latency: "2 ms"}'),
                       "links[1]", "links[0]"),
    "unknown link key": (_one_link('{a: a, b: ap, bandwidth: "1 Mbit/s", delay: "2 ms"}'),
                         "links[1].delay", "latency"),
    "bad series": (_one_link('{a: a, b: ap, latency: "2 ms", bandwidth: {points: '
                             '[["5 s", "1 Mbit/s"], ["1 s", "2 Mbit/s"]]}}'),
                   "links[1].bandwidth", "increasing"),
    "bad series point": (_one_link('{a: a, b: ap, latency: "2 ms", bandwidth: {points: '
                                   '[["0 s", "1 Mbit/s", "x"]]}}'),
                         "links[1].bandwidth.points[0]", "[time, rate]"),
    "disconnected graph": (NODES + 'links:\n  - {a: a, b: ap, bandwidth: "1 Mbit/s", '
                           'latency: "2 ms"}\n', "links", "{a, ap} | {b}"),
    "unknown device type": (NODES.replace("raspberry-pi-5-8gb", "raspberry-pi-6") + GOOD_LINKS,
                            "nodes[1].device", "raspberry-pi-5-8gb"),
    "duplicate node name": (NODES.replace("name: b,", "name: a,") + GOOD_LINKS,
                            "nodes[1].name", "duplicate"),
    "unknown node key": (NODES.replace("name: b,", "name: b, colour: red,") + GOOD_LINKS,
                         "nodes[1].colour", "eff_mem"),
    "override without unit": (NODES.replace("name: b,", "name: b, memory: 4,") + GOOD_LINKS,
                              "nodes[1].memory", "bare number"),
    "efficiency not a fraction": (NODES.replace("name: b,", "name: b, eff_mem: high,")
                                  + GOOD_LINKS, "nodes[1].eff_mem", "fraction"),
    "inline device missing figure": (
        NODES.replace("device: raspberry-pi-5-8gb",
                      'device: {peak_flops: "5 GFLOP/s", memory: "1 GB"}') + GOOD_LINKS,
        "nodes[1].device.mem_bw", "missing"),
    "switch with a device": (NODES.replace("switch: true", "switch: true, device: x")
                             + GOOD_LINKS, "nodes[2].device", "unknown key"),
    "switch not a boolean": (NODES.replace("switch: true", "switch: yes please") + GOOD_LINKS,
                             "nodes[2].switch", "true or false"),
    "controller is a switch": ("controller: ap\n" + NODES + GOOD_LINKS, "controller",
                               "switch"),
    "controller unknown": ("controller: z\n" + NODES + GOOD_LINKS, "controller",
                           "expected one of the devices: a, b"),
    "only switches": ("nodes:\n  - {name: ap, switch: true}\n", "nodes", "compute device"),
    "unknown top-level key": (NODES + GOOD_LINKS.replace("links:", "link:"), "link",
                              "expected one of name, controller, nodes, links"),
    "nodes not a list": ("nodes: {a: 1}\n", "nodes", "list"),
    "YAML syntax error": (NODES.replace("jetson-orin-nano-8gb}", "jetson-orin-nano-8gb]")
                          + GOOD_LINKS, "line 2", "YAML syntax"),
    "repeated key": ("nodes: []\nnodes: []\n", "line 2", "repeated key"),
    "empty file": ("", None, "empty"),
    "top level not a mapping": ("- a\n- b\n", None, "mapping"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_topology_files_give_one_line_errors_naming_file_and_field(tmp_path, case):
    text, field, hint = MALFORMED[case]
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_topology(path)
    message = str(info.value)
    assert "\n" not in message
    assert info.value.source == str(path)
    prefix = f"{path}: {field}: " if field else f"{path}: "
    assert message.startswith(prefix), message
    assert hint in message, message


def test_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_topology(tmp_path / "absent.yaml")
    path = _write(tmp_path, NODES, "topo.json")
    with pytest.raises(ConfigError, match=r"\.graphml"):
        load_topology(path)


def test_a_line_rate_given_for_an_ethernet_link_carries_its_header_overhead(tmp_path):
    from testbed.experiments.scenario import scenario_from_dict
    path = tmp_path / "t.yaml"
    path.write_text("""
nodes:
  - {name: a, device: raspberry-pi-5-8gb}
  - {name: b, device: raspberry-pi-5-8gb}
  - {name: c, device: raspberry-pi-5-8gb}
  - {name: s, switch: true}
links:
  - {a: a, b: s, technology: ethernet-1g, bandwidth: "1 Gbit/s"}
  - {a: b, b: s, technology: ethernet-1g}
  - {a: c, b: s, bandwidth: "1 Gbit/s", latency: "0.1 ms"}
""", encoding="utf-8")
    topology = load_topology(path)
    # TCP with timestamps: 1448 payload bytes per 1538 on the wire of physical Ethernet
    assert topology.links[("a", "s")].goodput_factor == pytest.approx(1448 / 1538)
    assert topology.links[("b", "s")].goodput_factor == 1.0   # the table's throughput
    assert topology.links[("c", "s")].goodput_factor == 1.0   # no technology: as given
    base = {"model": {"name": "tinyllama-1.1b", "overrides": {"n_layers": 2}},
            "topology": {"file": str(path)}}
    scenario = scenario_from_dict({**base, "links": [
        {"a": "b", "b": "s", "bandwidth": "100 Mbit/s"},
        {"a": "a", "b": "s", "bandwidth": {"points": [["0 s", "1 Gbit/s"]]}}]})
    assert scenario.sim.goodput_factor is None                      # the default: technology
    assert scenario.sim.topology.links[("b", "s")].goodput_factor == pytest.approx(1448 / 1538)
    assert scenario_from_dict({**base, "network": {"goodput_factor": 0.9}}).sim.goodput_factor \
        == 0.9
    with pytest.raises(ConfigError, match="technology"):
        scenario_from_dict({**base, "network": {"goodput_factor": "ethernet"}})


def test_a_tiered_cluster_can_cap_memory_except_the_controllers(tmp_path):
    source = str(tmp_path / "scenario.yaml")
    drawn = build_topology({"tiered": {"n_devices": 10, "seed": 5}}, source=source)
    capped = build_topology({"tiered": {"n_devices": 10, "seed": 5, "memory_max": "1 GB"}},
                            source=source)
    assert capped.controller == drawn.controller
    for name, device in capped.devices.items():
        before = drawn.devices[name].memory_bytes
        expected = before if name == capped.controller else min(before, 1e9)
        assert device.memory_bytes == expected
        assert device.peak_flops == drawn.devices[name].peak_flops
    assert max(d.memory_bytes for n, d in drawn.devices.items() if n != drawn.controller) > 1e9
    with pytest.raises(ConfigError, match="topology.tiered.memory_max"):
        build_topology({"tiered": {"n_devices": 10, "memory_max": "2"}}, source=source)
