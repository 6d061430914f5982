"""``testbed sweep``: resumable after SIGKILL, and the same bytes serially, in a local
process pool and on a Dask cluster."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from testbed.experiments.progress import Progress, format_duration
from testbed.experiments.sweep import expand, load_runs_table

REPO = Path(__file__).resolve().parents[1]
WALL_COLUMNS = ("decision_wall_s", "mean_decision_wall_s", "sim_wall_s")

# 8 short runs: 2 decision intervals x 4 seeds, a fading link and random background load.
SWEEP = f"""\
name: tiny_sweep
experiment: sweep
model: {{name: gpt2-small, overrides: {{n_layers: 2}}}}
topology: {{file: home_office.yaml}}
links:
  - {{a: ap, b: jetson-nx, both_directions: true,
     trace: {{file: {REPO / 'traces' / 'wifi_fading.csv'}, loop: true}}}}
devices:
  "*": {{background: {{uniform: "30 %", step: "100 ms"}}}}
workload: {{prompt_tokens: 16, generate_tokens: TOKENS, decision_interval: 1}}
controller: {{device: mac-mini, hosts_blocks: false}}
partitioners: [resource_aware, resource_aware_plus, round_robin]
grid:
  workload.decision_interval: [1, 4]
seeds: 4
"""


def sweep_file(folder: Path, tokens: int = 40) -> Path:
    path = folder / "tiny_sweep.yaml"
    path.write_text(SWEEP.replace("TOKENS", str(tokens)), encoding="utf-8")
    return path


def cli(*args: object, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "testbed.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300, **kwargs)


def read_rows(path: Path) -> list[list[str]]:
    """A CSV file's rows as text, without the wall-clock columns."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    keep = [i for i, name in enumerate(rows[0]) if name not in WALL_COLUMNS]
    return [[row[i] for i in keep] for row in rows]


def run_ids(path: Path) -> list[str]:
    import yaml
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [run.run_id for run in expand(data, source=str(path))[1]]


def check_complete(out: Path, ids: list[str]) -> None:
    """Every run exactly once: one DONE folder each, no temporary folder, no repeated
    row in the merged tables."""
    folders = sorted(p.name for p in (out / "runs").iterdir())
    assert folders == sorted(ids), folders   # no leftover temporary (".<id>.xxx") folders
    for run_id in ids:
        assert (out / "runs" / run_id / "DONE").read_text() == "ok\n"
    summary = pd.read_csv(out / "summary.csv")
    assert sorted(summary.run_id.unique()) == sorted(ids)
    assert summary.groupby("run_id").size().eq(3).all()          # 3 partitioners per run
    assert not summary.duplicated(["run_id", "partitioner"]).any()
    tokens = pd.read_csv(out / "tokens.csv")
    assert sorted(tokens.run_id.unique()) == sorted(ids)
    assert not tokens.duplicated(["run_id", "partitioner", "token"]).any()
    assert len(tokens) == len(ids) * 3 * tokens.token.max()


def test_sweep_killed_half_way_then_rerun_has_every_run_once(tmp_path):
    path = sweep_file(tmp_path, tokens=120)
    ids = run_ids(path)
    assert len(ids) == 8 and len(set(ids)) == 8
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "testbed.cli", "sweep", path, "--jobs", "2",
                             "--out", out, "--no-figures"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    done = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            done = len(list(out.glob("runs/*/DONE")))
            if done >= 3:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the sweep ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)   # the sweep's own process, as `kill -9 PID`
        proc.wait(timeout=30)
    finally:
        try:   # its pool workers, orphaned by the kill
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert proc.returncode == -signal.SIGKILL
    finished = len(list(out.glob("runs/*/DONE")))
    assert 3 <= finished < 8, finished

    again = cli("sweep", path, "--jobs", "2", "--out", out, "--no-figures", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"({finished} already done)" in again.stdout
    check_complete(out, ids)
    # once more: nothing left to do, the same merged tables
    before = (out / "tokens.csv").read_bytes()
    third = cli("sweep", path, "--jobs", "2", "--out", out, "--no-figures", cwd=tmp_path)
    assert third.returncode == 0, third.stderr
    assert "(8 already done)" in third.stdout
    assert (out / "tokens.csv").read_bytes() == before
    check_complete(out, ids)


@pytest.fixture(scope="module")
def serial_sweep(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serial")
    path = sweep_file(folder)
    proc = cli("sweep", path, "--jobs", "1", "--out", folder / "out", "--no-figures",
               cwd=folder)
    assert proc.returncode == 0, proc.stderr
    return path, folder / "out", proc


def assert_same_results(first: Path, second: Path) -> None:
    for name in ("summary", "tokens", "memory", "decisions"):
        assert read_rows(second / f"{name}.csv") == read_rows(first / f"{name}.csv"), name
    flows = [load_runs_table(out, "flows") for out in (first, second)]
    assert flows[0].equals(flows[1])
    for folder in sorted((first / "runs").iterdir()):
        other = second / "runs" / folder.name
        for name in ("summary.csv", "tokens.csv", "labels.csv"):
            assert read_rows(other / name) == read_rows(folder / name), name
        for name in ("flows.parquet", "memory.csv", "config.yaml", "DONE"):   # no wall clock
            assert (other / name).read_bytes() == (folder / name).read_bytes(), name


def test_serial_sweep_output(serial_sweep):
    path, out, proc = serial_sweep
    check_complete(out, run_ids(path))
    assert "in this process" in proc.stdout
    # the progress bar (its carriage returns read as line ends here), ending at 8/8
    assert "] 8/8 runs, 0 failed" in proc.stderr.strip().splitlines()[-1]


def test_local_pool_gives_the_serial_results(serial_sweep, tmp_path):
    path, serial_out, _ = serial_sweep
    proc = cli("sweep", path, "--jobs", "2", "--out", tmp_path / "pool", "--no-figures",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "in 2 local processes" in proc.stdout
    assert_same_results(serial_out, tmp_path / "pool")


def test_testbed_run_of_a_sweep_file_gives_the_same_results(serial_sweep, tmp_path):
    path, serial_out, _ = serial_sweep
    proc = cli("run", path, "--out", tmp_path / "run", "--no-figures", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert_same_results(serial_out, tmp_path / "run")


def test_dask_cluster_gives_the_serial_results(serial_sweep, tmp_path):
    distributed = pytest.importorskip(
        "distributed", reason="the Dask backend needs the 'distributed' extra "
                              "(pip install -e '.[distributed]')")
    path, serial_out, _ = serial_sweep
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        proc = cli("sweep", path, "--scheduler", cluster.scheduler_address,
                   "--out", tmp_path / "dask", "--no-figures", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "on the Dask cluster at tcp://" in proc.stdout
    assert_same_results(serial_out, tmp_path / "dask")


def test_unreachable_scheduler_is_one_line_error(tmp_path):
    pytest.importorskip("distributed", reason="needs the 'distributed' extra")
    path = sweep_file(tmp_path, tokens=4)
    proc = cli("sweep", path, "--scheduler", "tcp://127.0.0.1:9", "--out", tmp_path / "o",
               cwd=tmp_path, env={**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT":
                                 "1s"})
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("testbed: error: --scheduler: cannot reach the Dask "
                                  "scheduler at tcp://127.0.0.1:9")


def test_missing_distributed_is_one_line_error(tmp_path):
    # a 'distributed' that cannot be imported stands for the extra not being installed
    (tmp_path / "distributed").mkdir()
    (tmp_path / "distributed" / "__init__.py").write_text("raise ImportError('absent')\n")
    path = sweep_file(tmp_path, tokens=4)
    proc = cli("sweep", path, "--scheduler", "tcp://127.0.0.1:9", "--out", tmp_path / "o",
               cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("testbed: error: --scheduler: the Dask backend needs the "
                                   "'distributed' package; install it with pip install "
                                   "'testbed[distributed]'")


def test_failed_run_is_recorded_and_the_sweep_goes_on(tmp_path):
    # a fixed placement that leaves layer 1 unplaced is only found when the run starts
    path = tmp_path / "failing.yaml"
    path.write_text("""\
name: failing
experiment: sweep
model: {name: gpt2-small, overrides: {n_layers: 2}}
topology: {file: home_office.yaml}
workload: {prompt_tokens: 16, generate_tokens: 4}
partitioners: [round_robin]
grid:
  cases:
    - {label: fine}
    - {label: broken, partitioners: [{name: fixed, placement: {"L0": pi5}}]}
seeds: 1
""", encoding="utf-8")
    out = tmp_path / "out"
    proc = cli("sweep", path, "--jobs", "2", "--out", out, "--no-figures", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "1 failed" in proc.stderr
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.case) == ["fine"]
    failures = pd.read_csv(out / "failures.csv")
    assert list(failures.case) == ["broken"]
    assert failures.error[0].startswith("error: ")
    broken = out / "runs" / failures.run_id[0]
    assert (broken / "DONE").read_text().startswith("error: ")
    assert (broken / "error.txt").is_file()
    again = cli("sweep", path, "--jobs", "1", "--out", out, "--no-figures", cwd=tmp_path)
    assert again.returncode == 0 and "(2 already done)" in again.stdout


def test_sweep_rejects_other_experiment_kinds(tmp_path):
    proc = cli("sweep", REPO / "experiments" / "e1_small_scale.yaml", "--out", tmp_path,
                   cwd=tmp_path)
    assert proc.returncode == 2
    assert "experiment: got 'optimality_gap'" in proc.stderr


def test_progress_line_counts_failures_and_eta():
    import io
    now = [100.0]
    stream = io.StringIO()
    progress = Progress(4, stream=stream, clock=lambda: now[0])
    assert "0/4 runs, 0 failed" in progress.line() and "ETA --" in progress.line()
    now[0] += 10
    progress.update()
    now[0] += 10
    progress.update(failed=True)
    assert progress.line() == "[############------------] 2/4 runs, 1 failed, 0:20 elapsed, " \
                              "ETA 0:20"
    progress.close()
    text = stream.getvalue()
    assert text.count("\r") == 3 and text.endswith("\n") and text.count("\n") == 1
    assert format_duration(3725) == "1:02:05"


def test_token_progress_shows_each_partitioner_and_throttles_redraws():
    import io

    from testbed.experiments.progress import TokenProgress
    stream = io.StringIO()
    bar = TokenProgress(stream, min_interval_s=3600.0)   # only first and last draws
    for done in range(1, 101):
        bar("resource_aware", done, 100)
    for done in range(1, 51):
        bar("edgeshard", done, 50)
    bar.close()
    lines = stream.getvalue().replace("\r", "\n").split("\n")
    drawn = [line.strip() for line in lines if "tokens" in line]
    assert [line.split(":")[0] for line in drawn] == ["resource_aware"] * 3 + ["edgeshard"] * 3
    assert "100/100 tokens" in drawn[2] and "50/50 tokens" in drawn[5]
    assert "failed" not in stream.getvalue() and stream.getvalue().endswith("\n")


def test_testbed_run_draws_no_bar_when_stderr_is_not_a_terminal(tmp_path):
    proc = cli("run", REPO / "experiments" / "quickstart.yaml", "--quick", "--no-figures",
               "--out", tmp_path / "out", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == ""
