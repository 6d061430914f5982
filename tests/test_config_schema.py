"""The typed scenario schema: one declaration per key gives its key, default, check, docs
and the engine setting it feeds."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from testbed import config_schema as cs
from testbed.errors import ConfigError
from testbed.experiments.scenario import scenario_from_dict
from testbed.experiments.scenario_schema import ScenarioFile
from testbed.sim.engine import SimConfig
from testbed.sim.transport import WARM, TransportSpec

MINIMAL = {"model": "gpt2-small", "topology": {"file": "home_office.yaml"}}
#: SimConfig fields a scenario sets from more than one key (the topology with its links,
#: controller and latency scale; message costs with the topology; requests with the
#: workload; device dynamics with the topology and seed) ...
ASSEMBLED = {"topology", "messages", "requests", "avail_compute", "avail_mem",
             "memory_taken", "failures"}
#: ... and the engine's own knobs, which no scenario key sets.
ENGINE_ONLY = {"record_jobs", "per_block", "fast_path"}


@dataclasses.dataclass(frozen=True)
class Link:
    rate_bps: float = cs.setting("10 Mbit/s", lambda v, s, f: 1e7 if v == "10 Mbit/s" else
                                 cs.number(above=0)(v, s, f), "rate", key="rate")
    name: str = cs.setting(cs.REQUIRED, cs.raw, "its name")


@dataclasses.dataclass(frozen=True)
class Outer:
    seed: int = cs.setting(0, cs.integer(0), "seed", sim="seed_value")
    link: Link = cs.setting({"name": "x"}, cs.section(Link), "a link")


def test_every_simconfig_field_is_declared_assembled_or_an_engine_knob():
    """A new engine setting fails this test until a scenario key feeds it."""
    file = cs.parse_section(ScenarioFile, dict(MINIMAL), source="<test>", field=None)
    declared = set(cs.sim_settings(file))
    fields = {f.name for f in dataclasses.fields(SimConfig)}
    assert declared, "the schema declares no engine setting"
    assert declared <= fields, declared - fields
    assert fields == declared | ASSEMBLED | ENGINE_ONLY, \
        fields ^ (declared | ASSEMBLED | ENGINE_ONLY)


def test_a_scenario_without_optional_keys_runs_with_the_declared_defaults():
    sim = scenario_from_dict(dict(MINIMAL)).sim
    file = cs.parse_section(ScenarioFile, dict(MINIMAL), source="<test>", field=None)
    for name, value in cs.sim_settings(file).items():
        if name not in ("model", "cost"):            # no equality of their own
            assert getattr(sim, name) == value, name
    assert sim.cost.name == file.cost.name == "decode"
    assert (sim.prompt_tokens, sim.generate_tokens, sim.decision_interval) == (128, 32, 1)
    assert sim.transport == WARM and sim.migration_mode == "blocking"


def test_a_given_key_reaches_the_engine():
    sim = scenario_from_dict({**MINIMAL, "workload": {"decision_interval": 4},
                              "migration": {"mode": "live"},
                              "batching": {"prefill": "chunked"},
                              "network": {"transport": {"mss": "9000 B"}}}).sim
    assert sim.decision_interval == 4 and sim.generate_tokens == 32
    assert sim.migration_mode == "live"
    assert sim.batching.prefill == "chunked" and sim.batching.max_batch == 16
    assert sim.transport == TransportSpec(mss_bytes=9000)      # a given section: persistent


def test_the_resolved_config_holds_every_default_as_a_file_writes_it():
    resolved = scenario_from_dict(dict(MINIMAL)).resolved
    assert resolved["workload"] == {"prompt_tokens": 128, "generate_tokens": 32,
                                    "decision_interval": 1}
    assert resolved["slo"] == {"ttft": "2 s", "tpot": "200 ms"}
    assert "transport" not in resolved["network"] and "requests" not in resolved
    again = scenario_from_dict(resolved, source="<resolved>")
    assert again.sim.batching == scenario_from_dict(dict(MINIMAL)).sim.batching


def test_sections_read_keys_aliases_defaults_and_nested_sections():
    parsed = cs.parse_section(Outer, {"link": {"rate": 5e6, "name": "y"}}, source="f.yaml",
                              field=None)
    assert parsed == Outer(seed=0, link=Link(rate_bps=5e6, name="y"))
    assert cs.keys(Link) == ("rate", "name")
    assert cs.defaults_of(Outer) == {"seed": 0, "link": {"name": "x"}}
    assert Outer().link == Link(rate_bps=1e7, name="x")       # the typed default: parsed
    assert cs.sim_settings(parsed) == {"seed_value": 0}
    assert [row[0] for row in cs.describe(Outer)] == ["seed", "link", "link.rate",
                                                      "link.name"]


@pytest.mark.parametrize("value, field, message", [
    ({"sed": 1}, "sed", "unknown key 'sed'; expected one of seed, link"),
    ({"seed": -1}, "seed", "got -1; expected an integer >= 0"),
    ({"seed": True}, "seed", "expected an integer >= 0"),
    ({"link": {"rate": 1}}, "link.name", "missing; this key is required"),
    ({"link": {"name": "y", "rate": 0}}, "link.rate", "got 0; expected a number"),
    ({"link": 3}, "link", "got 3; expected a mapping (keys rate, name)"),
    ([1], None, "expected a mapping (keys seed, link)"),
])
def test_bad_values_are_one_line_errors_naming_the_dotted_field(value, field, message):
    with pytest.raises(ConfigError) as caught:
        cs.parse_section(Outer, value, source="f.yaml", field=None)
    assert caught.value.source == "f.yaml" and caught.value.field == field
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("key, value, field", [
    ("workload", {"decision_interval": 0}, "workload.decision_interval"),
    ("migration", {"mode": "teleport"}, "migration.mode"),
    ("network", {"transport": {"mss": 1448}}, "network.transport.mss"),
    ("network", {"latency_scale": -1}, "network.latency_scale"),
    ("batching", {"max_batch": "many"}, "batching.max_batch"),
    ("slo", {"ttft": 2}, "slo.ttft"),
    ("output", {"tables": ["tokenz"]}, "output.tables"),
])
def test_scenario_keys_are_checked_by_their_declarations(key, value, field):
    with pytest.raises(ConfigError) as caught:
        scenario_from_dict({**MINIMAL, key: value}, source="s.yaml")
    assert (caught.value.source, caught.value.field) == ("s.yaml", field)


def test_testbed_settings_lists_every_key_with_its_default():
    proc = subprocess.run([sys.executable, "-m", "testbed.cli", "settings"],
                          capture_output=True, text=True, check=True)
    lines = proc.stdout.splitlines()
    keys = [line.split()[0] for line in lines[1:]]
    assert keys == [row[0] for row in cs.describe(ScenarioFile)]
    assert "workload.decision_interval" in keys and "network.transport.rto_min" in keys
    row = next(line for line in lines if line.startswith("slo.tpot "))
    assert row.split()[1:3] == ["200", "ms"]
    one = subprocess.run([sys.executable, "-m", "testbed.cli", "settings", "migrate"],
                         capture_output=True, text=True)
    assert one.returncode == 2 and one.stderr.count("\n") == 1 and "migrate" in one.stderr


GAP = {"experiment": "optimality_gap", "settings": [{"n_devices": 3, "model": "paper-small"}]}


@pytest.mark.parametrize("key, value, field", [
    ("cluster", {"compute_sigma": -1}, "cluster.compute_sigma"),
    ("cluster", {"latency": 1}, "cluster.latency"),
    ("cluster", {"bandwith_max": "1 Gbit/s"}, "cluster.bandwith_max"),
    ("settings", [{"n_devices": 0, "model": "paper-small"}], "settings[0].n_devices"),
    ("presets", ["paper", "papr"], "presets[1]"),
    ("exact", {"time_limit": 10}, "exact.time_limit"),
    ("steps", 0, "steps"),
])
def test_an_optimality_gap_file_is_read_by_the_same_schema(key, value, field):
    from testbed.experiments.optimality_gap import load_gap_spec
    with pytest.raises(ConfigError) as caught:
        load_gap_spec({**GAP, key: value}, source="e1.yaml")
    assert (caught.value.source, caught.value.field) == ("e1.yaml", field)


def test_an_optimality_gap_cluster_is_typed_with_units_in_its_names():
    from testbed.experiments.optimality_gap import load_gap_spec
    spec = load_gap_spec({**GAP, "cluster": {"bandwidth_max": "40 Gbit/s"}}, source="e1.yaml")
    assert spec.cluster.bandwidth_max_bps == 40e9 and spec.cluster.latency_s == 1e-3
    given = load_gap_spec({**GAP, "cluster": {"latency": "5 ms", "memory_sigma": 0.2}},
                          source="e1.yaml").cluster
    assert (given.latency_s, given.memory_sigma) == (5e-3, 0.2)
    assert spec.cluster.memory_median_bytes == 8e9 and spec.exact_time_limit_s == 10.0
    assert spec.resolved["cluster"]["bandwidth_max"] == "40 Gbit/s"
    assert spec.resolved["cluster"]["compute_median"] == "50 GFLOP/s"
