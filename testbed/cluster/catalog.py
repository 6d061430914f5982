"""The device catalog: real edge (and a few reference) devices from ``data/devices.csv``.

Figures are in the units of the table's column names (GB = 1e9 bytes, GB/s, TFLOP/s, TOPS,
W); :func:`make_device` turns a row into a :class:`DeviceSpec` in SI units. Provenance of
every figure: ``../shared/reference/devices.csv`` and its README; the ``source`` column
names the document each row comes from.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

import pandas as pd

from testbed.cluster.device import DeviceSpec
from testbed.errors import ConfigError, close_matches

DEVICES_CSV = Path(__file__).parent / "data" / "devices.csv"
_NUMERIC = ("memory_gb", "mem_bandwidth_gbps", "peak_fp16_tflops", "peak_fp32_tflops",
            "int8_tops", "typical_power_w")


@lru_cache(maxsize=1)
def _rows() -> dict[str, dict]:
    """Device type name -> figures (floats, None where the table is blank), in file order."""
    rows: dict[str, dict] = {}
    with open(DEVICES_CSV, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            figures: dict = {"name": row["name"]}
            for column in _NUMERIC:
                figures[column] = float(row[column]) if row[column].strip() else None
            figures["source"] = row["source"]
            rows[row["name"]] = figures
    return rows


def list_device_types() -> list[str]:
    """Names of the catalog's device types, in catalog order."""
    return list(_rows())


def get_device_type(model_name: str) -> dict:
    """The catalog figures of one device type (units as in the column names)."""
    rows = _rows()
    if model_name not in rows:
        raise ConfigError(f"got unknown device type {model_name!r}; "
                          f"{close_matches(model_name, rows)}"
                          "`testbed devices` lists all", value=model_name,
                          expected="a device type from the catalog")
    return dict(rows[model_name])


def make_device(name: str, model_name: str, **overrides) -> DeviceSpec:
    """A :class:`DeviceSpec` named ``name`` with the figures of catalog type ``model_name``.

    Peak compute is the FP16 peak when the catalog has one, else the FP32 peak. ``overrides``
    use :class:`DeviceSpec` field names in SI units (e.g. ``memory_bytes=4 * 2**30``).
    """
    figures = get_device_type(model_name)
    tflops = figures["peak_fp16_tflops"] or figures["peak_fp32_tflops"]
    device = DeviceSpec(name=name, model=model_name, peak_flops=tflops * 1e12,
                        mem_bw_bytes_per_s=figures["mem_bandwidth_gbps"] * 1e9,
                        memory_bytes=figures["memory_gb"] * 1e9)
    return device.with_overrides(**overrides) if overrides else device


def catalog_frame() -> pd.DataFrame:
    """The catalog as a table for display, with units in the column names."""
    frame = pd.DataFrame(list(_rows().values()))
    return frame.rename(columns={
        "name": "device", "memory_gb": "memory (GB)",
        "mem_bandwidth_gbps": "memory bandwidth (GB/s)",
        "peak_fp16_tflops": "peak FP16 (TFLOP/s)", "peak_fp32_tflops": "peak FP32 (TFLOP/s)",
        "int8_tops": "INT8 (TOPS)", "typical_power_w": "typical power (W)",
    })
