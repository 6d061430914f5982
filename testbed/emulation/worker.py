"""One emulated device: ``python -m testbed.emulation.worker PLAN.json DEVICE``.

Started inside the device's Mininet host (or, for tests, on the loopback interface). It
executes its part of the task graph of :mod:`testbed.emulation.plan`: a task runs when all
its dependencies happened; ``compute`` tasks run one at a time in the order they became
ready (the device's FIFO queue) and sleep for the simulated service time; ``send`` tasks
write the transfer's real number of bytes on a persistent TCP connection to the
destination (one per destination and kind of traffic); a transfer has arrived when its
last byte has been read; ``signal`` tasks tell another worker something out of band (a
Unix datagram socket in the run's folder, not the emulated network).

Each message on a connection is a 12-byte header (transfer id, size) followed by padding
up to the transfer's size, so exactly ``size`` bytes of TCP payload cross the network
(a transfer smaller than the header sends the header alone).

Life cycle, driven by the orchestrator over the control sockets: start and listen, say
``ready``; on ``connect`` open the connections and send one warm-up message on each (it
resolves neighbours and opens the congestion window), say ``warm`` once every warm-up
message addressed to it has arrived; on ``go T0`` start at ``T0`` (monotonic clock, shared
by all hosts of the machine); when every task ran and everything expected arrived, write
the records (JSON) and say ``done``. Everything has a deadline. Standard library only.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import struct
import sys
import threading
import time
import traceback
from typing import Any

HEADER = struct.Struct("!IQ")
WARMUP_ID = 0xFFFFFFFF
WARMUP_BYTES = 64 * 1024
CHUNK = 1 << 20
SETUP_TIMEOUT_S = 120.0
CONNECT_TIMEOUT_S = 10.0
POLL_S = 0.5

now = time.monotonic


class Abort(Exception):
    pass


def _recv_exact(sock: socket.socket, view: memoryview, n: int, stop: threading.Event) -> bool:
    """Read exactly ``n`` bytes into ``view``; False on EOF before any byte."""
    got = 0
    while got < n:
        try:
            k = sock.recv_into(view[got:n], n - got)
        except socket.timeout:
            if stop.is_set():
                raise Abort("stopped")
            continue
        if k == 0:
            if got == 0:
                return False
            raise Abort("connection closed in the middle of a message")
        got += k
    return True


class Worker:
    def __init__(self, plan: dict, device: str):
        self.plan = plan
        self.device = device
        part = plan["devices"][device]
        self.tasks = {t["id"]: t for t in part["tasks"]}
        self.xfers_in = set(part["xfers_in"])
        self.signals_in = set(part["signals_in"])
        self.connections = [tuple(pair) for pair in part["connections"]]
        self.peers_in = part["peers_in"]
        self.address = plan["addresses"][device]          # [host, port]
        self.ctl_path = plan["control"][device]
        self.orchestrator = plan["orchestrator"]
        self.deadline_s = plan["deadline_s"]
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.finished = threading.Event()
        self.warm_in = 0
        self.warm_event = threading.Event()
        self.t0: float | None = None
        self.pending = {tid: len(t["deps"]) for tid, t in self.tasks.items()}
        self.waiters: dict[str, list[int]] = {}
        for tid, task in self.tasks.items():
            for dep in task["deps"]:
                self.waiters.setdefault(dep, []).append(tid)
        self.happened: set[str] = set()
        self.remaining = len(self.tasks) + len(self.xfers_in) + len(self.signals_in)
        self.records: dict[str, list[list[Any]]] = {"compute": [], "send": [], "recv": [],
                                                    "mark": [], "signal": []}
        self.compute_queue: queue.SimpleQueue = queue.SimpleQueue()
        self.out_queues: dict[tuple[str, str], queue.SimpleQueue] = {}
        self.out_socks: dict[tuple[str, str], socket.socket] = {}
        self.threads: list[threading.Thread] = []
        self.error: str | None = None
        self.sleep_bias_s = 0.0
        self.ctl = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.ctl.bind(self.ctl_path)
        self.ctl.settimeout(POLL_S)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((self.address[0], int(self.address[1])))
        self.listener.listen(64)
        self.listener.settimeout(POLL_S)
        self.payload = bytes(CHUNK)

    # ------------------------------------------------------------------ messaging
    def tell(self, path: str, text: str) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(text.encode(), path)

    def tell_orchestrator(self, text: str) -> None:
        self.tell(self.orchestrator, f"{text} {self.device}")

    def spawn(self, target, *args, name: str) -> None:
        thread = threading.Thread(target=self._guard, args=(target, *args), name=name,
                                  daemon=True)
        self.threads.append(thread)
        thread.start()

    def _guard(self, target, *args) -> None:
        try:
            target(*args)
        except Abort:
            pass
        except Exception:  # any failure stops the worker and is reported
            self.fail(traceback.format_exc())

    def fail(self, message: str) -> None:
        with self.lock:
            if self.error is None:
                self.error = message
        self.stop.set()
        self.finished.set()

    # ------------------------------------------------------------------ dependencies
    def happen(self, event: str) -> None:
        ready = []
        with self.lock:
            if event in self.happened:
                return
            self.happened.add(event)
            for tid in self.waiters.pop(event, ()):
                self.pending[tid] -= 1
                if self.pending[tid] == 0:
                    ready.append(tid)
        for tid in ready:
            self.dispatch(tid, now())

    def progress(self) -> None:
        with self.lock:
            self.remaining -= 1
            if self.remaining == 0:
                self.finished.set()

    def dispatch(self, tid: int, ready_at: float) -> None:
        task = self.tasks[tid]
        op = task["op"]
        if op == "compute":
            self.compute_queue.put((tid, ready_at))
        elif op == "send":
            self.out_queues[(task["dst"], task["channel"])].put((tid, ready_at))
        elif op == "signal":
            self.tell(self.plan["control"][task["dst"]], f"s {task['signal']}")
            self.records["signal"].append([tid, task["signal"], now()])
            self.progress()
            self.happen(f"k{tid}")
        elif op == "mark":
            wait = self.t0 + task["not_before_s"] - now()
            if wait > 0:
                time.sleep(wait)
            self.records["mark"].append([tid, now()])
            self.progress()
            self.happen(f"k{tid}")
        else:
            raise ValueError(f"unknown task kind {op!r}")

    # ------------------------------------------------------------------ threads
    def compute_loop(self) -> None:
        while True:
            item = self.compute_queue.get()
            if item is None:
                return
            tid, ready_at = item
            start = now()
            target = start + self.tasks[tid]["duration_s"]
            left = target - now() - self.sleep_bias_s
            if left > 0:
                time.sleep(left)
            while now() < target:   # the last few tens of microseconds (the oversleep)
                pass
            end = now()
            self.records["compute"].append([tid, ready_at, start, end])
            self.progress()
            self.happen(f"k{tid}")

    def send_loop(self, key: tuple[str, str]) -> None:
        sock, jobs = self.out_socks[key], self.out_queues[key]
        while True:
            item = jobs.get()
            if item is None:
                return
            tid, ready_at = item
            task = self.tasks[tid]
            start = now()
            self._send_message(sock, task["xfer"], task["size_bytes"])
            end = now()
            self.records["send"].append([tid, task["xfer"], ready_at, start, end])
            self.progress()
            self.happen(f"k{tid}")

    def _send_message(self, sock: socket.socket, xfer: int, size: int) -> None:
        sock.sendall(HEADER.pack(xfer, size))
        left = size - HEADER.size
        while left > 0:
            n = min(left, CHUNK)
            sock.sendall(memoryview(self.payload)[:n])
            left -= n

    def accept_loop(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.settimeout(POLL_S)
            self.spawn(self.recv_loop, conn, name="recv")

    def recv_loop(self, conn: socket.socket) -> None:
        header = bytearray(HEADER.size)
        scratch = memoryview(bytearray(CHUNK))
        with conn:
            while True:
                if not _recv_exact(conn, memoryview(header), HEADER.size, self.stop):
                    return
                xfer, size = HEADER.unpack(header)
                left = size - HEADER.size
                while left > 0:
                    n = min(left, CHUNK)
                    _recv_exact(conn, scratch, n, self.stop)
                    left -= n
                arrived = now()
                if xfer == WARMUP_ID:
                    with self.lock:
                        self.warm_in += 1
                        if self.warm_in >= self.peers_in:
                            self.warm_event.set()
                    continue
                if xfer not in self.xfers_in:
                    raise ValueError(f"unexpected transfer {xfer}")
                self.records["recv"].append([xfer, arrived])
                self.progress()
                self.happen(f"x{xfer}")

    def control_loop(self) -> None:
        while not self.stop.is_set():
            try:
                data = self.ctl.recv(256).decode()
            except socket.timeout:
                continue
            words = data.split()
            if not words:
                continue
            if words[0] == "s":
                sid = int(words[1])
                if sid not in self.signals_in:
                    raise ValueError(f"unexpected signal {sid}")
                self.progress()
                self.happen(f"s{sid}")
            elif words[0] == "connect":
                self.spawn(self.connect_and_warm, name="connect")
            elif words[0] == "go":
                self.t0 = float(words[1])
                self.spawn(self.start, name="start")
            elif words[0] == "stop":
                raise Abort("stopped by the orchestrator")

    # ------------------------------------------------------------------ phases
    def calibrate_sleep(self, rounds: int = 30) -> None:
        """The typical oversleep of ``time.sleep`` here, subtracted from compute sleeps."""
        over = []
        for _ in range(rounds):
            start = now()
            time.sleep(0.001)
            over.append(now() - start - 0.001)
        over.sort()
        self.sleep_bias_s = max(0.0, over[len(over) // 2])

    def connect_and_warm(self) -> None:
        own = self.address[0]
        for dst, channel in self.connections:
            host, port = self.plan["addresses"][dst]
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(CONNECT_TIMEOUT_S)
            sock.bind((own, 0))
            sock.connect((host, int(port)))
            sock.settimeout(None)
            self.out_socks[(dst, channel)] = sock
            self.out_queues[(dst, channel)] = queue.SimpleQueue()
            self._send_message(sock, WARMUP_ID, WARMUP_BYTES)
        if self.peers_in == 0:
            self.warm_event.set()
        if not self.warm_event.wait(SETUP_TIMEOUT_S):
            raise TimeoutError(f"warm-up: {self.warm_in} of {self.peers_in} peers arrived")
        for key in self.out_socks:
            self.spawn(self.send_loop, key, name=f"send-{key[0]}-{key[1]}")
        self.tell_orchestrator("warm")

    def start(self) -> None:
        for tid, count in list(self.pending.items()):
            if count == 0:
                self.dispatch(tid, now())

    def run(self) -> int:
        self.calibrate_sleep()
        self.spawn(self.control_loop, name="control")
        self.spawn(self.accept_loop, name="accept")
        self.spawn(self.compute_loop, name="compute")
        self.tell_orchestrator("ready")
        if self.remaining == 0:
            self.finished.set()
        started = now()
        while not self.finished.wait(POLL_S):
            limit = (self.t0 + self.deadline_s) if self.t0 is not None \
                else started + SETUP_TIMEOUT_S
            if now() > limit:
                self.fail(f"deadline passed with {self.remaining} task(s) or arrival(s) "
                          "outstanding")
        self.stop.set()
        self.compute_queue.put(None)
        for q in self.out_queues.values():
            q.put(None)
        return self.finish()

    def finish(self) -> int:
        outstanding = sorted(tid for tid, count in self.pending.items() if count > 0)
        missing_in = sorted(self.xfers_in - {r[0] for r in self.records["recv"]})
        result = {"device": self.device, "t0": self.t0, "error": self.error,
                  "sleep_bias_s": self.sleep_bias_s, "waiting_tasks": outstanding[:50],
                  "missing_transfers": missing_in[:50], **self.records}
        path = self.plan["results"][self.device]
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(result, handle)
        os.replace(tmp, path)
        for sock in self.out_socks.values():
            try:
                sock.close()
            except OSError:
                pass
        self.tell_orchestrator("error" if self.error else "done")
        return 3 if self.error else 0


def main(argv: list[str]) -> int:
    plan_path, device = argv
    with open(plan_path, encoding="utf-8") as handle:
        plan = json.load(handle)
    worker = Worker(plan, device)
    try:
        return worker.run()
    finally:
        try:
            os.unlink(worker.ctl_path)
        except OSError:
            pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
