"""The model catalog: real configurations and the paper's synthetic sizes, by name.

The figures live in ``testbed/model/data/models.csv`` (one row per model, with a short
``source`` for each). Every catalog model uses 2-byte (fp16/bf16) weights, cache and
activations (dtype ``f16``); change that with :meth:`ModelSpec.with_overrides`
(e.g. ``weight_dtype="q4_0"``).
"""

from __future__ import annotations

import csv
import functools
import io
from importlib import resources
from typing import Any

import pandas as pd

from testbed.errors import ConfigError, close_matches
from testbed.model.cost import kv_bytes_per_token, total_weight_bytes
from testbed.model.spec import ModelSpec

_CSV = "data/models.csv"
_INT_COLUMNS = ("n_layers", "d_model", "n_heads", "n_kv_heads", "head_dim", "ffn_dim",
                "vocab_size", "max_position")
_GIB = 2.0**30
_FRAME_FIELDS = ("name",) + _INT_COLUMNS[:-2] + ("ffn_kind", "vocab_size", "max_position",
                                                 "weight_dtype", "params_billion")


def _spec_from_row(row: dict[str, str], line: int, source: str) -> ModelSpec:
    """One CSV row as a validated spec; errors name the file, line and column."""
    # keyword arguments of ModelSpec, which validates them
    fields: dict[str, Any] = {"name": row["name"], "ffn_kind": row["ffn_kind"]}
    try:
        for column in _INT_COLUMNS:
            try:
                fields[column] = int(row[column])
            except (TypeError, ValueError):
                raise ConfigError(f"got {row[column]!r}; expected an integer",
                                  field=column, value=row[column]) from None
        text = (row["params_billion"] or "").strip()
        try:
            fields["params_billion"] = float(text) if text else None
        except ValueError:
            raise ConfigError(f"got {text!r}; expected a number or nothing",
                              field="params_billion", value=text) from None
        return ModelSpec(**fields)
    except ConfigError as error:
        raise error.located(source=source, field_prefix=f"line {line}") from None


@functools.lru_cache(maxsize=1)
def _catalog() -> dict[str, ModelSpec]:
    """Name -> spec for every catalog row, in file order (read once)."""
    resource = resources.files("testbed.model").joinpath(_CSV)
    source = str(resource)
    reader = csv.DictReader(io.StringIO(resource.read_text(encoding="utf-8")))
    models: dict[str, ModelSpec] = {}
    for line, row in enumerate(reader, start=2):
        spec = _spec_from_row(row, line, source)
        if spec.name in models:
            raise ConfigError(f"got duplicate model {spec.name!r}; expected unique names",
                              source=source, field=f"line {line}", value=spec.name)
        models[spec.name] = spec
    return models


def get_model(name: str, *, source: str | None = None, field: str | None = None) -> ModelSpec:
    """The catalog model ``name`` (case-insensitive); ``source``/``field`` locate errors."""
    models = _catalog()
    if isinstance(name, str):
        spec = models.get(name) or models.get(name.strip().lower())
        if spec is not None:
            return spec
    raise ConfigError(f"got unknown model {name!r}; {close_matches(name, models)}expected a "
                      "catalog model name (`testbed models` lists all)", source=source,
                      field=field,
                      value=name)


def list_models() -> list[ModelSpec]:
    """Every catalog model, in catalog order."""
    return list(_catalog().values())


def catalog_frame() -> pd.DataFrame:
    """One row per catalog model: the architecture fields, its dtype, ``weight_gib`` (all
    weights incl. LM head and embeddings, GiB) and ``kv_bytes_per_token`` (bytes, all
    layers)."""
    rows = []
    for spec in list_models():
        row = {name: getattr(spec, name) for name in _FRAME_FIELDS}
        row["weight_gib"] = total_weight_bytes(spec) / _GIB
        row["kv_bytes_per_token"] = kv_bytes_per_token(spec)
        rows.append(row)
    return pd.DataFrame(rows)
