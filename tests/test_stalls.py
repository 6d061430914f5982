"""Runs that cannot progress end as ``stalled`` (records kept, one line, exit status 3);
runs that overflowed memory say ``oom``; a device at 100 % load runs nothing while it is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from testbed.experiments.runner import run_scenario
from testbed.experiments.scenario import scenario_from_dict
from testbed.sim.records import completed

ROOT = Path(__file__).resolve().parents[1]
DEAD_LINK = {"a": "ap", "b": "jetson-nx", "both_directions": True,
             "bandwidth": {"points": [["0 s", "100 Mbit/s"], ["0.05 s", "0 Mbit/s"]]}}


def _scenario(tmp_path, **extra) -> dict:
    data = {"name": "stall", "model": "tinyllama-1.1b", "cost": "decode",
            "topology": {"file": "home_office.yaml"},
            "workload": {"prompt_tokens": 16, "generate_tokens": 8},
            "partitioners": ["resource_aware"], **extra}
    return data


def _run(data, tmp_path):
    return run_scenario(scenario_from_dict(data, source=str(tmp_path / "s.yaml")),
                        record_jobs=True)


def _cli(data, tmp_path):
    import yaml
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    return subprocess.run([sys.executable, "-m", "testbed.cli", "run", str(path), "--out",
                           str(tmp_path / "out"), "--no-figures"], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)


def test_a_link_that_dies_for_good_stalls_the_run_with_one_line(tmp_path):
    proc = _cli(_scenario(tmp_path, links=[DEAD_LINK]), tmp_path)
    assert proc.returncode == 3
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "stalled" in lines[0] and "link ap -> jetson-nx at 0 bit/s" in lines[0]
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert summary.outcome.iloc[0].startswith("stalled at token 1")


def test_a_dead_link_stalls_even_while_other_links_keep_changing(tmp_path):
    """Another link's looping trace keeps events coming for ever: the watchdog ends it."""
    lively = {"a": "ap", "b": "phone", "both_directions": True,
              "bandwidth": {"points": [["0 s", "50 Mbit/s"], ["1 s", "80 Mbit/s"]],
                            "loop": "2 s"}}
    result = _run(_scenario(tmp_path, links=[DEAD_LINK, lively]), tmp_path)
    outcome = result.outcomes["resource_aware"]
    assert outcome.startswith("stalled") and "ap -> jetson-nx" in outcome
    assert not completed(outcome)


def test_every_device_at_full_load_stalls_before_deciding(tmp_path):
    data = _scenario(tmp_path, devices={"*": {"background": {"points": [["0 s", "100 %"]]}}},
                     partitioners=["resource_aware", "edgeshard", "greedy"])
    proc = _cli(data, tmp_path)
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 3 and all("100 % background load" in line for line in lines)


def test_a_device_at_full_load_runs_nothing_while_it_is(tmp_path):
    """jetson-nx hosts every block (fixed) and is at 100 % load from 0.2 s to 0.6 s."""
    fixed = {"name": "fixed", "placement": {"*": "jetson-nx"}}
    load = {"points": [["0 s", "0 %"], ["0.2 s", "100 %"], ["0.6 s", "0 %"]]}
    data = _scenario(tmp_path, partitioners=[fixed], devices={"jetson-nx": {"background": load}})
    result = _run(data, tmp_path)
    assert result.outcomes["fixed"] == "ok"
    jobs = result.tables["jobs"]
    assert (jobs.device == "jetson-nx").sum() > 8
    tokens = result.tables["tokens"]
    assert len(tokens) == 8
    spanning = tokens[(tokens.start_s < 0.2) & (tokens.end_s > 0.2)]
    assert len(spanning) == 1 and spanning.end_s.iloc[0] > 0.6   # it waited the load out
    # (a job's time is fixed when it starts, so one started before 0.2 s may run past it)
    assert not ((jobs.start_s >= 0.2) & (jobs.start_s < 0.6) &
                (jobs.device == "jetson-nx")).any()


def test_a_device_at_full_load_for_good_stalls_naming_it(tmp_path):
    fixed = {"name": "fixed", "placement": {"*": "jetson-nx"}}
    load = {"points": [["0 s", "0 %"], ["0.2 s", "100 %"]]}
    result = _run(_scenario(tmp_path, partitioners=[fixed],
                            devices={"jetson-nx": {"background": load}}), tmp_path)
    outcome = result.outcomes["fixed"]
    assert outcome.startswith("stalled") and "jetson-nx at 100 % background load" in outcome
    assert 0 < len(result.tables["tokens"]) < 8     # the records up to the stall are kept


def test_a_run_that_overflowed_memory_says_oom(tmp_path):
    fixed = {"name": "fixed", "placement": {"*": "pi5"}}
    data = _scenario(tmp_path, model="llama-3-8b", partitioners=[fixed],
                     workload={"prompt_tokens": 16, "generate_tokens": 2})
    result = _run(data, tmp_path)
    assert len(result.tables["oom"]) > 0
    assert result.outcomes["fixed"] == "oom" and completed("oom")
    assert result.summary.outcome.iloc[0] == "oom"


@pytest.mark.parametrize("background", [None, {"uniform": "30 %", "step": "100 ms"}])
def test_a_normal_run_is_ok(tmp_path, background):
    extra = {"devices": {"*": {"background": background}}} if background else {}
    result = _run(_scenario(tmp_path, **extra), tmp_path)
    assert result.outcomes["resource_aware"] == "ok"


def test_a_controller_cut_off_from_the_start_ends_cleanly(tmp_path):
    """The controller's only link is down from the start (back only after a day): every
    partitioner ends the run cleanly (infeasible: nothing can reach the controller; or
    stalled), never with an error."""
    dead = [{"a": "mac-mini", "b": "switch", "both_directions": True,
             "bandwidth": {"points": [["0 s", "0 Mbit/s"], ["86400 s", "1 Gbit/s"]]}}]
    result = _run(_scenario(tmp_path, links=dead, partitioners=[
        "resource_aware", "resource_aware_plus", "edgeshard", "greedy"]), tmp_path)
    for outcome in result.outcomes.values():
        assert outcome.split()[0] in ("stalled", "infeasible"), outcome
