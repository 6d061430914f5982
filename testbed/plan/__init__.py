"""What partitioners produce and backends execute: placements, observations, delay estimates."""

from testbed.plan.placement import LayerPlan, Placement, PlacementError

__all__ = ["LayerPlan", "Placement", "PlacementError"]
