"""What a migration sends: the bytes of a block that changes device."""

from __future__ import annotations

from typing import TYPE_CHECKING

from testbed.plan.work import StepWork

if TYPE_CHECKING:
    from testbed.dataflows.base import Dataflow


def migration_bytes(dataflow: "Dataflow", kind: str, before: StepWork,
                    weights_preloaded: bool) -> float:
    """Bytes sent to move a block of ``kind`` after the pass ``before``: what its device
    holds for it (weights unless pre-loaded everywhere, the K/V rows in use, activations;
    not the unused part of a preallocated cache)."""
    cost = before.cost(dataflow.moving_part(kind))
    return cost.memory_bytes - cost.kv_reserved_bytes - \
        (cost.weight_bytes if weights_preloaded else 0.0)
