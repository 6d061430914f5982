"""Run a :class:`~testbed.emulation.plan.TokenPlan` on worker processes and collect the
emulated tables.

The orchestrator writes the plan (one JSON file), starts one worker per device through a
``launch`` function (``host.popen`` in Mininet, a plain ``Popen`` on the loopback in tests),
and drives them over Unix datagram sockets in the run's folder: all ``ready`` ->
``connect`` -> all ``warm`` -> ``go T0`` -> all ``done``. Each phase has a timeout; a worker
that fails or exits early stops the run with its log. ``on_start(t0)`` is called right
before ``go`` (the capacity replayer keys its schedule to the same ``t0``).

:func:`emulated_tables` turns the workers' records into tables keyed like the simulator's:
one row per token, per transfer and per computation, times in s relative to ``t0``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from testbed.emulation.plan import TokenPlan
from testbed.emulation.resources import RunResources

READY_TIMEOUT_S = 60.0
WARM_TIMEOUT_S = 120.0
START_LEAD_S = 0.5
EXIT_TIMEOUT_S = 15.0

Launch = Callable[[str, list[str], Path], subprocess.Popen]


class EmulationError(RuntimeError):
    """The emulated run did not complete (the message says where and why)."""


@dataclass
class EmulatedRun:
    t0: float
    results: dict[str, dict]      # device -> worker records
    wall_s: float


def deadline_s(plan: TokenPlan) -> float:
    """How long the workers may take after ``t0`` (s): generous, but finite."""
    return 30.0 + 4.0 * plan.sim_duration_s


def run_plan(plan: TokenPlan, *, resources: RunResources, addresses: dict[str, tuple[str, int]],
             launch: Launch, tag: str = "run",
             on_start: Callable[[float], None] | None = None) -> EmulatedRun:
    folder = resources.run_dir
    parts = {d: plan.device_part(d) for d in plan.devices}
    devices = [d for d, part in parts.items()
               if part["tasks"] or part["xfers_in"] or part["signals_in"]]  # idle: no worker
    control = {d: str(folder / f"{tag}-w{i}.sock") for i, d in enumerate(devices)}
    results = {d: str(folder / f"{tag}-w{i}.json") for i, d in enumerate(devices)}
    orchestrator = str(folder / f"{tag}-orchestrator.sock")
    timeout = deadline_s(plan)
    spec = {"devices": {d: parts[d] for d in devices},
            "addresses": {d: list(addresses[d]) for d in devices},
            "control": control, "results": results, "orchestrator": orchestrator,
            "deadline_s": timeout}
    plan_path = folder / f"{tag}-plan.json"
    plan_path.write_text(json.dumps(spec), encoding="utf-8")
    inbox = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    inbox.bind(orchestrator)
    procs: dict[str, subprocess.Popen] = {}
    started = time.monotonic()
    try:
        for i, device in enumerate(devices):
            argv = [sys.executable, "-m", "testbed.emulation.worker", str(plan_path), device]
            log = folder / f"{tag}-w{i}.log"
            proc = launch(device, argv, log)
            resources.add_worker(proc, str(plan_path))
            procs[device] = proc
        _await(inbox, procs, "ready", READY_TIMEOUT_S, folder, tag)
        _broadcast(inbox, control.values(), "connect")
        _await(inbox, procs, "warm", WARM_TIMEOUT_S, folder, tag)
        t0 = time.monotonic() + START_LEAD_S
        if on_start is not None:
            on_start(t0)
        _broadcast(inbox, control.values(), f"go {t0!r}")
        _await(inbox, procs, "done", timeout + START_LEAD_S, folder, tag)
        for device, proc in procs.items():
            try:
                proc.wait(timeout=EXIT_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                raise EmulationError(f"worker {device} did not exit") from None
        out = {d: json.loads(Path(results[d]).read_text(encoding="utf-8")) for d in devices}
        return EmulatedRun(t0, out, time.monotonic() - started)
    finally:
        inbox.close()
        resources.stop_workers()


def _broadcast(inbox: socket.socket, paths, text: str) -> None:
    for path in paths:
        inbox.sendto(text.encode(), path)


def _await(inbox: socket.socket, procs: dict[str, subprocess.Popen], word: str,
           timeout_s: float, folder: Path, tag: str) -> None:
    """Wait until every worker said ``word``; fail on an ``error``, an early exit or the
    timeout, quoting the worker's log."""
    waiting = set(procs)
    deadline = time.monotonic() + timeout_s
    while waiting:
        if time.monotonic() > deadline:
            raise EmulationError(f"timed out after {timeout_s:.0f} s waiting for "
                                 f"'{word}' from {', '.join(sorted(waiting))}"
                                 + _logs(folder, tag, procs, waiting))
        for message in _messages(inbox):
            what, device = message[0], message[1]
            if what == "error":
                raise EmulationError(f"worker {device} failed: "
                                     + _worker_error(folder, tag, procs, device))
            if what == word:
                waiting.discard(device)
        exited = [d for d in waiting if procs[d].poll() is not None]
        if exited:
            # its last words may still be on their way: read them before concluding
            time.sleep(0.2)
            for message in _messages(inbox):
                if message[0] == word:
                    waiting.discard(message[1])
            for device in exited:
                if device in waiting:
                    raise EmulationError(f"worker {device} exited with status "
                                         f"{procs[device].poll()} before '{word}'"
                                         + _logs(folder, tag, procs, {device}))


def _messages(inbox: socket.socket, wait_s: float = 0.2) -> list[list[str]]:
    """Every message waiting in ``inbox``, waiting up to ``wait_s`` for the first."""
    found: list[list[str]] = []
    inbox.settimeout(wait_s)
    while True:
        try:
            words = inbox.recv(512).decode().split()
        except (socket.timeout, BlockingIOError):
            return found
        if len(words) >= 2:
            found.append(words)
        inbox.settimeout(0.0)  # the rest without waiting


def _worker_error(folder: Path, tag: str, procs, device: str) -> str:
    index = list(procs).index(device)
    path = folder / f"{tag}-w{index}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return f"{data.get('error')} (waiting tasks {data.get('waiting_tasks')}, missing " \
               f"transfers {data.get('missing_transfers')})"
    except (OSError, ValueError):
        return _logs(folder, tag, procs, {device})


def _logs(folder: Path, tag: str, procs, devices) -> str:
    parts = []
    for device in sorted(devices):
        index = list(procs).index(device)
        try:
            text = (folder / f"{tag}-w{index}.log").read_text(errors="replace").strip()
        except OSError:
            text = ""
        if text:
            parts.append(f"\n--- worker {device} log ---\n{text[-2000:]}")
    return "".join(parts)


def emulated_tables(plan: TokenPlan, run: EmulatedRun) -> dict[str, pd.DataFrame]:
    """``tokens``, ``transfers`` and ``computes`` of the emulated run (s, from ``t0``)."""
    t0 = run.t0
    marks, computes, sends, recvs = {}, {}, {}, {}
    for data in run.results.values():
        marks.update({tid: t for tid, t in data["mark"]})
        computes.update({tid: (ready, start, end) for tid, ready, start, end in data["compute"]})
        sends.update({xfer: (ready, start, end) for _, xfer, ready, start, end in data["send"]})
        recvs.update({xfer: t for xfer, t in data["recv"]})
    tokens = pd.DataFrame([
        {"token": info.token, "start_s": marks[info.start_task] - t0,
         "end_s": computes[info.end_task][2] - t0,
         "latency_s": computes[info.end_task][2] - marks[info.start_task]}
        for info in plan.tokens])
    transfers = pd.DataFrame([
        {"xfer": t.xfer, "token": t.token, "layer": t.layer, "stage": t.stage, "src": t.src,
         "dst": t.dst, "kind": t.kind, "size_bytes": t.size_bytes,
         "start_s": sends[t.xfer][0] - t0, "send_start_s": sends[t.xfer][1] - t0,
         "send_end_s": sends[t.xfer][2] - t0, "end_s": recvs[t.xfer] - t0,
         "duration_s": recvs[t.xfer] - sends[t.xfer][0]}
        for t in plan.transfers],
        columns=["xfer", "token", "layer", "stage", "src", "dst", "kind", "size_bytes",
                 "start_s", "send_start_s", "send_end_s", "end_s", "duration_s"])
    jobs = pd.DataFrame([
        {"task": c.task, "token": c.token, "layer": c.layer, "kind": c.kind,
         "device": c.device, "n_blocks": c.n_blocks, "sim_s": c.sim_s,
         "ready_s": computes[c.task][0] - t0, "start_s": computes[c.task][1] - t0,
         "end_s": computes[c.task][2] - t0,
         "emu_s": computes[c.task][2] - computes[c.task][1]}
        for c in plan.computes])
    return {"tokens": tokens, "transfers": transfers, "computes": jobs}
