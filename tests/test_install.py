"""A plain (non-editable) install works away from the checkout: topologies, experiments
and traces ship inside the package."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_non_editable_install_runs_the_quickstart_anywhere(tmp_path):
    target = tmp_path / "site"
    # from a copy of the tracked files, as from a fresh clone (a checkout's own build
    # leftovers, e.g. an egg-info listing the data files, must not make it pass)
    source = tmp_path / "clone"
    clone = subprocess.run(["git", "clone", "--quiet", str(ROOT), str(source)],
                           capture_output=True, text=True, timeout=300)
    if clone.returncode != 0:
        source = ROOT
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                           "--target", str(target), str(source)], capture_output=True,
                          text=True, timeout=600)
    if proc.returncode != 0 and "Could not find a version" in proc.stderr:
        pytest.skip("no package index to build the wheel (setuptools) from")
    assert proc.returncode == 0, proc.stderr[-2000:]
    package = target / "testbed"
    for data in ("model/data/models.csv", "cluster/data/devices.csv",
                 "cluster/data/links.csv", "emulation/ns3/runner.cpp"):
        assert (package / data).is_file(), f"{data} not in the package"
    shipped = package / "_shipped"
    for folder, name in (("topologies", "home_office.yaml"),
                         ("experiments", "quickstart.yaml"), ("traces", "wifi_fading.csv")):
        assert (shipped / folder / name).is_file(), f"{folder}/{name} not shipped"
    away = tmp_path / "elsewhere"
    away.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = ("import testbed, testbed.cluster.build as b; "
            "print(testbed.__file__); print(b.TOPOLOGIES_DIR)")
    where = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           cwd=away, env=env, timeout=120)
    assert where.returncode == 0, where.stderr
    module, topologies = where.stdout.split()
    assert Path(module).is_relative_to(target) and Path(topologies).is_relative_to(target)
    # the README's quickstart command, from a folder that is not the checkout
    run = subprocess.run([sys.executable, "-m", "testbed.cli", "run",
                          "experiments/quickstart.yaml", "--quick", "--no-figures",
                          "--out", str(away / "out")], capture_output=True, text=True,
                         cwd=away, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    assert (away / "out" / "DONE").is_file() and (away / "out" / "tokens.csv").is_file()
