"""Partitioners behind one interface, registered by name (see :mod:`.base`)."""

from testbed.partition.base import (PARTITIONERS, Infeasible, MemoryBook, Partitioner,
                                    make_partitioner)
from testbed.partition import fixed, round_robin, single_device  # noqa: F401  (register)

__all__ = ["PARTITIONERS", "Infeasible", "MemoryBook", "Partitioner", "make_partitioner"]
