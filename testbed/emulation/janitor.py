"""Remove what one emulation run created, from its manifest; also a guard process.

The manifest (``manifest.json`` in the run's folder) lists what the run owns: its prefix,
the names of its Mininet nodes, the PIDs of its worker processes (with a marker that
their command line must contain), and whether the run already cleaned up. Cleanup touches
nothing else:

- worker processes by PID, after checking that ``/proc/<pid>/cmdline`` still contains
  their marker (so a recycled PID is never hit);
- Mininet node shells by the exact ``mininet:<node name>`` argument Mininet gives them;
- interfaces and bridges whose name starts with the run's unique prefix.

``python -m testbed.emulation.janitor MANIFEST`` is started by the run in its own
session; it waits until its standard input closes, which happens when the run ends in any
way (even ``kill -9``); if the manifest does not say ``closed`` by then, it cleans up.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from testbed.emulation.naming import link_names, owned

KILL_WAIT_S = 3.0


def read_manifest(path: str | Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def write_manifest(path: str | Path, data: dict) -> None:
    """Atomically replace the manifest."""
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    state = _state(pid)
    return state not in ("Z", "X", "")


def _state(pid: int) -> str:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return text.rsplit(")", 1)[-1].split()[0] if ")" in text else ""


def kill_pid(pid: int, marker: str | None = None, *, group: bool = False) -> bool:
    """SIGTERM then SIGKILL one process we own (``marker`` must be in its command line,
    when given); ``group`` signals its process group (a Mininet shell leads its own).
    Returns True if it is gone."""
    if not alive(pid):
        return True
    if marker is not None and not any(marker in part for part in cmdline(pid)):
        return True  # not ours any more (PID recycled)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            if group:
                os.killpg(pid, sig if sig == signal.SIGKILL else signal.SIGHUP)
            else:
                os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        deadline = time.monotonic() + KILL_WAIT_S
        while time.monotonic() < deadline:
            try:  # reap it if it is our child
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            if not alive(pid):
                return True
            time.sleep(0.02)
    return not alive(pid)


def node_shell_pids(names: list[str]) -> list[int]:
    """PIDs of the Mininet shells of our nodes: an argument equal to ``mininet:<name>``."""
    wanted = {f"mininet:{name}" for name in names}
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            if wanted.intersection(cmdline(int(entry.name))):
                pids.append(int(entry.name))
    return pids


def delete_owned_links(prefix: str) -> list[str]:
    """Delete every interface or bridge whose name starts with ``prefix``; return those
    still present afterwards."""
    for name in owned(link_names(), prefix):
        subprocess.run(["ip", "link", "del", name], capture_output=True, timeout=10)
    return owned(link_names(), prefix)


def cleanup(manifest: dict) -> list[str]:
    """Remove everything the manifest lists; returns what could not be removed."""
    left = []
    for worker in manifest.get("workers", []):
        if not kill_pid(int(worker["pid"]), worker.get("marker")):
            left.append(f"worker pid {worker['pid']}")
    for pid in node_shell_pids(manifest.get("nodes", [])):
        if not kill_pid(pid, "mininet:", group=True):
            left.append(f"shell pid {pid}")
    prefix = manifest.get("prefix")
    if prefix:
        left += [f"interface {name}" for name in delete_owned_links(prefix)]
    return left


def main(argv: list[str]) -> int:
    path = Path(argv[0])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        sys.stdin.buffer.read()       # returns when the run closes the pipe or dies
    except OSError:
        pass
    manifest = read_manifest(path)
    if not manifest or manifest.get("closed"):
        return 0
    left = cleanup(manifest)
    run_dir = manifest.get("run_dir")
    if run_dir and Path(run_dir).is_dir() and Path(run_dir).name.startswith("testbed-emu-"):
        shutil.rmtree(run_dir, ignore_errors=True)
    if left:
        print("janitor: could not remove " + ", ".join(left), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
