"""The device catalog: real edge (and a few reference) devices from ``data/devices.csv``.

Figures are in the units of the table's column names (GB = 1e9 bytes, GB/s, TFLOP/s, TOPS,
W); :func:`make_device` turns a row into a :class:`DeviceSpec` in SI units. Provenance of
every figure: ``../shared/reference/devices.csv`` and its README; the ``source`` column
names the document each row comes from.

``data/device_profiles.csv`` holds calibrated efficiencies per device type and weight dtype,
fitted to published single-device decode rates (:mod:`testbed.cluster.calibrate`);
:func:`make_device` attaches a type's profiles to its devices (see
:meth:`DeviceSpec.for_dtype`).
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

import pandas as pd

from testbed.cluster.power import idle_power_w

from testbed.cluster.device import DeviceSpec, Profile
from testbed.errors import ConfigError, bad_value, close_matches
from testbed.model.dtypes import get_dtype

DEVICES_CSV = Path(__file__).parent / "data" / "devices.csv"
PROFILES_CSV = Path(__file__).parent / "data" / "device_profiles.csv"
PROFILE_COLUMNS = ("device", "dtype", "model", "seq_len", "kv_dtype", "ms_per_token", "bound",
                   "achieved_tflops", "achieved_mem_bandwidth_gbps", "eff_flops", "eff_mem",
                   "source", "notes")
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

    Peak compute is the FP16 peak when the catalog has one, else the FP32 peak. The type's
    calibrated profiles (``data/device_profiles.csv``) go into ``profiles``; efficiencies
    stay at the defaults until :meth:`DeviceSpec.for_dtype`. ``overrides`` use
    :class:`DeviceSpec` field names in SI units (e.g. ``memory_bytes=4 * 2**30``); an
    ``eff_flops`` or ``eff_mem`` override clears the profiles.
    """
    figures = get_device_type(model_name)
    peak_flops, mem_bw_bytes_per_s = catalog_peaks(model_name)
    device = DeviceSpec(name=name, model=model_name, peak_flops=peak_flops,
                        mem_bw_bytes_per_s=mem_bw_bytes_per_s,
                        memory_bytes=figures["memory_gb"] * 1e9,
                        profiles=device_profiles(model_name),
                        idle_power_w=idle_power_w(model_name),
                        active_power_w=figures["typical_power_w"] or None)
    return device.with_overrides(**overrides) if overrides else device


def catalog_peaks(model_name: str) -> tuple[float, float]:
    """``(peak FLOP/s, peak memory bandwidth in bytes/s)`` of catalog type ``model_name``:
    the FP16 peak when the catalog has one, else the FP32 peak."""
    figures = get_device_type(model_name)
    tflops = figures["peak_fp16_tflops"] or figures["peak_fp32_tflops"]
    return tflops * 1e12, figures["mem_bandwidth_gbps"] * 1e9


def device_profiles(model_name: str) -> tuple[Profile, ...]:
    """The calibrated ``(dtype, eff_flops, eff_mem)`` of catalog type ``model_name``, in
    file order (empty when the table has none)."""
    return _profiles().get(model_name, ())


def profile_rows() -> list[dict[str, str]]:
    """The rows of ``data/device_profiles.csv`` as text, in file order (checked as
    :func:`device_profiles` checks them)."""
    _profiles()
    return [dict(row) for row in _profile_table()]


@lru_cache(maxsize=1)
def _profile_table() -> tuple[dict[str, str], ...]:
    source = str(PROFILES_CSV)
    with open(PROFILES_CSV, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != PROFILE_COLUMNS:
            raise ConfigError(f"got columns {reader.fieldnames}; expected "
                              f"{', '.join(PROFILE_COLUMNS)}", source=source, field="header")
        return tuple(reader)


@lru_cache(maxsize=1)
def _profiles() -> dict[str, tuple[Profile, ...]]:
    """Device type -> its profiles, every row checked (file and line named on error)."""
    source = str(PROFILES_CSV)
    profiles: dict[str, dict[str, Profile]] = {}
    for line, row in enumerate(_profile_table(), start=2):
        where = f"line {line}"
        device = row["device"]
        if device not in _rows():
            raise ConfigError(f"got unknown device type {device!r}; "
                              f"{close_matches(device, _rows())}"
                              "expected a device type of devices.csv", source=source,
                              field=f"{where}.device", value=device)
        try:
            dtype = get_dtype(row["dtype"], field="dtype").name
        except ConfigError as error:
            raise error.located(source=source, field_prefix=where) from None
        efficiencies = []
        for column in ("eff_flops", "eff_mem"):
            try:
                value: object = float(row[column])
            except (TypeError, ValueError):
                value = row[column]
            if not isinstance(value, float) or not 0.0 < value <= 1.0:
                raise bad_value(row[column], "a fraction in (0, 1]", source=source,
                                field=f"{where}.{column}")
            efficiencies.append(value)
        if dtype in profiles.setdefault(device, {}):
            raise ConfigError(f"got a second row for {device} at {dtype}; expected one row per "
                              "device and dtype", source=source, field=where, value=dtype)
        eff_flops, eff_mem = efficiencies
        profiles[device][dtype] = (dtype, eff_flops, eff_mem)
    return {device: tuple(rows.values()) for device, rows in profiles.items()}


def catalog_frame() -> pd.DataFrame:
    """The catalog as a table for display, with units in the column names."""
    frame = pd.DataFrame(list(_rows().values()))
    return frame.rename(columns={
        "name": "device", "memory_gb": "memory (GB)",
        "mem_bandwidth_gbps": "memory bandwidth (GB/s)",
        "peak_fp16_tflops": "peak FP16 (TFLOP/s)", "peak_fp32_tflops": "peak FP32 (TFLOP/s)",
        "int8_tops": "INT8 (TOPS)", "typical_power_w": "typical power (W)",
    })
