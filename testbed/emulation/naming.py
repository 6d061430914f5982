"""Names of what one emulation run creates: all start with a per-run prefix.

Linux interface names have at most 15 characters. A prefix is ``tb`` plus three hex
digits (5 characters); hosts are ``{prefix}h{i}``, switches ``{prefix}s{j}``, their
interfaces ``{node}-eth{k}``: 14 characters for up to 100 nodes of each kind with up to
100 ports. Cleanup removes only names with the run's prefix, which no other run or
program uses (:func:`new_prefix` checks that no interface has it yet).
"""

from __future__ import annotations

import os
import subprocess

PREFIX_LETTERS = "tb"
MAX_NAME = 15


def link_names() -> list[str]:
    """Names of the interfaces in this network namespace (``ip -o link``; none without
    ``ip``)."""
    try:
        out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    names = []
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.append(parts[1].strip().split("@", 1)[0])
    return names


def new_prefix() -> str:
    """A prefix that no interface uses yet."""
    existing = link_names()
    for _ in range(64):
        prefix = PREFIX_LETTERS + os.urandom(2).hex()[:3]
        if not any(name.startswith(prefix) for name in existing):
            return prefix
    raise RuntimeError("could not find an unused interface-name prefix")


def host_name(prefix: str, index: int) -> str:
    return f"{prefix}h{index}"


def switch_name(prefix: str, index: int) -> str:
    return f"{prefix}s{index}"


def intf_name(node: str, port: int) -> str:
    name = f"{node}-eth{port}"
    if len(name) > MAX_NAME:
        raise ValueError(f"interface name {name!r} is longer than {MAX_NAME} characters")
    return name


def owned(names: list[str], prefix: str) -> list[str]:
    """The names in ``names`` that this run created (they start with its prefix)."""
    return [name for name in names if name.startswith(prefix)]
