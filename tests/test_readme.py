"""The README's code runs as written."""

import re
from pathlib import Path

from testbed.cluster import TOPOLOGY_GENERATORS, make_device
from testbed.model import get_cost_model, get_model
from testbed.partition import PARTITIONERS
from testbed.sim import SimConfig, Simulation

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_partitioner_example_registers_and_runs():
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    namespace: dict = {}
    if "first_fit" not in PARTITIONERS:
        exec(compile(code, str(README), "exec"), namespace)
    partitioner = PARTITIONERS.get("first_fit")(seed=0)
    devices = [make_device("ctl", "apple-m2-mac-mini"), make_device("a", "jetson-orin-nano-8gb"),
               make_device("b", "jetson-orin-nx-16gb")]
    topology = TOPOLOGY_GENERATORS.get("full_mesh")(devices, 1e9, 1e-3)
    config = SimConfig(model=get_model("gpt2-small"), cost=get_cost_model("decode"),
                       topology=topology, prompt_tokens=8, generate_tokens=3)
    records = Simulation(config, partitioner).run()
    assert records.outcome == "ok" and len(records.tokens) == 3
    # first fit fills the first candidate (the controller hosts nothing by default)
    assert {s.device for s in records.memory if s.used_bytes > 0} >= {"a"}


def test_readme_python_run_example_runs_as_written(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    code = next(block for block in blocks if "run_file(" in block)
    monkeypatch.chdir(tmp_path)                       # its results folder is relative
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    result = namespace["result"]
    assert result.status == 0 and (tmp_path / "results" / "q" / "DONE").is_file()
    assert capsys.readouterr().out.strip() == result.report.strip()
