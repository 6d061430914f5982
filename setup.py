"""Packaging lives in setup.cfg; this adds what it cannot say: the repository's
``topologies/``, ``experiments/`` and ``traces/`` folders ship inside the package, as
``testbed._shipped.<folder>`` (see testbed/_shipped/__init__.py), with the package data."""

from setuptools import find_namespace_packages, setup

SHIPPED = ("topologies", "experiments", "traces")

setup(
    packages=find_namespace_packages(include=["testbed", "testbed.*"],
                                     exclude=["*.__pycache__"]) +
    [f"testbed._shipped.{name}" for name in SHIPPED],
    package_dir={f"testbed._shipped.{name}": name for name in SHIPPED},
    # all package data is declared here (a package_data given to setup() replaces
    # setup.cfg's): the catalogs, the ns-3 runner's source, and the shipped folders
    package_data={"testbed": ["model/data/*.csv", "cluster/data/*.csv", "emulation/ns3/*.cpp"],
                  **{f"testbed._shipped.{name}": ["*.yaml", "*.csv", "*.md"]
                     for name in SHIPPED}},
)
