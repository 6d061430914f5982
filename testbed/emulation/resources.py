"""What one emulation run owns, and its removal on success, error, Ctrl-C or death.

:class:`RunResources` keeps the run's prefix, its folder, its Mininet network, its worker
processes and anything else to stop (e.g. the capacity replayer). :meth:`RunResources.close`
removes them all, once, whatever state the run is in; it is called from ``finally``, from
``atexit`` and, through :func:`guarded`, on SIGTERM/SIGHUP (turned into ``SystemExit``) and
SIGINT (``KeyboardInterrupt``). A janitor process (:mod:`testbed.emulation.janitor`) started
in its own session cleans up from the manifest if the run dies without closing (``kill -9``).
Nothing outside the run is touched: processes by the PIDs the run got, Mininet shells by the
exact node names it gave, interfaces by its unique prefix.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from testbed.emulation import janitor
from testbed.emulation.naming import new_prefix

RUN_DIR_PREFIX = "testbed-emu-"
NET_STOP_TIMEOUT_S = 30.0
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class RunResources:
    """The processes, network and folder of one emulation run."""

    def __init__(self, prefix: str | None = None, *, keep_dir: bool = False):
        self.prefix = prefix or new_prefix()
        self.run_dir = Path(tempfile.mkdtemp(prefix=f"{RUN_DIR_PREFIX}{self.prefix}-"))
        self.manifest_path = self.run_dir / "manifest.json"
        self.keep_dir = keep_dir
        self.net = None                      # mininet.net.Mininet, once built
        self.nodes: list[str] = []           # Mininet node names this run uses
        self.workers: dict[int, tuple[subprocess.Popen, str]] = {}
        self._on_close: list[Callable[[], None]] = []
        self._janitor: subprocess.Popen | None = None
        self._lock = threading.RLock()
        self.closed = False
        self.leftovers: list[str] = []
        self._save()

    # ------------------------------------------------------------------ registration
    def _save(self, closed: bool = False) -> None:
        janitor.write_manifest(self.manifest_path, {
            "prefix": self.prefix, "run_dir": str(self.run_dir), "nodes": self.nodes,
            "workers": [{"pid": pid, "marker": marker}
                        for pid, (_, marker) in self.workers.items()],
            "closed": closed})

    def start_janitor(self) -> None:
        """Start the guard that cleans up if this process dies without closing."""
        log = open(self.run_dir / "janitor.log", "wb")
        try:
            self._janitor = subprocess.Popen(
                [sys.executable, "-m", "testbed.emulation.janitor", str(self.manifest_path)],
                stdin=subprocess.PIPE, stdout=log, stderr=log, start_new_session=True)
        finally:
            log.close()

    def plan_nodes(self, names: list[str]) -> None:
        """Record the node names before they are created."""
        with self._lock:
            self.nodes = list(names)
            self._save()

    def add_worker(self, popen: subprocess.Popen, marker: str) -> None:
        with self._lock:
            self.workers[popen.pid] = (popen, marker)
            self._save()

    def on_close(self, callback: Callable[[], None]) -> None:
        self._on_close.append(callback)

    # ------------------------------------------------------------------ removal
    def stop_workers(self) -> None:
        """Terminate the worker processes still running (by PID), then reap them."""
        for pid, (popen, marker) in list(self.workers.items()):
            if popen.poll() is None:
                janitor.kill_pid(pid, marker)
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=janitor.KILL_WAIT_S)

    def close(self) -> list[str]:
        """Remove everything; idempotent. Returns what could not be removed."""
        with self._lock:
            if self.closed:
                return self.leftovers
            self.closed = True
        blocked = _block_signals()
        try:
            for callback in reversed(self._on_close):
                with contextlib.suppress(Exception):
                    callback()
            self.stop_workers()
            if self.net is not None:
                _stop_net(self.net)
            self.leftovers = janitor.cleanup(self._manifest_now())
            self._save(closed=True)
            self._stop_janitor()
            if not self.keep_dir:
                shutil.rmtree(self.run_dir, ignore_errors=True)
        finally:
            _unblock_signals(blocked)
        return self.leftovers

    def _manifest_now(self) -> dict:
        return {"prefix": self.prefix, "nodes": self.nodes,
                "workers": [{"pid": pid, "marker": marker}
                            for pid, (_, marker) in self.workers.items()]}

    def _stop_janitor(self) -> None:
        proc = self._janitor
        if proc is None:
            return
        with contextlib.suppress(OSError):
            if proc.stdin is not None:   # opened with stdin=PIPE
                proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            janitor.kill_pid(proc.pid, "testbed.emulation.janitor")


def _stop_net(net) -> None:
    """``net.stop()`` with a timeout (it talks to node shells, which could hang)."""
    done = threading.Event()

    def stop():
        with contextlib.suppress(Exception):
            net.stop()
        done.set()

    thread = threading.Thread(target=stop, name="mininet-stop", daemon=True)
    thread.start()
    done.wait(NET_STOP_TIMEOUT_S)


def _block_signals():
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)


def _unblock_signals(previous) -> None:
    if previous is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _raise_exit(signum, _frame):
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def guarded(resources: RunResources):
    """Close ``resources`` however the block ends: normally, by an exception, by SIGINT
    (KeyboardInterrupt), SIGTERM or SIGHUP (SystemExit), or at interpreter exit."""
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            previous[sig] = signal.signal(sig, _raise_exit)
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            pass  # a caller that ignores Ctrl-C keeps doing so
    atexit.register(resources.close)
    try:
        resources.start_janitor()
        yield resources
    finally:
        resources.close()
        atexit.unregister(resources.close)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def wait_gone(pids: list[int], timeout_s: float = 5.0) -> list[int]:
    """The PIDs of ``pids`` still alive after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = [pid for pid in pids if janitor.alive(pid)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)
