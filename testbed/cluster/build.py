"""Build a topology from a scenario's ``topology:`` section: a file or a generator.

``{file: home_office.yaml}``: a relative path is looked for as given, then next to the
scenario file (``source``), then in the repository's ``topologies/`` directory;
``media: false`` drops the file's shared media (every link its own wire).

``{generator: full_mesh, devices: [{name: a, device: jetson-orin-nano-8gb}, ...],
bandwidth: "1 Gbit/s", latency: "0.5 ms"}`` plus the generator's own options (e.g. ``hub``
for ``star``; ``name``, ``controller``).

``{tiered: {n_devices: 25, seed: 7}}``: a random cloud/regional/edge cluster drawn as in
the paper's prototype (:mod:`testbed.cluster.tiered`). Error fields start with
``topology.``.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from testbed._shipped import shipped_dir
from testbed import config_values as cv
from testbed.cluster.device_config import device_from_config
from testbed.cluster.generators import TOPOLOGY_GENERATORS
from testbed.cluster.topology import Topology
from testbed.cluster.topology_file import load_topology
from testbed.errors import ConfigError, bad_value
from testbed.units import parse_bitrate, parse_time

TOPOLOGIES_DIR = shipped_dir("topologies")
_GENERATOR_ARGS = ("devices", "bandwidth_bps", "latency_s")


def build_topology(spec: dict, *, source: str | Path) -> Topology:
    """The topology described by ``spec``; ``source`` is the file the spec was read from."""
    source = str(source)
    spec = cv.mapping(spec, source=source, field="topology",
                      what="{file: ...} or {generator: ..., devices: ...}")
    if "file" in spec:
        cv.check_keys(spec, ("file", "media"), source=source, field="topology")
        topology = load_topology(find_topology_file(spec["file"], source=source))
        media = spec.get("media", True)
        if not isinstance(media, bool):
            raise bad_value(media, "true (the file's shared media) or false (every link its "
                            "own wire)", source=source, field="topology.media")
        return topology if media else topology.without_media()
    if "generator" in spec:
        return _generate(spec, source)
    if "tiered" in spec:
        return _tiered(spec, source)
    raise ConfigError("missing 'file', 'generator' or 'tiered'; expected one of them",
                      source=source, field="topology")


def _tiered(spec: dict, source: str) -> Topology:
    """``{tiered: {n_devices: 25, seed: 7, memory_max: "2 GB"}}``: a random
    cloud/regional/edge cluster (``memory_max`` caps every device's memory)."""
    from testbed.cluster.tiered import tiered_topology
    from testbed.units import parse_bytes
    cv.check_keys(spec, ("tiered",), source=source, field="topology")
    options = cv.mapping(spec["tiered"], source=source, field="topology.tiered",
                         what="{n_devices, seed, memory_max}")
    cv.check_keys(options, ("n_devices", "seed", "memory_max"), source=source,
                  field="topology.tiered", required=("n_devices",))
    n = options["n_devices"]
    seed = options.get("seed", 0)
    for key, value, low in (("n_devices", n, 2), ("seed", seed, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise bad_value(value, f"an integer >= {low}", source=source,
                            field=f"topology.tiered.{key}")
    cap = None
    if "memory_max" in options:
        cap = cv.quantity(parse_bytes, options["memory_max"], source=source,
                          field="topology.tiered.memory_max", what="memory size")
    topology = tiered_topology(n, seed, memory_max_bytes=cap)
    topology.source = source
    return topology


def find_topology_file(value: object, *, source: str) -> Path:
    """The topology file ``value`` names (see the module docstring for where it looks)."""
    given = Path(cv.name(value, source=source, field="topology.file"))
    candidates = [given]
    if not given.is_absolute():
        if not source.startswith("<"):
            candidates.append(Path(source).parent / given)
        candidates.append(TOPOLOGIES_DIR / given)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(candidate) for candidate in candidates)
    raise bad_value(value, f"an existing topology file (looked at {looked})", source=source,
                    field="topology.file")


def _generate(spec: dict, source: str) -> Topology:
    generator = TOPOLOGY_GENERATORS.get(spec["generator"], source=source,
                                        field="topology.generator")
    options = [p for p in inspect.signature(generator).parameters if p not in _GENERATOR_ARGS]
    cv.check_keys(spec, ("generator", "devices", "bandwidth", "latency", *options),
                  source=source, field="topology", required=("devices", "bandwidth", "latency"))
    entries = spec["devices"]
    if not isinstance(entries, list) or not entries:
        raise bad_value(entries, "a non-empty list of devices", source=source,
                        field="topology.devices")
    devices = [device_from_config(entry, source=source, field=f"topology.devices[{i}]")
               for i, entry in enumerate(entries)]
    bandwidth_bps = cv.quantity(parse_bitrate, spec["bandwidth"], source=source,
                                field="topology.bandwidth", what="bandwidth")
    latency_s = cv.quantity(parse_time, spec["latency"], source=source,
                            field="topology.latency", what="latency", allow_zero=True)
    kwargs = {key: cv.name(spec[key], source=source, field=f"topology.{key}")
              for key in options if key in spec}
    if "technology" in kwargs:
        from testbed.cluster.link_catalog import get_link_technology
        try:
            get_link_technology(kwargs["technology"])
        except ConfigError as error:
            raise cv.relocate(error, source=source, field="topology.technology") from None
    try:
        topology = generator(devices, bandwidth_bps, latency_s, **kwargs)
    except ConfigError as error:
        field = f"topology.{error.field}" if error.field else "topology"
        raise cv.relocate(error, source=source, field=field) from None
    topology.source = source
    return topology
