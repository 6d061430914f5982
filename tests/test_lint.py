"""The lint and type gate: ``ruff check .`` (ruff.toml) and ``mypy testbed`` (setup.cfg's
``[mypy]`` sections), run as tests so that ``pytest`` -- the README's test command, which
CI runs -- fails on a lint or type error. Both tools come with the ``test`` extra."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -e '.[test]' brings it)")


def test_ruff_passes():
    _tool("ruff")
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]


def test_mypy_passes_on_the_package():
    _tool("mypy")
    proc = subprocess.run([sys.executable, "-m", "mypy", "testbed"], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]
