"""A compute device: its peak rates, memory, efficiency factors and optional NIC limits.

Time for a piece of work follows the roofline: the slower of doing its FLOP at the attained
compute rate and reading its bytes at the attained memory bandwidth. "Attained" is peak x
efficiency x availability: efficiency is what the hardware reaches in practice, availability
is the share left by background load at that moment (a fraction in [0, 1]).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TypeGuard

from testbed.errors import ConfigError, bad_value
from testbed.model.dtypes import get_dtype

Profile = tuple[str, float, float]
"""One calibrated profile: (weight dtype name, eff_flops, eff_mem)."""


@dataclass(frozen=True)
class DeviceSpec:
    """One compute node. SI units: FLOP/s, bytes/s, bytes, bit/s.

    ``eff_flops`` and ``eff_mem`` are the fractions of peak FLOP/s and peak DRAM bandwidth
    reached in practice. Decode kernels on edge GPUs typically reach 50-80 % of DRAM
    bandwidth and far less of peak FLOP/s; the defaults (0.5, 0.7) are starting points to
    calibrate from measurements of the device at hand. ``nic_tx_bps`` / ``nic_rx_bps``
    optionally cap what the device can send / receive in total (bit/s).

    ``profiles`` holds calibrated efficiencies per weight dtype, ``(dtype, eff_flops,
    eff_mem)`` (:mod:`testbed.cluster.calibrate`; the catalog fills them from
    ``data/device_profiles.csv``). They take effect through :meth:`for_dtype`; until then
    ``eff_flops`` / ``eff_mem`` are the defaults. Setting ``eff_flops`` or ``eff_mem``
    explicitly (:meth:`with_overrides`, a topology file's device entry) clears them: the
    user's figure wins.
    """

    name: str
    model: str
    peak_flops: float
    mem_bw_bytes_per_s: float
    memory_bytes: float
    eff_flops: float = 0.5
    eff_mem: float = 0.7
    nic_tx_bps: float | None = None
    nic_rx_bps: float | None = None
    profiles: tuple[Profile, ...] = ()
    idle_power_w: float | None = None     # power when idle (W); None: unknown
    active_power_w: float | None = None   # power when busy computing (W); None: unknown

    def __post_init__(self):
        for field in ("name", "model"):
            value = getattr(self, field)
            if not isinstance(value, str) or not value:
                raise bad_value(value, "a non-empty string", field=field)
        for field in ("peak_flops", "mem_bw_bytes_per_s", "memory_bytes"):
            _check_positive(getattr(self, field), field)
        for field in ("nic_tx_bps", "nic_rx_bps", "idle_power_w", "active_power_w"):
            if getattr(self, field) is not None:
                _check_positive(getattr(self, field), field)
        for field in ("eff_flops", "eff_mem"):
            value = getattr(self, field)
            if not _is_number(value) or not 0.0 < value <= 1.0:
                raise bad_value(value, "a fraction in (0, 1]", field=field)
        object.__setattr__(self, "profiles", _check_profiles(self.profiles))

    def for_dtype(self, dtype: str) -> "DeviceSpec":
        """This device running weights in ``dtype``: a copy whose ``eff_flops`` / ``eff_mem``
        are its calibrated profile for that dtype, ``self`` when it has none.

        The copy holds no profiles (its efficiencies are settled), so applying
        ``for_dtype`` again changes nothing.
        """
        name = get_dtype(dtype, field="dtype").name
        for profile_dtype, eff_flops, eff_mem in self.profiles:
            if profile_dtype == name:
                return dataclasses.replace(self, eff_flops=eff_flops, eff_mem=eff_mem,
                                           profiles=())
        return self

    def compute_time_s(self, flops: float, bytes_read: float, avail_compute: float = 1.0,
                       avail_mem: float = 1.0) -> float:
        """Seconds to do ``flops`` FLOP reading ``bytes_read`` bytes (roofline maximum).

        ``avail_compute`` / ``avail_mem`` are the fractions of the device free of background
        load; a needed resource with availability 0 gives ``math.inf``; no work gives 0.0.
        """
        if flops < 0 or bytes_read < 0:
            raise ValueError(f"work must be >= 0; got {flops} FLOP and {bytes_read} bytes")
        for avail in (avail_compute, avail_mem):
            if not 0.0 <= avail <= 1.0:
                raise ValueError(f"availability must be in [0, 1]; got {avail}")
        compute_s = _time(flops, self.peak_flops * self.eff_flops * avail_compute)
        memory_s = _time(bytes_read, self.mem_bw_bytes_per_s * self.eff_mem * avail_mem)
        return max(compute_s, memory_s)

    def with_overrides(self, **fields) -> "DeviceSpec":
        """A copy with some fields replaced (same names as the dataclass fields)."""
        allowed = [f.name for f in dataclasses.fields(self)]
        for key in fields:
            if key not in allowed:
                raise ConfigError(f"got unknown device field {key!r}; expected one of "
                                  f"{', '.join(allowed)}", field=key, value=key)
        if ("eff_flops" in fields or "eff_mem" in fields) and "profiles" not in fields:
            fields["profiles"] = ()  # an explicit efficiency wins over calibrated profiles
        return dataclasses.replace(self, **fields)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_positive(value: object, field: str) -> None:
    if not _is_number(value) or not (math.isfinite(value) and value > 0):
        raise bad_value(value, "a positive finite number", field=field)


def _check_profiles(profiles: object) -> tuple[Profile, ...]:
    """``profiles`` as a tuple of ``(dtype, eff_flops, eff_mem)``, each dtype once."""
    expected = "(dtype, eff_flops, eff_mem) triples"
    if not isinstance(profiles, (tuple, list)):
        raise bad_value(profiles, expected, field="profiles")
    checked: dict[str, Profile] = {}
    for i, profile in enumerate(profiles):
        field = f"profiles[{i}]"
        if not isinstance(profile, (tuple, list)) or len(profile) != 3:
            raise bad_value(profile, expected, field=field)
        dtype = get_dtype(profile[0], field=f"{field}.dtype").name
        if dtype in checked:
            raise ConfigError(f"got a second profile for dtype {dtype!r}; expected one per "
                              "dtype", field=field, value=dtype)
        for name, value in zip(("eff_flops", "eff_mem"), profile[1:]):
            if not _is_number(value) or not 0.0 < value <= 1.0:
                raise bad_value(value, "a fraction in (0, 1]", field=f"{field}.{name}")
        checked[dtype] = (dtype, float(profile[1]), float(profile[2]))
    return tuple(checked.values())


def _time(amount: float, rate: float) -> float:
    """``amount / rate`` with 0 work taking 0 s and a zero rate taking forever."""
    if amount == 0:
        return 0.0
    if rate == 0:
        return math.inf
    return amount / rate
