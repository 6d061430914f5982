"""Calibrated devices: efficiencies fitted to a published single-device decode rate.

A device's compute time is the roofline ``max(F / (P*eff_flops), B / (W*eff_mem))`` (see
:class:`~testbed.cluster.device.DeviceSpec`), with ``P`` its catalog peak FLOP/s and ``W``
its catalog peak memory bandwidth (bytes/s). Data-sheet peaks are not what a device
reaches on a given kind of kernel, so ``eff_flops`` / ``eff_mem`` are fitted per device
type and weight dtype to one measurement: the time ``t`` (s) one decode step of a model
takes on that device alone.

**The equation.** For a decode step of ``model`` at weight dtype ``dtype`` (K/V cache in
``kv_dtype``) attending ``seq_len`` positions, ``F`` is the FLOP and ``B`` the bytes read of
the whole step: every block of every layer (``n_kv_heads`` attention blocks,
``proj_shards`` proj and ``ffn_shards`` ffn shards) plus the LM head, from
``step_work(get_cost_model("decode"), model, "decode", seq_len, seq_len - 1)``. Then

- bound ``memory``: ``eff_mem = B / (W*t)`` and ``eff_flops = max(0.5, F / (P*t))``, so
  that compute never takes longer than ``t``;
- bound ``compute``: ``eff_flops = F / (P*t)`` and ``eff_mem = max(0.7, B / (W*t))``;
- bound ``auto`` (default): ``memory`` when the step's arithmetic intensity ``F / B`` is
  below the default ridge point ``(P*0.5) / (W*0.7)``, else ``compute``.

(0.5 and 0.7 are the :class:`DeviceSpec` defaults.) With the fitted efficiencies the
roofline time of that step is ``t`` exactly. An efficiency above 1 means the measurement is
faster than the data-sheet peak allows, which is reported as an error.

``data/device_profiles.csv`` ships one fitted row per (device type, weight dtype), each
citing the publication of its measurement; ``testbed calibrate`` fits a new one and prints
the row to add. Only single-device figures are calibrated: a multi-device time includes
the network and the runtime's synchronisation.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

import pandas as pd

from testbed.cluster.catalog import (
    PROFILE_COLUMNS, catalog_peaks, make_device, profile_rows,
)
from testbed.cluster.device import DeviceSpec
from testbed.errors import ConfigError, bad_value
from testbed.model.catalog import get_model
from testbed.model.cost import get_cost_model
from testbed.model.dtypes import get_dtype
from testbed.model.spec import ModelSpec
from testbed.plan.work import step_work
from testbed.units import format_bytes, format_flop_rate

DEFAULT_EFF_FLOPS: float = DeviceSpec.eff_flops
"""The default fraction of peak FLOP/s (a bound ``memory`` fit keeps at least this)."""
DEFAULT_EFF_MEM: float = DeviceSpec.eff_mem
"""The default fraction of peak memory bandwidth (a bound ``compute`` fit keeps at least
this)."""
BOUNDS = ("auto", "memory", "compute")
DEFAULT_SEQ_LEN = 128
_DERIVED_DIGITS = 10  # significant digits of the derived CSV columns


@dataclass(frozen=True)
class Calibration:
    """One fitted profile and what it was fitted from. SI units inside.

    ``flops`` (FLOP) and ``bytes_read`` (bytes) are one decode step's totals,
    ``seconds_per_token`` (s) the measurement, ``peak_flops`` (FLOP/s) and
    ``mem_bw_bytes_per_s`` (bytes/s) the catalog peaks, ``bound`` the bound used
    (``memory`` or ``compute``; ``requested_bound`` may be ``auto``).
    """

    device: str
    dtype: str
    model: str
    seq_len: int
    kv_dtype: str
    seconds_per_token: float
    requested_bound: str
    bound: str
    flops: float
    bytes_read: float
    peak_flops: float
    mem_bw_bytes_per_s: float
    eff_flops: float
    eff_mem: float

    @property
    def ms_per_token(self) -> float:
        """The measurement in milliseconds per token."""
        return self.seconds_per_token * 1e3

    @property
    def achieved_flops_per_s(self) -> float:
        """FLOP/s reached in the measurement: ``F / t``."""
        return self.flops / self.seconds_per_token

    @property
    def achieved_bytes_per_s(self) -> float:
        """Bytes/s read in the measurement: ``B / t``."""
        return self.bytes_read / self.seconds_per_token

    @property
    def intensity_flop_per_byte(self) -> float:
        """The step's arithmetic intensity ``F / B`` (FLOP per byte)."""
        return self.flops / self.bytes_read

    @property
    def ridge_flop_per_byte(self) -> float:
        """The default ridge point ``(P*0.5) / (W*0.7)`` (FLOP per byte)."""
        return default_ridge(self.peak_flops, self.mem_bw_bytes_per_s)

    def device_spec(self, name: str = "calibrated") -> DeviceSpec:
        """A device of this type with the fitted efficiencies."""
        return make_device(name, self.device, eff_flops=self.eff_flops, eff_mem=self.eff_mem)

    def csv_row(self, source: str = "", notes: str = "") -> dict[str, str]:
        """This profile as a row of ``device_profiles.csv`` (text, column order)."""
        values = {
            "device": self.device, "dtype": self.dtype, "model": self.model,
            "seq_len": str(self.seq_len), "kv_dtype": self.kv_dtype,
            "ms_per_token": _number(self.ms_per_token), "bound": self.bound,
            "achieved_tflops": _number(self.achieved_flops_per_s / 1e12),
            "achieved_mem_bandwidth_gbps": _number(self.achieved_bytes_per_s / 1e9),
            "eff_flops": _number(self.eff_flops), "eff_mem": _number(self.eff_mem),
            "source": source, "notes": notes,
        }
        return {column: values[column] for column in PROFILE_COLUMNS}

    def csv_line(self, source: str = "", notes: str = "") -> str:
        """:meth:`csv_row` as one CSV line (quoted where needed, no newline)."""
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow(self.csv_row(source, notes).values())
        return buffer.getvalue()


def default_ridge(peak_flops: float, mem_bw_bytes_per_s: float) -> float:
    """FLOP per byte where the default roofline's two limits meet: ``(P*0.5) / (W*0.7)``."""
    return (peak_flops * DEFAULT_EFF_FLOPS) / (mem_bw_bytes_per_s * DEFAULT_EFF_MEM)


def decode_step_totals(model: ModelSpec, seq_len: int) -> tuple[float, float]:
    """``(F, B)``: FLOP and bytes read of one decode step of the whole model attending
    ``seq_len`` positions: every attention block, proj and ffn shard of every layer, plus
    the LM head (the ``decode`` cost preset)."""
    work = step_work(get_cost_model("decode"), model, "decode", seq_len, seq_len - 1)
    blocks = ((model.n_kv_heads, work.attn), (model.proj_shards, work.proj),
              (model.ffn_shards, work.ffn))
    flops = (model.n_layers * math.fsum(n * cost.flops for n, cost in blocks)
             + work.lm_head.flops)
    bytes_read = (model.n_layers * math.fsum(n * cost.bytes_read for n, cost in blocks)
                  + work.lm_head.bytes_read)
    return flops, bytes_read


def fit_efficiencies(flops: float, bytes_read: float, seconds: float, peak_flops: float,
                     mem_bw_bytes_per_s: float, bound: str = "auto") -> tuple[str, float, float]:
    """``(bound used, eff_flops, eff_mem)`` such that ``F`` FLOP reading ``B`` bytes take
    ``seconds`` on the roofline of a device with peaks ``P`` (FLOP/s) and ``W`` (bytes/s).

    See the module docstring for the equation. An efficiency above 1 raises a one-line
    :class:`ConfigError` (the measurement is faster than the data-sheet peak allows).
    """
    for value, field in ((flops, "flops"), (bytes_read, "bytes_read"), (seconds, "seconds"),
                         (peak_flops, "peak_flops"), (mem_bw_bytes_per_s, "mem_bw_bytes_per_s")):
        if not _is_number(value) or not (math.isfinite(value) and value > 0):
            raise bad_value(value, "a positive finite number", field=field)
    if bound not in BOUNDS:
        raise bad_value(bound, "one of " + ", ".join(BOUNDS), field="bound")
    if bound == "auto":
        ridge = default_ridge(peak_flops, mem_bw_bytes_per_s)
        bound = "memory" if flops / bytes_read < ridge else "compute"
    compute_fraction = flops / (peak_flops * seconds)
    memory_fraction = bytes_read / (mem_bw_bytes_per_s * seconds)
    if bound == "memory":
        eff_mem, eff_flops = memory_fraction, max(DEFAULT_EFF_FLOPS, compute_fraction)
    else:
        eff_flops, eff_mem = compute_fraction, max(DEFAULT_EFF_MEM, memory_fraction)
    for name, value, needed, peak in (
            ("eff_mem", memory_fraction, _gbps(bytes_read / seconds), _gbps(mem_bw_bytes_per_s)),
            ("eff_flops", compute_fraction, format_flop_rate(flops / seconds),
             format_flop_rate(peak_flops))):
        if value > 1.0:
            raise ConfigError(
                f"got {seconds * 1e3:.6g} ms per token, which needs {needed} but the data-sheet "
                f"peak is {peak} ({name} {value:.3g} > 1); expected a measurement no faster "
                "than the peak allows (check the device, dtype, model and rate)",
                field="seconds_per_token", value=seconds,
                expected="a time the data-sheet peaks allow")
    return bound, eff_flops, eff_mem


def calibrate(device: str, dtype: str, model: str, seconds_per_token: float, *,
              seq_len: int = DEFAULT_SEQ_LEN, kv_dtype: str | None = None,
              bound: str = "auto") -> Calibration:
    """Fit catalog type ``device`` at weight dtype ``dtype`` to one measured decode step:
    ``seconds_per_token`` (s) for catalog model ``model`` alone on one device, attending
    ``seq_len`` positions with its K/V cache in ``kv_dtype`` (the model's by default)."""
    peak_flops, mem_bw_bytes_per_s = catalog_peaks(device)
    dtype = get_dtype(dtype, field="dtype").name
    spec = get_model(model, field="model")
    kv = spec.kv_dtype if kv_dtype is None else get_dtype(kv_dtype, field="kv_dtype").name
    if not isinstance(seq_len, int) or isinstance(seq_len, bool) or seq_len < 1:
        raise bad_value(seq_len, "an integer >= 1 (positions attended)", field="seq_len")
    if not _is_number(seconds_per_token) or not (math.isfinite(seconds_per_token)
                                                 and seconds_per_token > 0):
        raise bad_value(seconds_per_token, "a positive time per token",
                        field="seconds_per_token")
    model_at_dtype = spec.with_overrides(weight_dtype=dtype, kv_dtype=kv)
    flops, bytes_read = decode_step_totals(model_at_dtype, seq_len)
    try:
        used, eff_flops, eff_mem = fit_efficiencies(
            flops, bytes_read, seconds_per_token, peak_flops, mem_bw_bytes_per_s, bound)
    except ConfigError as error:
        raise ConfigError(f"{device} running {spec.name} at {dtype}: {error.message}",
                          field=error.field, value=error.value,
                          expected=error.expected) from None
    return Calibration(device=device, dtype=dtype, model=spec.name, seq_len=seq_len,
                       kv_dtype=kv, seconds_per_token=float(seconds_per_token),
                       requested_bound=bound, bound=used, flops=flops, bytes_read=bytes_read,
                       peak_flops=peak_flops, mem_bw_bytes_per_s=mem_bw_bytes_per_s,
                       eff_flops=eff_flops, eff_mem=eff_mem)


def calibrate_row(row: dict[str, str]) -> Calibration:
    """Refit one row of ``device_profiles.csv`` from its inputs (device, dtype, model,
    seq_len, kv_dtype, ms_per_token, bound)."""
    try:
        seq_len = int(row["seq_len"])
    except (TypeError, ValueError):
        raise bad_value(row["seq_len"], "an integer", field="seq_len") from None
    try:
        ms = float(row["ms_per_token"])
    except (TypeError, ValueError):
        raise bad_value(row["ms_per_token"], "a number of ms", field="ms_per_token") from None
    return calibrate(row["device"], row["dtype"], row["model"], ms / 1e3, seq_len=seq_len,
                     kv_dtype=row["kv_dtype"], bound=row["bound"])


def profile_frame() -> pd.DataFrame:
    """The shipped profiles as a table for display (units in the column names)."""
    rows = profile_rows()
    columns = ["device", "dtype", "model", "seq_len", "kv_dtype", "ms_per_token", "bound",
               "achieved_tflops", "achieved_mem_bandwidth_gbps", "eff_flops", "eff_mem"]
    frame = pd.DataFrame([{c: row[c] for c in columns} for row in rows], columns=columns)
    frame["seq_len"] = frame["seq_len"].astype(int)
    for column in columns[columns.index("ms_per_token"):]:
        if column != "bound":
            frame[column] = frame[column].astype(float)
    return frame.rename(columns={
        "seq_len": "positions", "kv_dtype": "K/V", "ms_per_token": "ms/token",
        "achieved_tflops": "achieved (TFLOP/s)",
        "achieved_mem_bandwidth_gbps": "achieved (GB/s)"})


def format_calibration(fit: Calibration) -> str:
    """The report ``testbed calibrate`` prints."""
    requested = "" if fit.requested_bound == fit.bound else f" (requested {fit.requested_bound})"
    lines = [
        f"device        {fit.device}: peak {format_flop_rate(fit.peak_flops)}, "
        f"memory {_gbps(fit.mem_bw_bytes_per_s)}",
        f"model         {fit.model}, weights {fit.dtype}, K/V cache {fit.kv_dtype}, "
        f"{fit.seq_len} positions attended",
        f"measured      {fit.ms_per_token:.6g} ms per token "
        f"({1.0 / fit.seconds_per_token:.6g} tokens/s)",
        f"one step      F = {fit.flops / 1e9:.6g} GFLOP, B = {fit.bytes_read / 1e9:.6g} GB "
        f"({format_bytes(fit.bytes_read)}) read",
        f"intensity     {fit.intensity_flop_per_byte:.4g} FLOP/byte "
        f"(default ridge {fit.ridge_flop_per_byte:.4g} FLOP/byte)",
        f"achieved      {fit.achieved_flops_per_s / 1e12:.6g} TFLOP/s, "
        f"{fit.achieved_bytes_per_s / 1e9:.6g} GB/s",
        f"bound         {fit.bound}{requested}",
        f"eff_flops     {fit.eff_flops:.6g}",
        f"eff_mem       {fit.eff_mem:.6g}",
        "",
        "row for testbed/cluster/data/device_profiles.csv (fill in source and notes):",
        ",".join(PROFILE_COLUMNS),
        fit.csv_line(source="SOURCE", notes="NOTES"),
    ]
    return "\n".join(lines)


def _gbps(bytes_per_s: float) -> str:
    return f"{bytes_per_s / 1e9:.4g} GB/s"


def _number(value: float) -> str:
    return f"{value:.{_DERIVED_DIGITS}g}"


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
