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

Every key, its default and its meaning is declared once, in
:mod:`testbed.experiments.scenario_schema` (``testbed settings`` lists them). Every error
names the file and the field. :func:`load_scenario` returns a :class:`Scenario` whose
``resolved`` dict is the file with every default filled in; it is written beside the
results.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from pathlib import Path

from testbed import config_schema as cs
from testbed import config_values as cv
from testbed.cluster.build import TOPOLOGIES_DIR, find_topology_file
from testbed.cluster.link_catalog import line_rate_goodput_factor
from testbed.cluster.message_costs import catalog_message_costs, uniform_message_costs
from testbed.cluster.topology import Topology
from testbed.cluster.topology_file import _capacity
from testbed.cluster.yaml_reader import read_yaml
from testbed.dataflows import Dataflow, make_dataflow
from testbed.errors import ConfigError, bad_value
from testbed.experiments.device_dynamics import parse_devices
from testbed.experiments.requests_section import parse_requests
from testbed.experiments.scenario_schema import ScenarioFile, base_dir
from testbed.experiments.seeding import component_rng
from testbed.experiments.serving_metrics import Slo
from testbed.model import ModelSpec
from testbed.plan.messages import NO_MESSAGE_COSTS, MessageCosts
from testbed.sim.engine import SimConfig
from testbed.traces.config import trace_from_config
from testbed.traces.series import Series

LINK_KEYS = ("a", "b", "bandwidth", "trace", "both_directions")


@dataclass(frozen=True)
class Scenario:
    """A parsed scenario, ready to run (SI units throughout): ``sim`` is the engine's
    configuration (its ``dataflow`` the scenario's default; see :meth:`dataflow_of`)."""

    name: str
    seed: int
    sim: SimConfig
    partitioners: tuple
    resolved: dict
    source: str
    slo: Slo = Slo()                           # TTFT and TPOT objectives
    output_tables: tuple[str, ...] | None = None   # tables written (None: all)

    def dataflow_of(self, entry: str | dict) -> str | dict | None:
        """The dataflow a partitioner entry runs under (its own, else the scenario's)."""
        if isinstance(entry, dict) and "dataflow" in entry:
            return entry["dataflow"]
        flow = self.sim.dataflow
        assert not isinstance(flow, Dataflow)    # a scenario keeps it as written
        return flow


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
    """Read a scenario's mapping (its keys: :class:`ScenarioFile`); the keys that need
    another key's value are checked here."""
    cv.check_keys(data, cs.keys(ScenarioFile), source=source, field=None,
                  required=("model", "topology"))
    data = with_setting(data, source=source, quick=quick, full=full)
    resolved = deep_merge(cs.defaults_of(ScenarioFile), data)
    if seed is not None:
        resolved["seed"] = seed
    file: ScenarioFile = cs.parse_section(ScenarioFile, resolved, source=source, field=None)
    model = file.model
    name = file.name or cv.name(Path(source).stem, source=source, field="name")
    resolved["model"] = _portable_model(resolved["model"], base_dir(source))
    resolved["topology"] = _portable_topology(resolved["topology"], source)
    topology = _links(file.links, file.topology, source, file.seed)
    topology = topology.for_dtype(model.weight_dtype)   # calibrated devices for its kernels
    resolved["links"] = _portable_links(resolved["links"], base_dir(source))

    workload = file.workload
    if workload.prompt_tokens + workload.generate_tokens > model.max_position:
        raise bad_value(workload.prompt_tokens + workload.generate_tokens,
                        f"prompt + generated tokens <= {model.name}'s context of "
                        f"{model.max_position}", source=source, field="workload")
    device = file.controller.device
    if device is not None:
        if device not in topology.devices:
            raise bad_value(device, "one of " + ", ".join(topology.devices), source=source,
                            field="controller.device")
        topology = topology.with_controller(device)
    resolved["controller"] = {**resolved["controller"], "device": topology.controller}

    partitioners = list(file.partitioners)
    check_partitioners(partitioners, source, file.dataflow, model)
    _check_fixed_devices(partitioners, topology, file.controller.hosts_blocks, source)
    dynamics = parse_devices(file.devices, topology, file.seed, source=source)
    messages = _message_costs(file.network.message_costs, topology)
    if file.network.latency_scale != 1:
        topology = topology.with_latency_scale(file.network.latency_scale)
    requests = parse_requests(file.requests, default_prompt=workload.prompt_tokens,
                              default_output=workload.generate_tokens, model=model,
                              seed=file.seed, source=source, base_dir=base_dir(source))
    if requests is not None and file.cost.prefill_cost(model, "attn", 1) is None:
        raise ConfigError(f"serving requests needs a cost preset with a prefill pass; "
                          f"{file.cost.name!r} has none (use decode)", source=source,
                          field="cost")
    entry = resolved.get("requests")
    if isinstance(entry, dict) and isinstance(entry.get("file"), str) and \
            not Path(entry["file"]).is_absolute():   # the resolved config runs from anywhere
        resolved["requests"] = {**entry,
                                "file": str((base_dir(source) / entry["file"]).resolve())}
    sim = SimConfig(**cs.sim_settings(file), topology=topology, messages=messages,
                    requests=requests, avail_compute=dynamics.avail, avail_mem=dynamics.avail,
                    memory_taken=dynamics.memory_taken, failures=dynamics.failures)
    return Scenario(name, file.seed, sim, tuple(partitioners), resolved, source, file.slo,
                    file.output.tables)


def _message_costs(spec: str | tuple, topology: Topology) -> MessageCosts:
    """``network.message_costs`` as read (none, catalog or three durations) for
    ``topology``."""
    if spec == "none":
        return NO_MESSAGE_COSTS
    if spec == "catalog":
        return catalog_message_costs(topology)
    return uniform_message_costs(topology, *spec)


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


def _links(entries: tuple, topology: Topology, source: str, seed: int) -> Topology:
    """Attach capacity series (a ``bandwidth`` series or constant, or a ``trace``) to link
    directions."""
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
                base_dir=base_dir(source),
                rng_for=functools.partial(component_rng, seed, "trace", field))
        else:
            capacity, series = _capacity(entry["bandwidth"], source=source,
                                         field=f"{field}.bandwidth")
            factor = line_rate_goodput_factor(topology.links[(a, b)].technology)
        both = cs.boolean(entry.get("both_directions", False), source,
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
