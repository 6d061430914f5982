"""The SimPy engine: compute queues, the flow-level network, the token pipeline, the run."""

from testbed.sim.engine import MIGRATION_MODES, SimConfig, Simulation
from testbed.sim.records import Records

__all__ = ["MIGRATION_MODES", "SimConfig", "Simulation", "Records"]
