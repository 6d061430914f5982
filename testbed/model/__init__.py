"""Transformer workload: model specs, the catalog, blocks of placement and their costs."""

from testbed.model.blocks import Block, blocks_of, parse_block_id
from testbed.model.catalog import catalog_frame, get_model, list_models
from testbed.model.cost import (
    COST_PRESETS, BlockCost, CostModel, get_cost_model, kv_bytes_per_token, total_weight_bytes,
)
from testbed.model.hf import load_hf_config
from testbed.model.spec import ModelSpec

__all__ = [
    "ModelSpec", "Block", "blocks_of", "parse_block_id", "BlockCost", "CostModel",
    "COST_PRESETS", "get_cost_model", "get_model", "list_models", "catalog_frame",
    "load_hf_config", "kv_bytes_per_token", "total_weight_bytes",
]
