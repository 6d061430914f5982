"""How a placement becomes a task graph: one file per dataflow strategy, registered by name.

- ``head_level`` (default): the paper's pattern — hidden state to every attention host,
  attention outputs to proj, proj to ffn (:mod:`.head_level`);
- ``layer_pipeline``: contiguous layer ranges per device, the hidden state passed on
  (:mod:`.layer_pipeline`);
- ``tensor_parallel``: Megatron-style head and column/row shards with the collectives they
  imply (:mod:`.tensor_parallel`, :mod:`.collectives`);
- ``root_sync``: distributed-llama v0.1.0's root-synchronised slices (:mod:`.root_sync`).

Every module of this package is imported here, so adding a dataflow means adding one file
that registers its class with ``@DATAFLOWS.register("name")``.
"""

import importlib
import pkgutil

from testbed.dataflows.base import DATAFLOWS, DEFAULT_DATAFLOW, Dataflow, make_dataflow

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["DATAFLOWS", "DEFAULT_DATAFLOW", "Dataflow", "make_dataflow"]
