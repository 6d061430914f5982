"""The Mininet backend on a real (emulated) network: a small run completes and joins, and
no run leaves anything behind: not on success, not when interrupted (SIGINT, SIGTERM), not
when killed outright (SIGKILL, cleaned by the janitor). Needs root, ``mnexec`` and the
``mininet`` package; skipped otherwise, with the reason."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from testbed.emulation.support import unavailable_reason

REASON = unavailable_reason()
pytestmark = [pytest.mark.mininet,
              pytest.mark.skipif(REASON is not None, reason=f"Mininet backend: {REASON}")]

ROOT = Path(__file__).resolve().parents[1]

SCENARIO = """
name: tiny-emulation
seed: 1
model: {{name: gpt2-small, overrides: {{n_layers: 2}}}}
cost: paper
topology: {{file: line_4.yaml}}
links:
  - {{a: mac-mini, b: jetson-nx, both_directions: true, bandwidth: "50 Mbit/s"}}
  - {{a: jetson-nx, b: jetson-nano, both_directions: true,
     bandwidth: {{points: [["0 s", "30 Mbit/s"], ["0.3 s", "10 Mbit/s"]], loop: "0.6 s"}}}}
  - {{a: jetson-nano, b: pi5, both_directions: true, bandwidth: "30 Mbit/s"}}
workload: {{prompt_tokens: 24, generate_tokens: {tokens}, decision_interval: 1}}
controller: {{device: mac-mini, hosts_blocks: false}}
partitioners:
  - name: fixed
    placement: {{"*": jetson-nano, "L0-1.attn0": pi5, "L0-1.attn1": pi5, "L0-1.attn2": jetson-nx,
                "L0-1.attn3": jetson-nx, "L1.ffn": pi5}}
"""


#: Bridged: a switch and an access point in the root namespace.
BRIDGED = """
name: tiny-bridged
seed: 1
model: {{name: gpt2-small, overrides: {{n_layers: 2}}}}
cost: paper
topology: {{file: home_office.yaml, media: false}}
links:
  - {{a: mac-mini, b: switch, both_directions: true, bandwidth: "50 Mbit/s"}}
  - {{a: ap, b: switch, both_directions: true, bandwidth: "50 Mbit/s"}}
  - {{a: ap, b: jetson-nx, both_directions: true,
     bandwidth: {{points: [["0 s", "30 Mbit/s"], ["0.3 s", "10 Mbit/s"]], loop: "0.6 s"}}}}
  - {{a: ap, b: pi5, both_directions: true, bandwidth: "20 Mbit/s"}}
workload: {{prompt_tokens: 24, generate_tokens: {tokens}, decision_interval: 1}}
controller: {{device: mac-mini, hosts_blocks: false}}
partitioners:
  - name: fixed
    placement: {{"*": pi5, "L0-1.attn0": jetson-nx, "L0-1.attn1": jetson-nx, "L1.ffn": nuc}}
"""


def _scenario(tmp_path: Path, tokens: int, template: str = SCENARIO) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(template.format(tokens=tokens), encoding="utf-8")
    return path


def _namespaces(prefix: str) -> set[str]:
    """Network namespaces of the run's hosts (``net:[inode]`` of their shells)."""
    found = set()
    for pid in _processes_mentioning(f"mininet:{prefix}h"):
        try:
            found.add(os.readlink(f"/proc/{pid}/ns/net"))
        except OSError:
            pass
    return found


def _processes_in(namespaces: set[str]) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "ns" / "net") in namespaces:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _links_with(prefix: str) -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                         timeout=10).stdout
    names = [line.split(":", 2)[1].strip().split("@")[0] for line in out.splitlines()
             if line.count(":") >= 2]
    return [name for name in names if name.startswith(prefix)]


def _processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line contains ``text`` (the run's unique prefix)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline:
                found.append(int(entry.name))
    return found


def _wait_clean(prefix: str, timeout_s: float = 20.0) -> tuple[list[str], list[int]]:
    deadline = time.monotonic() + timeout_s
    while True:
        links, procs = _links_with(prefix), _processes_mentioning(prefix)
        if (not links and not procs) or time.monotonic() > deadline:
            return links, procs
        time.sleep(0.2)


def test_small_run_completes_joins_and_cleans_up(tmp_path):
    from testbed.emulation.janitor import alive
    from testbed.emulation.validate import validate_mininet

    result = validate_mininet(_scenario(tmp_path, 4), tmp_path / "out", echo=lambda *a: None)
    # line_4: no switch; the middle devices forward the others' traffic
    table = pd.read_csv(tmp_path / "out" / "validation.csv")
    assert list(table.columns) == ["metric", "n", "median_err_pct", "p90_err_pct"]
    assert {"transfer_time", "token_latency"} <= set(table.metric)
    assert table.set_index("metric").loc["token_latency", "n"] == 4
    for name in ("transfers.csv", "tokens.csv", "validation.png", "meta.json"):
        assert (tmp_path / "out" / name).is_file()
    transfers = pd.read_csv(tmp_path / "out" / "transfers.csv")
    assert (transfers.emu_s >= 0).all() and len(transfers) == len(result.transfers)
    # nothing of the run is left: interfaces, bridges, node shells, workers
    assert result.worker_pids and not any(alive(pid) for pid in result.worker_pids)
    assert _links_with(result.prefix) == []
    assert _processes_mentioning(result.prefix) == []


@pytest.fixture
def started():
    """Starts long validations in subprocesses; stops any still running at teardown (by
    SIGTERM, which the run turns into a clean exit)."""
    procs: list[subprocess.Popen] = []

    def start(tmp_path: Path):
        proc = subprocess.Popen(
            [sys.executable, "-m", "testbed.cli", "validate", "mininet",
             str(_scenario(tmp_path, 400, BRIDGED)), "--out", str(tmp_path / "out")],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(proc)
        return _running(proc)

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate(timeout=10)


def _running(proc: subprocess.Popen) -> tuple[subprocess.Popen, str, set[str]]:
    """Once the run emulates: the process, the run's prefix and its hosts' namespaces."""
    prefix = None
    deadline = time.monotonic() + 40
    for line in proc.stdout:
        if "(prefix " in line:
            prefix = line.split("(prefix ", 1)[1].split(")", 1)[0]
        if line.startswith("emulating"):
            break
        assert time.monotonic() < deadline, "the run did not start emulating"
    assert prefix, "the run did not say its prefix"
    time.sleep(2.0)  # well inside the emulation: workers sending, tc replaying
    assert _links_with(prefix), "the run's bridges and ports should exist while it runs"
    namespaces = _namespaces(prefix)
    assert len(namespaces) == 6, "one namespace per host"
    assert len(_processes_in(namespaces)) > 6, "shells, workers and tc in the namespaces"
    assert proc.poll() is None
    return proc, prefix, namespaces


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_leaves_nothing_behind(tmp_path, started, sig):
    proc, prefix, namespaces = started(tmp_path)
    proc.send_signal(sig)
    try:
        proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert _wait_clean(prefix) == ([], [])
    assert _processes_in(namespaces) == []
    assert not list(Path("/tmp").glob(f"testbed-emu-{prefix}-*"))


def test_killed_run_is_cleaned_by_its_janitor(tmp_path, started):
    proc, prefix, namespaces = started(tmp_path)
    proc.kill()
    proc.communicate(timeout=20)
    assert _wait_clean(prefix, timeout_s=40) == ([], [])
    assert _processes_in(namespaces) == []
    assert not list(Path("/tmp").glob(f"testbed-emu-{prefix}-*"))
