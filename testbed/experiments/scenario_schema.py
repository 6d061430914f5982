"""The keys of a scenario file: one typed declaration per key (:mod:`testbed.config_schema`).

Each key's default, check and one-line documentation is declared once, here (or on the
engine's own spec for ``batching`` and ``network.transport``); ``testbed settings`` lists
them, :func:`testbed.experiments.scenario.scenario_from_dict` reads a file with them, and
the keys declared with ``sim=`` become the engine's :class:`~testbed.sim.engine.SimConfig`
without further code. Keys whose meaning needs another key (links and controller need the
topology, partitioners the model, requests the workload) are read here as given and checked
where the scenario is assembled.

Adding an engine setting: a field of ``SimConfig`` and one ``setting(..., sim=...)`` line in
the section it belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from testbed import config_schema as cs
from testbed import config_values as cv
from testbed.cluster import build_topology
from testbed.cluster.topology import Topology
from testbed.dataflows import make_dataflow
from testbed.errors import ConfigError, bad_value
from testbed.experiments.serving_metrics import Slo
from testbed.model import ModelSpec, get_cost_model, get_model, load_hf_config
from testbed.model.cost import CostModel
from testbed.sim.batching import BatchingSpec
from testbed.sim.engine import CACHE_RECOVERY, MIGRATION_MODES
from testbed.sim.transport import WARM, TransportSpec
from testbed.units import parse_time

MESSAGE_COST_KEYS = ("send", "recv", "per_link")


def base_dir(source: str) -> Path:
    """The folder relative paths in the file ``source`` start from."""
    return Path.cwd() if source.startswith("<") else Path(source).parent


# --- parsers of single keys --------------------------------------------------------------

def _model(value: object, source: str, field: str) -> ModelSpec:
    if isinstance(value, str):
        return get_model(value, source=source, field=field)
    entry = cv.mapping(value, source=source, field=field,
                       what="a catalog name, {name, overrides} or {hf_config: path}")
    cv.check_keys(entry, ("name", "hf_config", "overrides"), source=source, field=field)
    if "hf_config" in entry:
        if not isinstance(entry["hf_config"], str) or not entry["hf_config"].strip():
            raise bad_value(entry["hf_config"], "a path to a Hugging Face config.json or its "
                            "folder", source=source, field=f"{field}.hf_config")
        path = Path(entry["hf_config"])
        model = load_hf_config(path if path.is_absolute() else base_dir(source) / path)
    elif "name" in entry:
        model = get_model(entry["name"], source=source, field=f"{field}.name")
    else:
        raise ConfigError("missing; give 'name' (catalog) or 'hf_config' (a path)",
                          source=source, field=f"{field}.name")
    overrides = entry.get("overrides") or {}
    cv.mapping(overrides, source=source, field=f"{field}.overrides", what="ModelSpec fields")
    try:
        return model.with_overrides(**overrides)
    except ConfigError as error:
        raise error.located(source, f"{field}.overrides") from None


def _cost(value: object, source: str, field: str) -> CostModel:
    if isinstance(value, str):
        name, params = value, {}
    else:
        entry = cv.mapping(value, source=source, field=field, what="a preset name or "
                           "{preset: name, ...parameters}")
        if "preset" not in entry:
            raise ConfigError("missing; this key is required", source=source,
                              field=f"{field}.preset")
        name, params = entry["preset"], {k: v for k, v in entry.items() if k != "preset"}
    try:
        return get_cost_model(name, **params)
    except ConfigError as error:
        if error.field == field or (error.field or "").startswith(f"{field}."):
            raise error.located(source) from None
        raise error.located(source, field) from None


def _topology(value: object, source: str, field: str) -> Topology:
    if isinstance(value, str):
        value = {"file": value}
    spec = cv.mapping(value, source=source, field=field,
                      what="{file: path} or {generator: ...}")
    return build_topology(spec, source=source)


def _name(value: object, source: str, field: str) -> str | None:
    return cs.name_or_none(value, source, field)


def _list(what: str):
    def parse(value: object, source: str, field: str) -> tuple:
        if not isinstance(value, (list, tuple)):
            raise bad_value(value, what, source=source, field=field)
        return tuple(value)
    return parse


def _partitioners(value: object, source: str, field: str) -> tuple:
    if not isinstance(value, (list, tuple)) or not value:
        raise bad_value(value, "a non-empty list of partitioner names or mappings",
                        source=source, field=field)
    return tuple(value)


def _dataflow(value: object, source: str, field: str) -> str | dict:
    make_dataflow(value, source=source, field=field)   # a name or a mapping, checked
    assert isinstance(value, (str, dict))
    return value


def _goodput(value: object, source: str, field: str) -> float | None:
    if value == "technology":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise bad_value(value, "technology (each link's own), or a number in (0, 1], e.g. "
                        "0.9564 for TCP over Ethernet", source=source, field=field)
    return float(value)


def _message_costs(value: object, source: str, field: str) -> str | tuple[float, ...]:
    """``"none"``, ``"catalog"`` or the (send, recv, per_link) durations in seconds; the
    topology turns it into :class:`~testbed.plan.messages.MessageCosts`."""
    if value == "none" or value is False:
        return "none"
    if value == "catalog" or value is True:
        return "catalog"
    entry = cv.mapping(value, source=source, field=field,
                       what="none, catalog or {send, recv, per_link}")
    cv.check_keys(entry, MESSAGE_COST_KEYS, source=source, field=field)
    return tuple(cv.quantity(parse_time, entry.get(key, "0 s"), source=source,
                             field=f"{field}.{key}", what="duration", allow_zero=True)
                 for key in MESSAGE_COST_KEYS)


def _transport(value: object, source: str, field: str) -> TransportSpec:
    if value is None or isinstance(value, TransportSpec):
        return value or WARM
    return cs.parse_section(TransportSpec, value, source=source, field=field)


def _tables(value: object, source: str, field: str) -> tuple[str, ...] | None:
    from testbed.sim.records import TABLE_NAMES
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise bad_value(value, "a list of table names", source=source, field=field)
    for name in value:
        if name not in TABLE_NAMES:
            raise bad_value(name, "one of " + ", ".join(TABLE_NAMES), source=source,
                            field=field)
    return tuple(value)


# --- sections ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Workload:
    prompt_tokens: int = cs.setting(128, cs.integer(1), "prompt length (tokens); the "
                                    "prefill pass reads it at once", sim="prompt_tokens")
    generate_tokens: int = cs.setting(32, cs.integer(1), "tokens generated after the prompt",
                                      sim="generate_tokens")
    decision_interval: int = cs.setting(1, cs.integer(1), "tokens between two decisions of "
                                        "the partitioner", sim="decision_interval")


@dataclass(frozen=True)
class Migration:
    mode: str = cs.setting("blocking", cs.one_of(MIGRATION_MODES),
                           "blocking (generation waits for the moves: the paper's "
                           "accounting) or live (the old copy serves until the switch)",
                           sim="migration_mode")
    weights_preloaded: bool = cs.setting(False, cs.boolean, "every device holds every "
                                         "block's weights: migrations move K/V caches only",
                                         sim="weights_preloaded")
    cache_recovery: str = cs.setting("recompute", cs.one_of(CACHE_RECOVERY),
                                     "K/V caches lost with a failed device: recompute them, "
                                     "or resend the controller's replicas",
                                     sim="cache_recovery")


@dataclass(frozen=True)
class Controller:
    device: str | None = cs.setting(None, _name, "the device that issues requests and holds "
                                    "the embedding and LM head (default: the topology's)")
    hosts_blocks: bool = cs.setting(False, cs.boolean, "the controller may host blocks too",
                                    sim="controller_hosts_blocks")


@dataclass(frozen=True)
class Network:
    goodput_factor: float | None = cs.setting(
        "technology", _goodput, "payload share of link rates: technology (1448/1538 for a "
        "line rate given for Ethernet, 1 for measured throughputs) or one number for all",
        sim="goodput_factor")
    message_costs: str | tuple = cs.setting(
        "none", _message_costs, "per-message software overheads: none, catalog (per "
        "device type and link technology) or {send, recv, per_link} durations")
    transport: TransportSpec = cs.setting(
        None, _transport, "TCP round trips (slow start, handshakes, retransmission timer); "
        "absent: none", sim="transport")
    packets: bool = cs.setting(False, cs.boolean, "per-packet effects (store-and-forward, "
                               "a sender's order)", sim="packets")
    latency_scale: float = cs.setting(1, cs.number(minimum=0, what="a number >= 0 "
                                      "multiplying every link's latency (1: as given)"),
                                      "multiplies every link's latency (sensitivity studies)")


@dataclass(frozen=True)
class Output:
    tables: tuple[str, ...] | None = cs.setting(None, _tables, "tables a results folder "
                                                "keeps (default: all; the summary, config "
                                                "and metadata always)")


@dataclass(frozen=True, kw_only=True)
class ScenarioFile:
    """Every top-level key of a scenario file."""

    name: str | None = cs.setting(None, _name, "the run's name (default: the file's name)")
    description: object = cs.setting(None, cs.raw, "free text")
    notes: object = cs.setting(None, cs.raw, "free text")
    experiment: object = cs.setting(None, cs.raw, "what testbed run does with the file: "
                                    "simulate (default), sweep, optimality_gap, regret, "
                                    "fidelity")
    seed: int = cs.setting(0, cs.integer(0), "the one seed every random stream is drawn "
                           "from")
    model: ModelSpec = cs.setting(cs.REQUIRED, _model, "catalog name (testbed models), "
                                  "{name, overrides} or {hf_config: path}", sim="model")
    cost: CostModel = cs.setting("decode", _cost, "cost model: decode (K/V-cached, with a "
                                 "prefill) or paper, or {preset, ...parameters}", sim="cost")
    topology: Topology = cs.setting(cs.REQUIRED, _topology, "{file: path} (or a file in "
                                    "topologies/) or {generator: name, ...}")
    links: tuple = cs.setting([], _list("a list of {a, b, bandwidth} or {a, b, trace}"),
                              "capacity series or traces on some link directions")
    devices: object = cs.setting(None, cs.raw, "per device (or '*'): background load, "
                                 "memory taken by others, failures")
    network: Network = cs.subsection(Network, "how links carry messages")
    workload: Workload = cs.subsection(Workload, "one sequence: prompt, tokens, decisions")
    migration: Migration = cs.subsection(Migration, "how re-decided blocks move")
    controller: Controller = cs.subsection(Controller, "the device that decides")
    partitioners: tuple = cs.setting(["single_device", "round_robin"], _partitioners,
                                     "partitioners compared (testbed partitioners): names "
                                     "or {name, label, dataflow, ...options}")
    dataflow: str | dict = cs.setting("head_level", _dataflow, "how a placement runs, for "
                                      "every partitioner without its own", sim="dataflow")
    requests: object = cs.setting(None, cs.raw, "many users: {arrivals: poisson|trace|list, "
                                  "...} (absent: one sequence)")
    batching: BatchingSpec = cs.subsection(BatchingSpec, "how requests are batched",
                                           sim="batching")
    slo: Slo = cs.subsection(Slo, "service-level objectives of served requests")
    output: Output = cs.subsection(Output, "what the results folder keeps")
    fidelity: object = cs.setting(None, cs.raw, "a fidelity experiment's published table")
    ns3: object = cs.setting(None, cs.raw, "options of testbed validate ns3")
    quick: object = cs.setting(None, cs.raw, "overrides of any keys applied by --quick")
    full: object = cs.setting(None, cs.raw, "overrides of any keys applied by --full")
