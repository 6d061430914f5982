"""Malformed input through ``testbed run``: exit status 2 and one line on stderr,
``testbed: error: <file>: <field>: ...``, no traceback, and nothing deleted from an
existing results folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field as dc_field
from pathlib import Path

import pytest

# A small valid scenario; every case below breaks one thing in it (or in a file it uses).
BASE = """\
name: bad-input
seed: 1
model: {name: gpt2-small, overrides: {n_layers: 2}}
topology: {file: line_4.yaml}
workload: {prompt_tokens: 16, generate_tokens: 4, decision_interval: 1}
partitioners: [single_device]
"""
MODEL = "{name: gpt2-small, overrides: {n_layers: 2}}"
TOPOLOGY = "{file: line_4.yaml}"
PAIR_TOPOLOGY = """\
name: pair
nodes:
  - {name: a, device: raspberry-pi-5-8gb}
  - {name: b, device: jetson-orin-nano-8gb}
links:
  - {a: a, b: b, bandwidth: "1 Gbit/s", latency: "1 ms"}
"""
TINY_HF = {"model_type": "gpt2", "n_layer": 2, "n_embd": 128, "n_head": 4, "vocab_size": 1000,
           "n_positions": 256}


@dataclass
class Case:
    id: str
    scenario: str | None               # scenario text (None: the file is not written)
    field: str                         # what follows "<file>: " in the message
    culprit: str = "scenario.yaml"     # the file the message must name
    files: dict[str, str] = dc_field(default_factory=dict)   # other files beside the scenario
    args: tuple[str, ...] = ()


def with_links(link: str) -> str:
    return BASE + f"links: [{link}]\n"


def with_topology(text: str) -> tuple[str, dict[str, str]]:
    return BASE.replace(TOPOLOGY, "{file: topo.yaml}"), {"topo.yaml": text}


def fixed(placement: str) -> str:
    return BASE.replace("[single_device]", f"[{{name: fixed, placement: {placement}}}]")


def topology_case(id: str, text: str, field: str) -> Case:
    scenario, files = with_topology(text)
    return Case(id, scenario, field, culprit="topo.yaml", files=files)


CASES = [
    # bandwidths
    Case("bandwidth-string-without-unit",
         with_links("{a: mac-mini, b: jetson-nx, bandwidth: '100'}"), "links[0].bandwidth"),
    Case("bandwidth-bare-number",
         with_links("{a: mac-mini, b: jetson-nx, bandwidth: 100}"), "links[0].bandwidth"),
    Case("bandwidth-negative",
         with_links("{a: mac-mini, b: jetson-nx, bandwidth: '-5 Mbit/s'}"), "links[0].bandwidth"),
    Case("bandwidth-zero",
         with_links("{a: mac-mini, b: jetson-nx, bandwidth: '0 Mbit/s'}"), "links[0].bandwidth"),
    Case("bandwidth-series-decreasing-times",
         with_links("{a: mac-mini, b: jetson-nx, bandwidth: {points: [['2 s', '10 Mbit/s'], "
                    "['1 s', '20 Mbit/s']]}}"), "links[0].bandwidth"),
    Case("link-override-not-in-topology",
         with_links("{a: mac-mini, b: pi5, bandwidth: '10 Mbit/s'}"), "links[0]"),
    topology_case("topology-bandwidth-bare-number",
                  PAIR_TOPOLOGY.replace('"1 Gbit/s"', "1000"), "links[0].bandwidth"),
    Case("generator-bandwidth-without-unit",
         BASE.replace(TOPOLOGY, "{generator: full_mesh, devices: [{name: a, device: "
                      "raspberry-pi-5-8gb}, {name: b, device: raspberry-pi-5-8gb}], "
                      "bandwidth: '1000', latency: '1 ms'}"), "topology.bandwidth"),
    # models
    Case("unknown-model", BASE.replace(MODEL, "gpt5-huge"), "model"),
    Case("unknown-model-name", BASE.replace(MODEL, "{name: nosuchmodel}"), "model.name"),
    Case("unknown-model-override", BASE.replace("n_layers: 2", "n_layerz: 2"),
         "model.overrides.n_layerz"),
    Case("hf-config-missing-field", BASE.replace(MODEL, "{hf_config: hf/config.json}"),
         "num_hidden_layers", culprit="hf/config.json",
         files={"hf/config.json": json.dumps({k: v for k, v in TINY_HF.items()
                                              if k != "n_layer"})}),
    Case("hf-config-not-json", BASE.replace(MODEL, "{hf_config: hf}"), "got invalid JSON",
         culprit="hf/config.json", files={"hf/config.json": "model_type: gpt2\n"}),
    Case("hf-config-not-a-path", BASE.replace(MODEL, "{hf_config: 5}"), "model.hf_config"),
    Case("context-exceeded", BASE.replace("prompt_tokens: 16", "prompt_tokens: 1021"),
         "workload"),
    # topologies
    topology_case("unknown-device-type",
                  PAIR_TOPOLOGY.replace("raspberry-pi-5-8gb", "nosuch-board"), "nodes[0].device"),
    Case("generator-unknown-device-type",
         BASE.replace(TOPOLOGY, "{generator: full_mesh, devices: [{name: a, device: nosuch}], "
                      "bandwidth: '1 Gbit/s', latency: '1 ms'}"), "topology.devices[0].device"),
    topology_case("disconnected-topology",
                  PAIR_TOPOLOGY.replace("nodes:\n", "nodes:\n  - {name: c, device: "
                                        "raspberry-pi-5-8gb}\n"), "links"),
    topology_case("link-to-unknown-node",
                  PAIR_TOPOLOGY.replace("{a: a, b: b,", "{a: a, b: zz,"), "links[0].b"),
    topology_case("negative-latency",
                  PAIR_TOPOLOGY.replace('"1 ms"', '"-1 ms"'), "links[0].latency"),
    Case("topology-file-missing", BASE.replace(TOPOLOGY, "{file: nosuch_topology.yaml}"),
         "topology.file"),
    # partitioners
    Case("fixed-placement-unknown-device", fixed("{'*': nosuchdevice}"),
         "partitioners[0].placement.*"),
    Case("fixed-placement-on-switch",
         fixed("{'*': ap}").replace(TOPOLOGY, "{file: star_wifi.yaml}"),
         "partitioners[0].placement.*"),
    Case("fixed-placement-on-controller", fixed("{'*': pi5, 'L1': mac-mini}"),
         "partitioners[0].placement.L1"),
    Case("fixed-placement-leaves-blocks-unplaced", fixed("{'L0': pi5}"),
         "partitioners[0].placement"),
    Case("unknown-partitioner", BASE.replace("[single_device]", "[nosuchpartitioner]"),
         "partitioners[0]"),
    Case("duplicate-partitioner", BASE.replace("[single_device]", "[round_robin, round_robin]"),
         "partitioners[1]"),
    # scenario file
    Case("non-numeric-field", BASE.replace("prompt_tokens: 16", "prompt_tokens: many"),
         "workload.prompt_tokens"),
    Case("decision-interval-zero", BASE.replace("decision_interval: 1", "decision_interval: 0"),
         "workload.decision_interval"),
    Case("empty-file", "", "file is empty"),
    Case("yaml-syntax-error", "name: x\nmodel: [gpt2-small\n", "line 3: YAML syntax error"),
    Case("repeated-key", BASE + "seed: 2\n", "line 7: YAML syntax error"),
    Case("not-a-mapping", "- gpt2-small\n- line_4.yaml\n", "got ['gpt2-small'"),
    Case("unknown-top-level-key", BASE + "bogus: 1\n", "bogus"),
    Case("missing-model", BASE.replace(f"model: {MODEL}\n", ""), "model"),
    Case("unknown-cost-preset", BASE + "cost: nosuchcost\n", "cost"),
    Case("bad-cost-parameter", BASE + "cost: {preset: paper, ffn_flop_factor: -1}\n",
         "cost.ffn_flop_factor"),
    Case("bad-migration-mode", BASE + "migration: {mode: teleport}\n", "migration.mode"),
    Case("unknown-controller-device", BASE + "controller: {device: nosuchdevice}\n",
         "controller.device"),
    Case("quick-without-quick-section", BASE, "quick", args=("--quick",)),
    Case("negative-seed-option", BASE, "seed", args=("--seed", "-1")),
    Case("scenario-file-missing", None, "file not found"),
]


def run_cli(*args: object, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "testbed.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


def assert_one_line_error(proc: subprocess.CompletedProcess, culprit: Path, field: str,
                          cwd: Path | None = None) -> str:
    """One line ``testbed: error: <culprit>: <field>...``; the culprit file may be named by
    its absolute path or, when found relative to the working folder ``cwd``, as such."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith("testbed: error: "), line
    assert culprit.name in line, line
    names = [str(culprit)] + ([os.path.relpath(culprit, cwd)] if cwd is not None else [])
    assert any(line.startswith(f"testbed: error: {name}: {field}") for name in names), line
    return line


def test_at_least_twenty_cases():
    assert len(CASES) >= 20
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_one_line_exit_2(case: Case, tmp_path: Path):
    scenario = tmp_path / "scenario.yaml"
    if case.scenario is not None:
        scenario.write_text(case.scenario, encoding="utf-8")
    for name, text in case.files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious\n", encoding="utf-8")

    work = tmp_path / "cwd"
    work.mkdir()
    # --force: the folder may be replaced, but only by a complete run, so the bad input
    # must leave it as it was
    proc = run_cli("run", scenario, "--out", out, "--force", *case.args, cwd=work)
    assert_one_line_error(proc, tmp_path / case.culprit, case.field)
    # the existing results folder is left alone: nothing deleted, nothing half-written
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert (out / "keep.txt").read_text(encoding="utf-8") == "precious\n"


def test_the_base_scenario_itself_runs(tmp_path: Path):
    """Guard for the cases above: they fail because of what they change, not the base."""
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(BASE, encoding="utf-8")
    proc = run_cli("run", scenario, "--out", tmp_path / "out", "--no-figures", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


@pytest.mark.parametrize("text", [
    PAIR_TOPOLOGY.replace("raspberry-pi-5-8gb", "nosuch-board"),
    PAIR_TOPOLOGY.replace('"1 Gbit/s"', '"0 Gbit/s"'),
], ids=["topology-unknown-device", "topology-zero-bandwidth"])
def test_topology_errors_name_the_topology_file(text: str, tmp_path: Path):
    (tmp_path / "topo.yaml").write_text(text, encoding="utf-8")
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(BASE.replace(TOPOLOGY, "{file: topo.yaml}"), encoding="utf-8")
    proc = run_cli("run", scenario, cwd=tmp_path)
    line = assert_one_line_error(proc, tmp_path / "topo.yaml", "", cwd=tmp_path)
    assert "scenario.yaml" not in line
    assert not (tmp_path / "results").exists()


def test_out_naming_an_existing_file_is_a_one_line_error(tmp_path: Path):
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(BASE, encoding="utf-8")
    out = tmp_path / "out"
    out.write_text("not a folder\n", encoding="utf-8")
    proc = run_cli("run", scenario, "--out", out, "--no-figures", cwd=tmp_path)
    assert_one_line_error(proc, out, "--out")
    assert out.read_text(encoding="utf-8") == "not a folder\n"


def test_bad_seed_option_is_an_argparse_usage_error(tmp_path: Path):
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(BASE, encoding="utf-8")
    proc = run_cli("run", scenario, "--seed", "many", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "--seed" in proc.stderr
