"""``testbed graph``: the task graph of one token's pass, as JSON or as a figure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.errors import ConfigError
from testbed.experiments.graph_figure import graph_at_step, plot_graph
from testbed.experiments.scenario import load_scenario
from testbed.plan.graph import COMPUTE, TRANSFER

REPO = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

SMALL = """\
name: graph-small
seed: 3
model: {name: gpt2-small, overrides: {n_layers: 2}}
topology:
  generator: full_mesh
  devices: [{name: ctl, device: apple-m2-mac-mini}, {name: a, device: jetson-orin-nano-8gb},
            {name: b, device: raspberry-pi-5-8gb}, {name: c, device: jetson-orin-nx-16gb}]
  bandwidth: 100 Mbit/s
  latency: 2 ms
workload: {prompt_tokens: 16, generate_tokens: 4, decision_interval: 2}
controller: {device: ctl, hosts_blocks: false}
partitioners: [round_robin, single_device]
"""


def root_sync(devices: int, dataflow: str = "root_sync", partitioner: str = "slices") -> str:
    """distributed-llama's set-up: the model cut into one slice per device, the root (the
    controller) holding slice 0 and every sync going through it."""
    names = ["root"] + [f"w{k}" for k in range(1, devices)]
    listed = ", ".join(f"{{name: {n}, device: raspberry-pi-5-8gb}}" for n in names)
    shards = f"proj_shards: {devices}, ffn_shards: {devices}"
    return f"""\
name: graph-root-sync
seed: 1
model: {{name: gpt2-small, overrides: {{n_layers: 2, {shards}}}}}
topology: {{generator: full_mesh, devices: [{listed}], bandwidth: 1 Gbit/s, latency: 1 ms}}
workload: {{prompt_tokens: 16, generate_tokens: 3, decision_interval: 1}}
controller: {{device: root, hosts_blocks: true}}
dataflow: {dataflow}
partitioners: [{partitioner}]
"""


def run_cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "testbed.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("testbed: error: ")
    return lines[0]


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL, encoding="utf-8")
    return path


# ----- JSON -----------------------------------------------------------------------------------

def test_json_has_one_node_per_task_in_topological_order(small, tmp_path):
    out = tmp_path / "g.json"
    proc = run_cli("graph", small, "--step", 3, "--out", out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text(encoding="utf-8"))
    graph, placement, label = graph_at_step(load_scenario(small), 3)
    t = graph.template
    assert (doc["partitioner"], doc["step"], doc["dataflow"]) == ("round_robin", 3, "head_level")
    assert label == "round_robin" and doc["phase"] == "decode"
    nodes = doc["nodes"]
    assert [n["id"] for n in nodes] == list(range(len(t)))
    assert all(d < n["id"] for n in nodes for d in n["deps"])
    assert [n["deps"] for n in nodes] == [list(d) for d in t.deps]
    compute = [n for n in nodes if n["op"] == COMPUTE]
    transfers = [n for n in nodes if n["op"] == TRANSFER]
    assert len(compute) == t.op.count(COMPUTE) > 0
    assert len(transfers) == t.op.count(TRANSFER) > 0
    assert len(compute) + len(transfers) == len(nodes)
    # round robin spreads the blocks: every device that computes hosts blocks
    assert {n["device"] for n in compute} - {"ctl"} <= set(placement.devices)
    assert sum(n["size_bytes"] for n in transfers) == \
        pytest.approx(graph.totals()["transfer_bytes"])
    # the command says what it wrote, and sums the graph up on one line
    assert str(out) in proc.stdout
    assert (f"{len(nodes)} tasks: {len(compute)} compute, {len(transfers)} transfers"
            in proc.stdout)
    assert f"in {sum(n['messages'] for n in transfers)} messages" in proc.stdout


def test_json_step_1_is_the_prefill_and_partitioner_is_chosen_by_label(small, tmp_path):
    out = tmp_path / "g.json"
    proc = run_cli("graph", small, "--step", 1, "--partitioner", "single_device", "--out", out,
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert (doc["partitioner"], doc["step"], doc["phase"]) == ("single_device", 1, "prefill")
    compute = {n["device"] for n in doc["nodes"] if n["op"] == COMPUTE}
    assert len(compute - {"ctl"}) == 1   # one device runs every block


@pytest.mark.parametrize("devices", [2, 3])
def test_root_sync_transfers_all_go_to_or_from_the_root(tmp_path, devices):
    scenario = tmp_path / "rs.yaml"
    scenario.write_text(root_sync(devices), encoding="utf-8")
    out = tmp_path / "rs.json"
    proc = run_cli("graph", scenario, "--step", 2, "--out", out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["dataflow"] == "root_sync" and doc["controller"] == "root"
    transfers = [n for n in doc["nodes"] if n["op"] == TRANSFER]
    assert transfers
    assert all("root" in (n["src"], n["dst"]) for n in transfers), \
        [(n["src"], n["dst"]) for n in transfers if "root" not in (n["src"], n["dst"])]
    workers = {f"w{k}" for k in range(1, devices)}
    assert {n["dst"] for n in transfers if n["src"] == "root"} == workers
    assert {n["src"] for n in transfers if n["dst"] == "root"} == workers


def test_the_same_devices_under_head_level_send_between_workers(tmp_path):
    """The root_sync check above is not vacuous: with three devices another dataflow does
    send from worker to worker."""
    scenario = tmp_path / "hl.yaml"
    scenario.write_text(root_sync(3, dataflow="head_level", partitioner="round_robin"),
                        encoding="utf-8")
    graph, _, _ = graph_at_step(load_scenario(scenario), 2)
    t = graph.template
    assert any(op == TRANSFER and "root" not in (t.device[i], t.dst[i])
               for i, op in enumerate(t.op))


# ----- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize("step", [0, 5, -1])
def test_step_out_of_range_is_a_one_line_error(small, tmp_path, step):
    line = one_line_error(run_cli("graph", small, "--step", step, "--out", tmp_path / "g.json",
                                  cwd=tmp_path))
    assert "--step" in line and "1 to 4" in line
    assert not (tmp_path / "g.json").exists()


def test_unknown_partitioner_lists_the_labels(small, tmp_path):
    line = one_line_error(run_cli("graph", small, "--step", 1, "--partitioner", "round_robbin",
                                  "--out", tmp_path / "g.json", cwd=tmp_path))
    assert "--partitioner" in line and "'round_robbin'" in line
    assert "round_robin, single_device" in line


@pytest.mark.parametrize("name", ["g.txt", "g", "g.svg"])
def test_unknown_output_suffix_is_a_one_line_error(small, tmp_path, name):
    line = one_line_error(run_cli("graph", small, "--step", 1, "--out", tmp_path / name,
                                  cwd=tmp_path))
    assert "--out" in line and ".json" in line and ".png" in line


def test_a_run_that_does_not_reach_the_step_is_a_one_line_error(tmp_path):
    scenario = tmp_path / "big.yaml"
    # Llama-2-7B (12 GiB) on no device with more than 8 GB: no placement at token 1
    scenario.write_text(SMALL.replace("{name: gpt2-small, overrides: {n_layers: 2}}",
                                      "llama-2-7b").replace("round_robin, ", "")
                        .replace("jetson-orin-nx-16gb", "jetson-orin-nano-8gb"),
                        encoding="utf-8")
    line = one_line_error(run_cli("graph", scenario, "--step", 1, "--out", tmp_path / "g.json",
                                  cwd=tmp_path))
    assert "single_device" in line and "infeasible" in line


def test_graph_at_step_checks_its_arguments(small):
    scenario = load_scenario(small)
    with pytest.raises(ConfigError, match="--step"):
        graph_at_step(scenario, scenario.sim.generate_tokens + 1)
    with pytest.raises(ConfigError, match="round_robin, single_device"):
        graph_at_step(scenario, 1, "nosuch")


# ----- figure ---------------------------------------------------------------------------------

def test_png_is_written_with_a_pdf_beside_it(small, tmp_path):
    out = tmp_path / "figures" / "g.png"
    proc = run_cli("graph", small, "--step", 2, "--out", out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 10_000
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert out.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"
    assert str(out) in proc.stdout


def test_big_models_draw_only_their_first_layers(tmp_path, monkeypatch):
    """The quickstart's 16 layers: by default the figure holds layers 0 and 1 only."""
    from matplotlib.axes import Axes

    scenario = load_scenario(REPO / "experiments" / "quickstart.yaml", quick=True)
    graph, _, _ = graph_at_step(scenario, 2)
    t = graph.template
    drawn: list[str] = []
    real_text = Axes.text

    def spy(self, x, y, s, *args, **kwargs):
        drawn.append(s)
        return real_text(self, x, y, s, *args, **kwargs)

    monkeypatch.setattr(Axes, "text", spy)
    plot_graph(graph, tmp_path / "q.png", title="quickstart")
    boxes = [s for s in drawn if s.split("\n")[0] in set(t.kind)]
    first_two = [i for i, op in enumerate(t.op) if op == COMPUTE and 0 <= t.layer[i] < 2]
    assert len(boxes) == len(first_two) > 0
    assert all(s.endswith(("L0", "L1")) for s in boxes if "\n" in s)
    assert (tmp_path / "q.png").read_bytes()[:8] == PNG_MAGIC
