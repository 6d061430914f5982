"""The benchmark scripts are not run by the tests (their figures are measurements), but
each must still load against the library as it is: an import of a renamed name fails
here, not on the next person to measure."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py"))


def test_there_are_benchmark_scripts():
    assert len(SCRIPTS) >= 5


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_a_benchmark_script_loads(path):
    spec = importlib.util.spec_from_file_location(f"benchmark_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)          # its imports and definitions, not its main()
    assert callable(getattr(module, "main", None)), f"{path.name} has no main()"
