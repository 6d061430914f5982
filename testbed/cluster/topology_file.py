"""Topology files: YAML (``.yaml``/``.yml``) or GraphML (``.graphml``).

YAML::

    name: home-office
    controller: laptop                    # optional; default: the first device
    nodes:
      - {name: laptop, device: apple-m2-mac-mini}
      - {name: jetson, device: jetson-orin-nano-8gb, memory: "4 GiB", eff_mem: 0.6}
      - {name: e3, device: {peak_flops: "50 GFLOP/s", mem_bw: "20 GB/s", memory: "4 GiB"}}
      - {name: ap, switch: true}
    links:
      - {a: laptop, b: ap, bandwidth: "400 Mbit/s", latency: "2 ms", technology: wifi5}
      - {a: jetson, b: ap, bandwidth: "100 Mbit/s", bandwidth_ba: "50 Mbit/s", latency: "3 ms"}
      - {a: e3, b: ap, technology: wifi4}          # figures from the link table
      - {a: laptop, b: jetson, latency: "1 ms",
         bandwidth: {points: [["0 s", "100 Mbit/s"], ["5 s", "20 Mbit/s"]], loop: "10 s"}}

``bandwidth`` is the a -> b direction, ``bandwidth_ba`` the b -> a direction (default: the
same). A bandwidth may be a piecewise-constant series of ``[time, rate]`` points, repeating
every ``loop`` when given. GraphML carries the same keys as node, edge and graph attributes
(edge source = a, target = b). Every quantity needs a unit.

A link whose ``technology`` is Wi-Fi (``wifi4``, ``wifi5``, ``wifi6``) takes, unless it gives
a ``bandwidth``, the TCP goodput of a station alone at the technology's typical PHY
(``data/wifi_phy.csv``; ``mcs: N`` picks another modulation and coding scheme), see
:mod:`testbed.cluster.wifi`. **Media** (shared channels, :mod:`testbed.cluster.medium`)::

    media:
      - {name: bss, access_point: ap}                 # every Wi-Fi link of ap, both ways
      - {name: bss2, access_point: ap2, stations: [phone, pi5]}
      - {name: mesh, links: [[a, b], [b, c]], preamble: "40 us", contention: "150 us"}

A Wi-Fi medium's per-transmission times come from the 802.11 standards; a generic one
(``links``) gives its own (default 0).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from xml.etree import ElementTree

from testbed import config_values as cv
from testbed.cluster.device import DeviceSpec
from testbed.cluster.device_config import device_from_config
from testbed.cluster import wifi
from testbed.cluster.link_catalog import get_link_technology, line_rate_goodput_factor
from testbed.cluster.medium import MediumSpec
from testbed.cluster.topology import LinkSpec, Topology
from testbed.cluster.yaml_reader import read_yaml
from testbed.errors import ConfigError, bad_value
from testbed.traces.series import Series
from testbed.units import parse_bitrate, parse_time

TOP_KEYS = ("name", "controller", "nodes", "links", "media")
LINK_KEYS = ("a", "b", "bandwidth", "bandwidth_ba", "latency", "technology", "mcs")
MEDIUM_KEYS = ("name", "access_point", "stations", "links", "preamble", "contention")
SERIES_KEYS = ("points", "loop")


def load_topology(path: str | Path) -> Topology:
    """Read a topology file; every problem is a one-line ConfigError naming file and field."""
    source = str(path)
    suffix = Path(path).suffix.lower()
    if suffix in (".yaml", ".yml"):
        data = read_yaml(path)
    elif suffix == ".graphml":
        data = read_graphml(path)
    else:
        raise ConfigError(f"got file type {suffix or '(none)'!r}; expected .yaml, .yml or "
                          ".graphml", source=source)
    return topology_from_config(data, source=source, default_name=Path(path).stem)


def topology_from_config(data: object, *, source: str, default_name: str) -> Topology:
    """A Topology from the parsed contents of a topology file."""
    data = cv.mapping(data, source=source, field=None, what="a topology with nodes and links")
    cv.check_keys(data, TOP_KEYS, source=source, field=None, required=("nodes",))
    name = cv.name(data.get("name", default_name), source=source, field="name")
    controller = data.get("controller")
    if controller is not None:
        controller = cv.name(controller, source=source, field="controller")
    nodes = _nodes(data["nodes"], source)
    links = _links([] if data.get("links") is None else data["links"], nodes, source)
    media = _media(data.get("media") or [], links, source)
    return Topology(nodes, links, name=name, controller=controller, source=source,
                    media=media)


def _nodes(entries: object, source: str) -> list:
    """Nodes in file order: a DeviceSpec per compute node, a name per switch."""
    if not isinstance(entries, list) or not entries:
        raise bad_value(entries, "a non-empty list of nodes", source=source, field="nodes")
    nodes: list[DeviceSpec | str] = []
    index: dict[str, int] = {}
    for i, entry in enumerate(entries):
        field = f"nodes[{i}]"
        entry = cv.mapping(entry, source=source, field=field, what="a node")
        switch = entry.get("switch", False)
        if not isinstance(switch, bool):
            raise bad_value(switch, "true or false", source=source, field=f"{field}.switch")
        node: DeviceSpec | str
        if switch:
            cv.check_keys(entry, ("name", "switch"), source=source, field=field,
                          required=("name",))
            node = name = cv.name(entry["name"], source=source, field=f"{field}.name")
        else:
            node = device_from_config(entry, source=source, field=field, extra_keys=("switch",))
            name = node.name
        if name in index:
            raise ConfigError(f"got duplicate node name {name!r} (also nodes[{index[name]}])",
                              source=source, field=f"{field}.name", value=name)
        index[name] = i
        nodes.append(node)
    return nodes


def _links(entries: object, nodes: list, source: str) -> list[LinkSpec]:
    """Both directions of every link, in file order."""
    if not isinstance(entries, list):
        raise bad_value(entries, "a list of links", source=source, field="links")
    names = [node if isinstance(node, str) else node.name for node in nodes]
    seen: dict[frozenset, int] = {}
    links: list[LinkSpec] = []
    for i, entry in enumerate(entries):
        field = f"links[{i}]"
        entry = cv.mapping(entry, source=source, field=field, what="a link")
        cv.check_keys(entry, LINK_KEYS, source=source, field=field, required=("a", "b"))
        a, b = (cv.name(entry[end], source=source, field=f"{field}.{end}") for end in "ab")
        for end, node in (("a", a), ("b", b)):
            if node not in names:
                raise ConfigError(f"got unknown node {node!r}; expected one of "
                                  f"{', '.join(names)}", source=source, field=f"{field}.{end}",
                                  value=node)
        if a == b:
            raise ConfigError(f"got a self-loop on {a!r}; expected two different nodes",
                              source=source, field=field, value=a)
        pair = frozenset((a, b))
        if pair in seen:
            raise ConfigError(f"got a second link between {a!r} and {b!r} (also "
                              f"links[{seen[pair]}])", source=source, field=field)
        seen[pair] = i
        links.extend(_link_directions(entry, a, b, source=source, field=field))
    return links


def _link_directions(entry: dict, a: str, b: str, *, source: str,
                     field: str) -> tuple[LinkSpec, LinkSpec]:
    """The a -> b and b -> a LinkSpecs of one link entry."""
    technology = entry.get("technology", "")
    defaults = None
    if technology:
        cv.name(technology, source=source, field=f"{field}.technology")
        try:
            defaults = get_link_technology(technology)
        except ConfigError as error:
            raise cv.relocate(error, source=source, field=f"{field}.technology") from None
    for key in ("bandwidth", "latency"):
        if key not in entry and defaults is None:
            raise ConfigError(f"missing; give a {key} or a technology from the link table",
                              source=source, field=f"{field}.{key}")
    if "latency" in entry:
        latency_s = cv.quantity(parse_time, entry["latency"], source=source,
                                field=f"{field}.latency", what="latency", allow_zero=True)
    else:
        assert defaults is not None   # a technology's (checked above)
        latency_s = defaults["latency_s"]
    if "mcs" in entry and not wifi.is_wifi(technology):
        raise ConfigError(f"got an mcs on a {technology or 'plain'} link; expected it on a "
                          "Wi-Fi technology link only", source=source, field=f"{field}.mcs")
    phy = _wifi_phy(technology, entry.get("mcs"), source=source, field=field) \
        if wifi.is_wifi(technology) else None
    if "bandwidth" in entry:
        ab = _capacity(entry["bandwidth"], source=source, field=f"{field}.bandwidth")
    elif phy is not None:
        ab = (wifi.tcp_goodput_bps(phy), None)
    else:
        assert defaults is not None   # a technology's (checked above)
        ab = (defaults["capacity_bps"], None)
    ba = ab
    if "bandwidth_ba" in entry:
        ba = _capacity(entry["bandwidth_ba"], source=source, field=f"{field}.bandwidth_ba")
    # a rate given here is a line rate; the table's figures are throughputs already
    factor = line_rate_goodput_factor(technology) if "bandwidth" in entry else 1.0
    return (LinkSpec(a, b, ab[0], latency_s, ab[1], technology, phy, factor),
            LinkSpec(b, a, ba[0], latency_s, ba[1], technology, phy, factor))


def _wifi_phy(technology: str, mcs: object, *, source: str, field: str) -> wifi.WifiPhy:
    """The technology's typical station PHY (at another MCS if given)."""
    phy = wifi.default_phy(technology)
    if mcs is not None:
        if not isinstance(mcs, int) or isinstance(mcs, bool):
            raise bad_value(mcs, "an MCS index (integer)", source=source, field=f"{field}.mcs")
        try:
            phy = dataclasses.replace(phy, mcs=mcs)
        except ConfigError as error:
            raise cv.relocate(error, source=source, field=f"{field}.mcs") from None
    return phy


def _media(entries: object, links: list[LinkSpec], source: str) -> list[MediumSpec]:
    """The media a topology file declares (module docstring)."""
    if not isinstance(entries, list):
        raise bad_value(entries, "a list of media", source=source, field="media")
    keys = {link.key: link for link in links}
    media = []
    for i, entry in enumerate(entries):
        field = f"media[{i}]"
        entry = cv.mapping(entry, source=source, field=field, what="a medium")
        cv.check_keys(entry, MEDIUM_KEYS, source=source, field=field, required=("name",))
        name = cv.name(entry["name"], source=source, field=f"{field}.name")
        if ("access_point" in entry) == ("links" in entry):
            raise ConfigError("expected either an access_point (a Wi-Fi BSS) or links (a "
                              "generic channel)", source=source, field=field)
        if "access_point" in entry:
            media.append(_bss(entry, name, keys, source=source, field=field))
            continue
        pairs = entry["links"]
        if not isinstance(pairs, list) or not pairs:
            raise bad_value(pairs, "a non-empty list of [a, b] links", source=source,
                            field=f"{field}.links")
        members = set()
        for k, pair in enumerate(pairs):
            if (not isinstance(pair, list) or len(pair) != 2 or
                    (pair[0], pair[1]) not in keys):
                raise bad_value(pair, "[a, b] naming a link of the topology", source=source,
                                field=f"{field}.links[{k}]")
            members |= {(pair[0], pair[1]), (pair[1], pair[0])}
        times = {key: cv.quantity(parse_time, entry[key], source=source,
                                  field=f"{field}.{key}", what=key, allow_zero=True)
                 for key in ("preamble", "contention") if key in entry}
        media.append(MediumSpec(name, frozenset(members), times.get("preamble", 0.0),
                                times.get("contention", 0.0)))
    return media


def _bss(entry: dict, name: str, keys: dict, *, source: str, field: str) -> MediumSpec:
    """A Wi-Fi BSS: the access point's Wi-Fi links (to ``stations`` if given)."""
    ap = cv.name(entry["access_point"], source=source, field=f"{field}.access_point")
    for key in ("preamble", "contention"):
        if key in entry:
            raise ConfigError(f"a Wi-Fi medium takes its {key} from the 802.11 standard; "
                              "give it only with links", source=source, field=f"{field}.{key}")
    radio = {b: link.technology for (a, b), link in keys.items()
             if a == ap and wifi.is_wifi(link.technology)}
    if not radio:
        raise ConfigError(f"access point {ap!r} has no Wi-Fi link (technology wifi4, wifi5 "
                          "or wifi6)", source=source, field=f"{field}.access_point", value=ap)
    stations = entry.get("stations", list(radio))
    if not isinstance(stations, list) or not stations:
        raise bad_value(stations, "a non-empty list of stations", source=source,
                        field=f"{field}.stations")
    for k, station in enumerate(stations):
        if station not in radio:
            raise ConfigError(f"got {station!r}, which has no Wi-Fi link to {ap!r}; expected "
                              f"one of {', '.join(radio)}", source=source,
                              field=f"{field}.stations[{k}]", value=station)
    members = frozenset({(ap, s) for s in stations} | {(s, ap) for s in stations})
    technologies = sorted({radio[s] for s in stations})
    phys = [keys[(s, ap)].wifi for s in stations]
    preamble = max(phy.preamble_s for phy in phys)
    txop = min(wifi.txop_payload_bytes(phy) for phy in phys)
    return MediumSpec(name, members, preamble, wifi.contention_s(), "+".join(technologies),
                      ap, txop, wifi.MSS_BYTES, wifi.relay_s())


def _capacity(value: object, *, source: str, field: str) -> tuple[float, Series | None]:
    """(nominal capacity in bit/s, series or None) from a rate or ``{points, loop}``.

    For a series the nominal capacity is its peak value.
    """
    if not isinstance(value, dict):
        return cv.quantity(parse_bitrate, value, source=source, field=field,
                           what="bandwidth"), None
    cv.check_keys(value, SERIES_KEYS, source=source, field=field, required=("points",))
    series = cv.point_series(
        value, lambda v, where: cv.quantity(parse_bitrate, v, source=source, field=where,
                                            what="bandwidth", allow_zero=True),
        source=source, field=field, unit="bit/s", example="['5 s', '20 Mbit/s']",
        value_name="rate")
    rates = series.values
    if max(rates) <= 0:
        raise bad_value(value, "a series with some capacity > 0", source=source, field=field)
    return max(rates), series


# ----- GraphML -------------------------------------------------------------------------------

def read_graphml(path: str | Path) -> dict:
    """A GraphML file as the same mapping a YAML topology file gives, in file order."""
    source = str(path)
    try:
        root = ElementTree.parse(path).getroot()
    except FileNotFoundError:
        raise ConfigError("file not found", source=source) from None
    except ElementTree.ParseError as error:
        line, _ = error.position
        raise ConfigError(f"GraphML syntax error: {error}", source=source,
                          field=f"line {line}") from None
    keys = {}  # key id -> (attribute name, type)
    for key in _children(root, "key"):
        keys[key.get("id")] = (key.get("attr.name") or key.get("id"), key.get("attr.type"))
    graphs = _children(root, "graph")
    if len(graphs) != 1:
        raise ConfigError(f"got {len(graphs)} <graph> elements; expected one", source=source)
    graph = graphs[0]
    data = _data(graph, keys)
    data["nodes"] = [{**_data(node, keys), "name": node.get("id")}
                     for node in _children(graph, "node")]
    data["links"] = [{**_data(edge, keys), "a": edge.get("source"), "b": edge.get("target")}
                     for edge in _children(graph, "edge")]
    return data


def _children(element: ElementTree.Element, tag: str) -> list[ElementTree.Element]:
    return [child for child in element if child.tag.rsplit("}", 1)[-1] == tag]


def _data(element: ElementTree.Element, keys: dict) -> dict:
    """The ``<data>`` values of one element, converted by their declared types."""
    values: dict[str, bool | float | str] = {}
    for item in _children(element, "data"):
        name, kind = keys.get(item.get("key"), (item.get("key"), "string"))
        text = (item.text or "").strip()
        if kind == "boolean" or (name == "switch" and text.lower() in ("true", "false")):
            values[name] = text.lower() in ("true", "1")
        elif kind in ("int", "long", "float", "double"):
            values[name] = _number(text)
        else:
            values[name] = text
    return values



def _number(text: str) -> float | str:
    """A typed numeric attribute; left as text when it is not a number (reported later)."""
    try:
        return float(text)
    except ValueError:
        return text
