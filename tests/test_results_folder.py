"""Results folders are written whole or not at all, never over another without --force,
and say how the run went (outcome, exception, versions, commit)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.errors import ConfigError
from testbed.experiments import kinds
from testbed.experiments.results import overall_outcome, results_folder

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "experiments" / "quickstart.yaml"


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "testbed.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)


def _args(out: Path) -> kinds.RunOptions:
    return kinds.RunOptions(out=out, quick=True, figures=False)


def _quickstart() -> tuple[dict, str]:
    return kinds.load_experiment(QUICKSTART)


def test_an_existing_folder_is_refused_without_force_and_replaced_with_it(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "mine.txt").write_text("not a result")
    proc = _cli("run", QUICKSTART, "--quick", "--no-figures", "--out", out)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "--force" in proc.stderr and str(out) in proc.stderr
    assert (out / "mine.txt").read_text() == "not a result"        # nothing touched
    proc = _cli("run", QUICKSTART, "--quick", "--no-figures", "--out", out, "--force")
    assert proc.returncode == 0, proc.stderr
    assert not (out / "mine.txt").exists() and (out / "DONE").is_file()
    meta = json.loads((out / "meta.json").read_text())
    assert meta["outcome"] == "ok" and set(meta["outcomes"].values()) == {"ok"}
    assert meta["versions"]["testbed"]
    if (ROOT / ".git").exists():
        assert len(meta["versions"]["testbed_commit"].split("+")[0]) == 40
    assert not list(tmp_path.glob(".run.partial-*"))


def test_an_interrupted_write_leaves_nothing_behind(tmp_path, monkeypatch):
    from testbed.experiments import results

    def interrupted(result, folder, figures=True):
        (Path(folder) / "summary.csv").write_text("half")
        raise KeyboardInterrupt
    monkeypatch.setattr(results, "write_results", interrupted)
    data, source = _quickstart()
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        kinds.simulate(data, source, _args(out))
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_a_failing_run_leaves_a_folder_recording_the_exception(tmp_path, monkeypatch):
    from testbed.experiments import runner

    def broken(scenario, **options):
        raise RuntimeError("a bug in the engine")
    monkeypatch.setattr(runner, "run_scenario", broken)
    data, source = _quickstart()
    out = tmp_path / "run"
    with pytest.raises(RuntimeError):
        kinds.simulate(data, source, _args(out))
    meta = json.loads((out / "meta.json").read_text())
    assert meta["outcome"] == "error"
    assert meta["exception"] == "RuntimeError: a bug in the engine"
    assert "Traceback" in meta["traceback"] and (out / "config.yaml").is_file()
    assert not (out / "summary.csv").exists()


def test_plot_refuses_an_incomplete_folder(tmp_path):
    proc = _cli("run", QUICKSTART, "--quick", "--no-figures", "--out", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr
    (tmp_path / "run" / "DONE").unlink()
    proc = _cli("plot", tmp_path / "run")
    assert proc.returncode == 2 and "incomplete" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_results_folder_keeps_the_old_folder_when_writing_fails(tmp_path):
    out = tmp_path / "run"
    with results_folder(out) as folder:
        (folder / "a.csv").write_text("first")
    with pytest.raises(ConfigError, match="--force"):
        with results_folder(out):
            pass
    with pytest.raises(ValueError):
        with results_folder(out, force=True) as folder:
            (folder / "a.csv").write_text("second")
            raise ValueError("half way")
    assert (out / "a.csv").read_text() == "first" and (out / "DONE").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_the_overall_outcome_is_the_worst():
    assert overall_outcome({"a": "ok", "b": "ok"}) == "ok"
    assert overall_outcome({"a": "ok", "b": "oom"}) == "oom"
    assert overall_outcome({"a": "oom", "b": "infeasible at token 3: x"}) == "infeasible"
    assert overall_outcome({"a": "stalled at token 1: link", "b": "oom"}) == "stalled"


def test_spooled_tables_give_the_same_summary_and_files(tmp_path, monkeypatch):
    """testbed run streams flows and jobs to disk as they are recorded: the summary and
    the written tables equal those of a run that kept everything in memory (small chunks,
    so that both ways go through many of them)."""
    from testbed.experiments.results import read_table, write_results
    from testbed.sim import record_log
    monkeypatch.setattr(record_log, "CHUNK", 97)
    from testbed.experiments.runner import run_scenario
    from testbed.experiments.scenario import load_scenario

    scenario = load_scenario(QUICKSTART, quick=True)
    kept = run_scenario(scenario, record_jobs=True)
    spool = tmp_path / "spool"
    spool.mkdir()
    spooled = run_scenario(scenario, record_jobs=True, spool=spool)
    assert set(spooled.spooled) == {"flows", "jobs"}
    assert len(spooled.spooled["flows"]) == len(scenario.partitioners)
    wall = ["sim_wall_s", "mean_decision_wall_s"]
    assert kept.summary.drop(columns=wall).equals(spooled.summary.drop(columns=wall))
    write_results(kept, tmp_path / "kept", figures=False)
    write_results(spooled, tmp_path / "spooled", figures=False)
    for name in ("flows", "jobs"):
        left, right = read_table(tmp_path / "kept", name), read_table(tmp_path / "spooled", name)
        assert len(left) > 100 and left.equals(right), name
    assert len(spooled.tables["flows"]) < len(kept.tables["flows"])   # totals only


def test_a_scenario_can_keep_only_some_tables(tmp_path):
    import yaml
    data, _ = _quickstart()
    data["output"] = {"tables": ["tokens", "memory"]}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    (tmp_path / "home_office.yaml").write_text(
        (ROOT / "topologies" / "home_office.yaml").read_text())
    proc = _cli("run", path, "--quick", "--no-figures", "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["DONE", "config.yaml", "memory.csv", "meta.json", "summary.csv",
                       "tokens.csv"]
    data["output"] = {"tables": ["tokens", "flow"]}
    path.write_text(yaml.safe_dump(data))
    proc = _cli("run", path, "--quick", "--no-figures", "--out", tmp_path / "bad")
    assert proc.returncode == 2 and "output.tables" in proc.stderr and "'flow'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_run_without_any_flow_still_writes_an_empty_flows_table(tmp_path):
    """Everything on the controller: nothing crosses the network, and the spooled run's
    folder still has the flows table, empty, with its columns."""
    from testbed.experiments.results import read_table, write_results
    from testbed.experiments.runner import run_scenario
    from testbed.experiments.scenario import scenario_from_dict
    from testbed.sim.network import FlowRecord

    data = {"name": "alone", "model": {"name": "gpt2-small", "overrides": {"n_layers": 1}},
            "topology": {"file": "home_office.yaml"}, "workload": {"generate_tokens": 3},
            "controller": {"hosts_blocks": True},
            "partitioners": [{"name": "fixed", "placement": {"*": "mac-mini"}}]}
    spool = tmp_path / "spool"
    spool.mkdir()
    result = run_scenario(scenario_from_dict(data, source=str(tmp_path / "s.yaml")),
                          spool=spool)
    assert result.spooled == {"flows": [], "jobs": []}
    write_results(result, tmp_path / "out", figures=False)
    flows = read_table(tmp_path / "out", "flows")
    assert flows.empty and list(flows.columns) == ["partitioner", *FlowRecord._fields]
    assert not (tmp_path / "out" / "jobs.parquet").exists()
