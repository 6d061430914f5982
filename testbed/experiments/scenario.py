"""Scenario files: what to run (model, cluster, links, workload, partitioners, seed).

A scenario is a YAML mapping::

    name: quickstart
    seed: 1
    model: llama-3.2-1b                 # catalog name, {name, overrides} or {hf_config: path}
    cost: decode                        # or paper, or {preset: paper, ffn_flop_factor: 0.8}
    topology: {file: home_office.yaml}  # or {generator: full_mesh, devices: [...], ...}
    links:                              # optional: capacity series on some links
      - {a: ap, b: jetson,
         bandwidth: {points: [["0 s", "300 Mbit/s"], ["2 s", "40 Mbit/s"]], loop: "4 s"}}
    workload: {prompt_tokens: 128, generate_tokens: 64, decision_interval: 1}
    migration: {mode: blocking, weights_preloaded: false}
    controller: {device: laptop, hosts_blocks: false}
    partitioners: [single_device, round_robin,
                   {name: fixed, placement: ..., dataflow: layer_pipeline}]
    dataflow: head_level                # how placements run (default for every partitioner)
    network: {goodput_factor: technology, message_costs: none}
    # message_costs: none, catalog, or {send, recv, per_link}
    # goodput_factor: technology (default: 1448/1538 of a line rate given for an Ethernet
    #   link, 1 for the rest, whose rates are throughputs already) or one number for all
    # network.transport: TCP round trips, off by default (testbed.sim.transport):
    #   {connections: persistent, initial_window: 10, mss: "1448 B", handshake: true,
    #    idle_restart: "200 ms", warm_up: "64 KiB", rto_min: "200 ms"}
    # network.packets: true adds per-packet effects (store-and-forward, a sender's order)
    # network.latency_scale: 0.1 multiplies every link's latency (sensitivity studies)
    requests: {arrivals: poisson, rate_per_s: 2, count: 50}   # many users (optional;
    batching: {max_batch: 16, prefill: separate}              #  testbed.experiments.
    slo: {ttft: "2 s", tpot: "200 ms"}                        #  requests_section)
    quick: {workload: {generate_tokens: 8}}   # overrides applied by --quick

Every error names the file and the field. :func:`load_scenario` returns a
:class:`Scenario` whose ``resolved`` dict is the file with every default filled in; it is
written beside the results.
"""

from __future__ import annotations

import copy
import functools
import math
import dataclasses
from dataclasses import dataclass
from pathlib import Path

from testbed.cluster import build_topology
from testbed.cluster.build import TOPOLOGIES_DIR, find_topology_file
from testbed import config_values as cv
from testbed.cluster.topology import Topology
from testbed.cluster.link_catalog import line_rate_goodput_factor
from testbed.cluster.topology_file import _capacity
from testbed.cluster.yaml_reader import read_yaml
from testbed.errors import ConfigError, bad_value
from testbed.model import ModelSpec, get_cost_model, get_model, load_hf_config
from testbed.model.cost import CostModel
from testbed.cluster.message_costs import (catalog_message_costs, uniform_message_costs)
from testbed.dataflows import make_dataflow
from testbed.plan.messages import NO_MESSAGE_COSTS, MessageCosts
from testbed.units import parse_bytes, parse_time
from testbed.sim.transport import CONNECTIONS, WARM, TransportSpec
from testbed.experiments.device_dynamics import DeviceDynamics, parse_devices
from testbed.experiments.seeding import component_rng
from testbed.traces.config import trace_from_config
from testbed.traces.series import Series
from testbed.sim.engine import CACHE_RECOVERY, MIGRATION_MODES
from testbed.sim.batching import BatchingSpec
from testbed.requests import RequestSpec
from testbed.experiments.requests_section import parse_batching, parse_requests, parse_slo
from testbed.experiments.serving_metrics import Slo

TOP_KEYS = ("name", "description", "experiment", "seed", "model", "cost", "topology", "links",
            "devices", "network", "workload", "migration", "controller", "partitioners", "quick",
            "full", "notes", "dataflow", "fidelity", "ns3", "requests", "batching", "slo",
            "output")
NETWORK_KEYS = ("goodput_factor", "message_costs", "transport", "packets", "latency_scale")
TRANSPORT_KEYS = ("connections", "initial_window", "mss", "handshake", "idle_restart",
                  "warm_up", "rto_min")
MESSAGE_COST_KEYS = ("send", "recv", "per_link")
WORKLOAD_KEYS = ("prompt_tokens", "generate_tokens", "decision_interval")
MIGRATION_KEYS = ("mode", "weights_preloaded", "cache_recovery")
CONTROLLER_KEYS = ("device", "hosts_blocks")
LINK_KEYS = ("a", "b", "bandwidth", "trace", "both_directions")
DEFAULTS = {
    "seed": 0,
    "cost": "decode",
    "links": [],
    "workload": {"prompt_tokens": 128, "generate_tokens": 32, "decision_interval": 1},
    "migration": {"mode": "blocking", "weights_preloaded": False,
                  "cache_recovery": "recompute"},
    "controller": {"hosts_blocks": False},
    "network": {"goodput_factor": "technology", "message_costs": "none"},
    "partitioners": ["single_device", "round_robin"],
    "dataflow": "head_level",
}


@dataclass(frozen=True)
class Scenario:
    """A parsed scenario, ready to run (SI units throughout)."""

    name: str
    seed: int
    model: ModelSpec
    cost: CostModel
    topology: Topology
    prompt_tokens: int
    generate_tokens: int
    decision_interval: int
    migration_mode: str
    weights_preloaded: bool
    controller_hosts_blocks: bool
    partitioners: tuple
    resolved: dict
    source: str
    dynamics: DeviceDynamics = dataclasses.field(default_factory=DeviceDynamics)
    cache_recovery: str = "recompute"
    goodput_factor: float | None = None       # None: per link, from its technology
    dataflow: str | dict | None = "head_level"   # default dataflow (a name or a mapping)
    messages: MessageCosts = NO_MESSAGE_COSTS  # per-message overheads
    transport: TransportSpec = WARM            # TCP round trips (off: warm connections)
    packets: bool = False                      # per-packet effects (store-and-forward, order)
    requests: tuple[RequestSpec, ...] | None = None   # served requests (None: one sequence)
    batching: BatchingSpec = BatchingSpec()    # how they are batched
    slo: Slo = Slo()                           # TTFT and TPOT objectives
    output_tables: tuple[str, ...] | None = None   # tables written (None: all)

    def dataflow_of(self, entry: str | dict) -> str | dict | None:
        """The dataflow a partitioner entry runs under (its own, else the scenario's)."""
        if isinstance(entry, dict) and "dataflow" in entry:
            return entry["dataflow"]
        return self.dataflow


def deep_merge(base: dict, overrides: dict) -> dict:
    """``base`` with ``overrides`` applied recursively (mappings merge, the rest replaces)."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def with_setting(data: dict, *, source: str, quick: bool = False, full: bool = False) -> dict:
    """``data`` with its ``quick`` (or ``full``) section merged in, both sections dropped."""
    for flag, key in ((quick, "quick"), (full, "full")):
        if flag:
            if key not in data:
                raise ConfigError(f"--{key} given but the file has no '{key}' section",
                                  source=source, field=key)
            data = deep_merge(data, cv.mapping(data[key], source=source, field=key,
                                               what="overrides of the file's keys"))
    return {k: v for k, v in data.items() if k not in ("quick", "full")}


def load_scenario(path: str | Path, *, quick: bool = False, full: bool = False,
                  seed: int | None = None) -> Scenario:
    """Read and check a scenario file; ``quick``/``full`` apply its named overrides."""
    source = str(path)
    data = cv.mapping(read_yaml(path), source=source, field=None, what="a scenario")
    return scenario_from_dict(data, source=source, quick=quick, full=full, seed=seed)


def scenario_from_dict(data: dict, *, source: str = "<scenario>", quick: bool = False,
                       full: bool = False, seed: int | None = None) -> Scenario:
    cv.check_keys(data, TOP_KEYS, source=source, field=None,
                  required=("model", "topology"))
    data = with_setting(data, source=source, quick=quick, full=full)
    resolved = deep_merge(DEFAULTS, data)
    if seed is not None:
        resolved["seed"] = seed
    base_dir = Path(source).parent if source != "<scenario>" else Path.cwd()

    name = cv.name(resolved.get("name", Path(source).stem), source=source, field="name")
    seed_value = _integer(resolved["seed"], source, "seed", minimum=0)
    model = _model(resolved["model"], source, base_dir)
    resolved["model"] = _portable_model(resolved["model"], base_dir)
    cost = _cost(resolved["cost"], source)
    topology = _topology(resolved["topology"], source)
    resolved["topology"] = _portable_topology(resolved["topology"], source)
    topology = _links(resolved["links"], topology, source, seed_value)
    topology = topology.for_dtype(model.weight_dtype)   # calibrated devices for its kernels
    resolved["links"] = _portable_links(resolved["links"], base_dir)

    workload = cv.mapping(resolved["workload"], source=source, field="workload",
                          what="prompt_tokens, generate_tokens, decision_interval")
    cv.check_keys(workload, WORKLOAD_KEYS, source=source, field="workload")
    prompt = _integer(workload["prompt_tokens"], source, "workload.prompt_tokens")
    tokens = _integer(workload["generate_tokens"], source, "workload.generate_tokens")
    interval = _integer(workload["decision_interval"], source, "workload.decision_interval")
    if prompt + tokens > model.max_position:
        raise bad_value(prompt + tokens, f"prompt + generated tokens <= {model.name}'s "
                        f"context of {model.max_position}", source=source, field="workload")

    migration = cv.mapping(resolved["migration"], source=source, field="migration",
                           what="mode, weights_preloaded")
    cv.check_keys(migration, MIGRATION_KEYS, source=source, field="migration")
    mode = migration["mode"]
    if mode not in MIGRATION_MODES:
        raise bad_value(mode, " or ".join(MIGRATION_MODES), source=source,
                        field="migration.mode")
    preloaded = _boolean(migration["weights_preloaded"], source, "migration.weights_preloaded")
    recovery = migration["cache_recovery"]
    if recovery not in CACHE_RECOVERY:
        raise bad_value(recovery, " or ".join(CACHE_RECOVERY), source=source,
                        field="migration.cache_recovery")

    controller = cv.mapping(resolved["controller"], source=source, field="controller",
                            what="device, hosts_blocks")
    cv.check_keys(controller, CONTROLLER_KEYS, source=source, field="controller")
    hosts = _boolean(controller["hosts_blocks"], source, "controller.hosts_blocks")
    if "device" in controller:
        device = controller["device"]
        if device not in topology.devices:
            raise bad_value(device, "one of " + ", ".join(topology.devices), source=source,
                            field="controller.device")
        topology = topology.with_controller(device)
    resolved["controller"] = {**controller, "device": topology.controller}

    partitioners = resolved["partitioners"]
    if not isinstance(partitioners, list) or not partitioners:
        raise bad_value(partitioners, "a non-empty list of partitioner names or mappings",
                        source=source, field="partitioners")
    dataflow = resolved["dataflow"]
    make_dataflow(dataflow, source=source, field="dataflow")
    check_partitioners(partitioners, source, dataflow, model)
    _check_fixed_devices(partitioners, topology, hosts, source)
    dynamics = parse_devices(resolved.get("devices"), topology, seed_value, source=source)
    network = cv.mapping(resolved["network"], source=source, field="network",
                         what="{goodput_factor, message_costs}")
    cv.check_keys(network, NETWORK_KEYS, source=source, field="network")
    messages = _message_costs(network.get("message_costs", "none"), topology, source)
    goodput = network["goodput_factor"]
    if goodput == "technology":
        goodput = None
    elif isinstance(goodput, bool) or not isinstance(goodput, (int, float)) or \
            not 0 < goodput <= 1:
        raise bad_value(goodput, "technology (each link's own), or a number in (0, 1], e.g. "
                        "0.9564 for TCP over Ethernet", source=source,
                        field="network.goodput_factor")
    scale = network.get("latency_scale", 1)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not \
            (math.isfinite(scale) and scale >= 0):
        raise bad_value(scale, "a number >= 0 multiplying every link's latency (1: as given)",
                        source=source, field="network.latency_scale")
    if scale != 1:
        topology = topology.with_latency_scale(float(scale))
    transport = _transport(network.get("transport"), source)
    packets = network.get("packets", False)
    if not isinstance(packets, bool):
        raise bad_value(packets, "true or false", source=source, field="network.packets")
    requests = parse_requests(resolved.get("requests"), default_prompt=prompt,
                              default_output=tokens, model=model, seed=seed_value,
                              source=source, base_dir=base_dir)
    if requests is not None and cost.prefill_cost(model, "attn", 1) is None:
        raise ConfigError(f"serving requests needs a cost preset with a prefill pass; "
                          f"{cost.name!r} has none (use decode)", source=source, field="cost")
    entry = resolved.get("requests")
    if isinstance(entry, dict) and isinstance(entry.get("file"), str) and \
            not Path(entry["file"]).is_absolute():   # the resolved config runs from anywhere
        resolved["requests"] = {**entry, "file": str((base_dir / entry["file"]).resolve())}
    batching = parse_batching(resolved.get("batching"), source=source)
    slo = parse_slo(resolved.get("slo"), source=source)
    output_tables = _output_tables(resolved.get("output"), source)
    return Scenario(name, seed_value, model, cost, topology, prompt, tokens, interval, mode,
                    preloaded, hosts, tuple(partitioners), resolved, source, dynamics,
                    recovery, None if goodput is None else float(goodput), dataflow, messages,
                    transport, packets, requests, batching, slo, output_tables)


def _output_tables(value: object, source: str) -> tuple[str, ...] | None:
    """``output: {tables: [tokens, memory, ...]}``: the tables a results folder keeps
    (the summary, config and metadata always); None: every table."""
    from testbed.sim.records import TABLE_NAMES
    if value is None:
        return None
    entry = cv.mapping(value, source=source, field="output", what="{tables: [...]}")
    cv.check_keys(entry, ("tables",), source=source, field="output", required=("tables",))
    tables = entry["tables"]
    if not isinstance(tables, list) or not all(isinstance(t, str) for t in tables):
        raise bad_value(tables, "a list of table names", source=source,
                        field="output.tables")
    for name in tables:
        if name not in TABLE_NAMES:
            raise bad_value(name, "one of " + ", ".join(TABLE_NAMES), source=source,
                            field="output.tables")
    return tuple(tables)


def _transport(value: object, source: str) -> TransportSpec:
    """``network.transport``: TCP's round trips (testbed.sim.transport); absent: warm."""
    field = "network.transport"
    if value is None:
        return WARM
    entry = cv.mapping(value, source=source, field=field,
                       what="{connections, initial_window, mss, handshake, idle_restart, "
                            "warm_up, rto_min}")
    cv.check_keys(entry, TRANSPORT_KEYS, source=source, field=field)
    connections = entry.get("connections", "persistent")
    if connections not in CONNECTIONS:
        raise ConfigError(f"got {connections!r}; expected one of {', '.join(CONNECTIONS)}",
                          source=source, field=f"{field}.connections", value=connections)
    handshake = entry.get("handshake", True)
    if not isinstance(handshake, bool):
        raise bad_value(handshake, "true or false", source=source, field=f"{field}.handshake")

    def duration(key: str):
        if entry.get(key) in (None, "none"):
            return None
        return cv.quantity(parse_time, entry[key], source=source, field=f"{field}.{key}",
                           what="duration")
    idle = duration("idle_restart")
    return TransportSpec(
        connections=connections,
        initial_window=_integer(entry.get("initial_window", 10), source,
                                f"{field}.initial_window"),
        mss_bytes=int(cv.quantity(parse_bytes, entry.get("mss", "1448 B"), source=source,
                                  field=f"{field}.mss", what="size")),
        handshake=handshake, idle_restart_s=math.inf if idle is None else idle,
        warm_up_bytes=cv.quantity(parse_bytes, entry.get("warm_up", "0 B"), source=source,
                                  field=f"{field}.warm_up", what="size", allow_zero=True),
        rto_min_s=duration("rto_min"))


def _message_costs(value: object, topology: Topology, source: str) -> MessageCosts:
    """``none`` (default), ``catalog`` (per device type and link technology, cited), or
    ``{send, recv, per_link}`` durations for every device and link."""
    field = "network.message_costs"
    if value == "none" or value is False:
        return NO_MESSAGE_COSTS
    if value == "catalog" or value is True:
        return catalog_message_costs(topology)
    entry = cv.mapping(value, source=source, field=field,
                       what="none, catalog or {send, recv, per_link}")
    cv.check_keys(entry, MESSAGE_COST_KEYS, source=source, field=field)
    durations = [cv.quantity(parse_time, entry.get(key, "0 s"), source=source,
                             field=f"{field}.{key}", what="duration", allow_zero=True)
                 for key in MESSAGE_COST_KEYS]
    return uniform_message_costs(topology, *durations)


def _integer(value: object, source: str, field: str, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise bad_value(value, f"an integer >= {minimum}", source=source, field=field)
    return value


def _boolean(value: object, source: str, field: str) -> bool:
    if not isinstance(value, bool):
        raise bad_value(value, "true or false", source=source, field=field)
    return value


def _model(value: object, source: str, base_dir: Path) -> ModelSpec:
    if isinstance(value, str):
        return get_model(value, source=source, field="model")
    entry = cv.mapping(value, source=source, field="model",
                       what="a catalog name, {name, overrides} or {hf_config: path}")
    cv.check_keys(entry, ("name", "hf_config", "overrides"), source=source, field="model")
    if "hf_config" in entry:
        if not isinstance(entry["hf_config"], str) or not entry["hf_config"].strip():
            raise bad_value(entry["hf_config"], "a path to a Hugging Face config.json or its "
                            "folder", source=source, field="model.hf_config")
        path = Path(entry["hf_config"])
        model = load_hf_config(path if path.is_absolute() else base_dir / path)
    elif "name" in entry:
        model = get_model(entry["name"], source=source, field="model.name")
    else:
        raise ConfigError("missing; give 'name' (catalog) or 'hf_config' (a path)",
                          source=source, field="model.name")
    overrides = entry.get("overrides") or {}
    cv.mapping(overrides, source=source, field="model.overrides", what="ModelSpec fields")
    try:
        return model.with_overrides(**overrides)
    except ConfigError as error:
        raise error.located(source, "model.overrides") from None


def _cost(value: object, source: str) -> CostModel:
    if isinstance(value, str):
        name, params = value, {}
    else:
        entry = cv.mapping(value, source=source, field="cost", what="a preset name or "
                           "{preset: name, ...parameters}")
        if "preset" not in entry:
            raise ConfigError("missing; this key is required", source=source,
                              field="cost.preset")
        name, params = entry["preset"], {k: v for k, v in entry.items() if k != "preset"}
    try:
        return get_cost_model(name, **params)
    except ConfigError as error:
        if error.field == "cost" or (error.field or "").startswith("cost."):
            raise error.located(source) from None
        raise error.located(source, "cost") from None


def _topology(value: object, source: str) -> Topology:
    if isinstance(value, str):
        value = {"file": value}
    spec = cv.mapping(value, source=source, field="topology",
                      what="{file: path} or {generator: ...}")
    return build_topology(spec, source=source)


def _portable_model(value: object, base_dir: Path) -> object:
    """The model entry with a relative ``hf_config`` made absolute, so that the resolved
    config written beside the results loads from any folder."""
    if isinstance(value, dict) and isinstance(value.get("hf_config"), str):
        path = Path(value["hf_config"])
        if not path.is_absolute():
            return {**value, "hf_config": str((base_dir / path).resolve())}
    return value


def _portable_topology(value: object, source: str) -> object:
    """The topology entry with its file made absolute unless it is one of the repository's
    ``topologies/`` (looked up there by name from anywhere)."""
    spec = {"file": value} if isinstance(value, str) else value
    if not isinstance(spec, dict) or "file" not in spec:
        return value
    path = find_topology_file(spec["file"], source=source).resolve()
    if path == (TOPOLOGIES_DIR / str(spec["file"])).resolve():
        return spec
    return {**spec, "file": str(path)}


def _links(entries: object, topology: Topology, source: str, seed: int) -> Topology:
    """Attach capacity series (a ``bandwidth`` series or constant, or a ``trace``) to link
    directions."""
    if not isinstance(entries, list):
        raise bad_value(entries, "a list of {a, b, bandwidth}", source=source, field="links")
    for i, entry in enumerate(entries):
        field = f"links[{i}]"
        entry = cv.mapping(entry, source=source, field=field, what="{a, b, bandwidth}")
        cv.check_keys(entry, LINK_KEYS, source=source, field=field, required=("a", "b"))
        if ("bandwidth" in entry) == ("trace" in entry):
            raise bad_value(sorted(entry), "exactly one of 'bandwidth' or 'trace'",
                            source=source, field=field)
        a, b = entry["a"], entry["b"]
        if (a, b) not in topology.links:
            raise ConfigError(f"got link {a!r} -> {b!r}, which the topology does not have",
                              source=source, field=field, value=(a, b))
        factor = 1.0                        # a measured trace: a throughput already
        capacity: float | None = None
        series: Series | None
        if "trace" in entry:
            series = trace_from_config(
                entry["trace"], source=source, field=f"{field}.trace",
                base_dir=Path(source).parent if not source.startswith("<") else Path.cwd(),
                rng_for=functools.partial(component_rng, seed, "trace", field))
        else:
            capacity, series = _capacity(entry["bandwidth"], source=source,
                                         field=f"{field}.bandwidth")
            factor = line_rate_goodput_factor(topology.links[(a, b)].technology)
        both = _boolean(entry.get("both_directions", False), source,
                        f"{field}.both_directions")
        for src, dst in ((a, b), (b, a)) if both else ((a, b),):
            if series is not None:
                topology = topology.with_link_series(src, dst, series, factor)
            else:
                assert capacity is not None   # a constant bandwidth
                topology = topology.with_link_capacity(src, dst, capacity, factor)
    return topology


def _portable_links(entries: object, base_dir: Path) -> object:
    """Link entries with relative trace files made absolute when they were found next to
    the scenario, so that the resolved config re-runs from its results folder."""
    if not isinstance(entries, list):
        return entries
    out = copy.deepcopy(entries)
    for entry in out:
        trace = entry.get("trace") if isinstance(entry, dict) else None
        if isinstance(trace, dict) and isinstance(trace.get("file"), str):
            path = Path(trace["file"])
            if not path.is_absolute() and (base_dir / path).exists():
                trace["file"] = str((base_dir / path).resolve())
    return out


def check_partitioners(entries: list, source: str, default_dataflow: object = None,
                        model: ModelSpec | None = None) -> None:
    from testbed.partition import make_partitioner
    seen = set()
    for i, spec in enumerate(entries):
        field = f"partitioners[{i}]"
        partitioner = make_partitioner(partitioner_spec(spec), seed=0, source=source,
                                       field=field)
        flow = spec.get("dataflow", default_dataflow) if isinstance(spec, dict) \
            else default_dataflow
        dataflow = make_dataflow(flow, source=source,
                                 field=f"{field}.dataflow" if isinstance(spec, dict)
                                 and "dataflow" in spec else "dataflow")
        supported = getattr(partitioner, "dataflows", None)
        if supported is not None and dataflow.name not in supported:
            raise ConfigError(f"got dataflow {dataflow.name!r} for partitioner "
                              f"{partitioner.name!r}, whose delay estimates follow "
                              f"{', '.join(supported)}; expected one of those",
                              source=source, field=field, value=dataflow.name)
        if model is not None and (model.proj_shards > 1 or model.ffn_shards > 1) and \
                not getattr(partitioner, "places_shards", True):
            raise ConfigError(f"partitioner {partitioner.name!r} places whole proj and ffn "
                              f"blocks; got a model cut into {model.proj_shards} proj and "
                              f"{model.ffn_shards} ffn shards (set them to 1, or use another "
                              "partitioner)", source=source, field=field)
        label = partitioner_label(spec)
        if label in seen:
            raise ConfigError(f"got {label!r} twice; give each a distinct 'label'",
                              source=source, field=f"partitioners[{i}]")
        seen.add(label)
        del partitioner


def _check_fixed_devices(entries: list, topology: Topology, hosts_blocks: bool,
                         source: str) -> None:
    """The devices a ``fixed`` placement names must be able to host blocks: caught here
    rather than at the first decision, so the error names the scenario file."""
    allowed = topology.hosts(hosts_blocks)
    for i, spec in enumerate(entries):
        if not (isinstance(spec, dict) and spec.get("name") == "fixed"
                and isinstance(spec.get("placement"), dict)):
            continue
        for pattern, device in spec["placement"].items():
            if device in allowed:
                continue
            field = f"partitioners[{i}].placement.{pattern}"
            if device == topology.controller:
                raise ConfigError(
                    f"got the controller {device!r}, which hosts no blocks while "
                    f"controller.hosts_blocks is false; expected one of {', '.join(allowed)}",
                    source=source, field=field, value=device)
            raise bad_value(device, "a device of the topology: one of " + ", ".join(allowed),
                            source=source, field=field)


def partitioner_label(spec: str | dict) -> str:
    """How a partitioner entry is named in the results (its ``label`` or ``name``)."""
    if isinstance(spec, str):
        return spec
    return str(spec.get("label", spec.get("name")))


def partitioner_spec(spec: str | dict) -> str | dict:
    """The entry without its ``label`` and ``dataflow`` keys (what
    :func:`make_partitioner` takes)."""
    if isinstance(spec, dict):
        return {k: v for k, v in spec.items() if k not in ("label", "dataflow")}
    return spec
