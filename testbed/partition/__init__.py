"""Partitioners behind one interface, registered by name (see :mod:`.base`).

Every module of this package is imported here, so adding a partitioner means adding one
file that registers its class with ``@PARTITIONERS.register("name")``.
"""

import importlib
import pkgutil

from testbed.partition.base import (PARTITIONERS, Infeasible, MemoryBook, Partitioner,
                                    make_partitioner)

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["PARTITIONERS", "Infeasible", "MemoryBook", "Partitioner", "make_partitioner"]
