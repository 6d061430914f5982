"""Can this machine run the Mininet backend? Say precisely why not.

:func:`unavailable_reason` returns ``None`` when everything the backend needs is here (root,
``mnexec``, ``ip``, ``tc``, ``ethtool``, the ``mininet`` package), else one line saying what
is missing and how to install it. :func:`probe_netem` tells whether the kernel has the
``netem`` queueing discipline (needed to emulate link latency), by trying it on a scratch
veth pair that it creates and deletes by its exact names.
"""

from __future__ import annotations

import os
import shutil
import subprocess

INSTALL_HINT = ("install with: apt-get install -y mininet bridge-utils iputils-ping ethtool "
                "&& pip install mininet (or pip install -e '.[mininet]')")
TOOLS = ("mnexec", "ip", "tc", "ethtool")
COMMAND_TIMEOUT_S = 10.0


class EmulationUnavailable(RuntimeError):
    """The Mininet backend cannot run on this machine (the message says why)."""


def unavailable_reason() -> str | None:
    """Why the Mininet backend cannot run here, or None if it can."""
    if os.name != "posix" or not hasattr(os, "geteuid"):
        return "the Mininet backend needs Linux"
    if os.geteuid() != 0:
        return f"the Mininet backend needs root (running as uid {os.geteuid()})"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing {', '.join(missing)}; {INSTALL_HINT}"
    try:
        import importlib
        importlib.import_module("mininet.net")
        importlib.import_module("mininet.nodelib")   # LinuxBridge
    except ImportError as error:
        return f"cannot import mininet ({error}); {INSTALL_HINT}"
    return None


def require_mininet() -> None:
    """Raise :class:`EmulationUnavailable` unless the backend can run."""
    reason = unavailable_reason()
    if reason is not None:
        raise EmulationUnavailable(reason)


def run(cmd: list[str], *, timeout_s: float = COMMAND_TIMEOUT_S,
        check: bool = True) -> subprocess.CompletedProcess:
    """Run a command with a timeout; raise with its stderr if it fails and ``check``."""
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): "
                           f"{(done.stderr or done.stdout).strip()}")
    return done


def probe_netem(prefix: str) -> bool:
    """True if ``tc qdisc add ... netem`` works here (tried on veth ``{prefix}nA``/``nB``,
    created and deleted by these exact names)."""
    a, b = f"{prefix}nA", f"{prefix}nB"
    run(["ip", "link", "add", a, "type", "veth", "peer", "name", b])
    try:
        done = run(["tc", "qdisc", "add", "dev", a, "root", "netem", "delay", "1ms"],
                   check=False)
        return done.returncode == 0
    finally:
        run(["ip", "link", "del", a], check=False)
