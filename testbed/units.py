"""The one place for units: parse "10 Mbit/s", "5 ms", "8 GiB", "2 TFLOP/s"; format back.

Inside the testbed everything is in SI base units: seconds, bytes, bit/s, bytes/s, FLOP,
FLOP/s. Config files may write quantities with units; this module turns them into those
base units. A bare number where a unit is required is an error (``require_unit=True``, the
default for strings read from config files), and so is an unknown unit.

Bytes and bits are distinct dimensions of one quantity: ``parse_bytes("8 Mbit")`` is
1e6 bytes and ``parse_bitrate("1 MB/s")`` is 8e6 bit/s. The factor 8 lives here only.
"""

from __future__ import annotations

import math
import re

from testbed.errors import ConfigError

__all__ = [
    "UnitError", "parse_time", "parse_length", "parse_bytes", "parse_bitrate", "parse_byterate",
    "parse_flops", "parse_flop_rate", "parse_fraction", "parse_power", "format_time",
    "format_bytes",
    "format_bitrate", "format_flop_rate", "BITS_PER_BYTE", "rate_unit_factor",
    "time_unit_factor",
]

BITS_PER_BYTE = 8

_SI = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
_IEC = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50}


class UnitError(ConfigError):
    """A quantity that could not be parsed (bad number, missing or unknown unit)."""


def _build_tables() -> dict[str, dict[str, float]]:
    """Unit spelling -> factor to the base unit, per dimension."""
    time = {"s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
            "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9, "min": 60.0, "h": 3600.0}
    size: dict[str, float] = {}      # to bytes
    rate: dict[str, float] = {}      # to bit/s
    flops: dict[str, float] = {}
    flop_rate: dict[str, float] = {}
    for prefixes in (_SI, _IEC):
        for p, f in prefixes.items():
            size[f"{p}B"] = f
            size[f"{p}byte"] = f
            size[f"{p}bytes"] = f
            size[f"{p}bit"] = f / BITS_PER_BYTE
            size[f"{p}bits"] = f / BITS_PER_BYTE
            size[f"{p}b"] = f / BITS_PER_BYTE
            for spelling in ("bit/s", "bps", "b/s", "bits/s"):
                rate[f"{p}{spelling}"] = f
            for spelling in ("B/s", "Bps", "byte/s", "bytes/s"):
                rate[f"{p}{spelling}"] = f * BITS_PER_BYTE
    for p, f in _SI.items():
        for spelling in ("FLOP", "flop", "FLOPs", "flops"):
            flops[f"{p}{spelling}"] = f
        for spelling in ("FLOP/s", "flop/s", "FLOPS", "FLOPs/s", "flops/s"):
            flop_rate[f"{p}{spelling}"] = f
    length = {"m": 1.0, "cm": 1e-2, "mm": 1e-3, "km": 1e3}
    power = {"W": 1.0, "mW": 1e-3, "kW": 1e3}
    return {"time": time, "size": size, "rate": rate, "flops": flops, "flop_rate": flop_rate,
            "length": length, "power": power}


_TABLES = _build_tables()
_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([^\s\d].*?)?\s*$")
_EXAMPLES = {"time": "'5 ms', '2 s'", "length": "'5 m', '30 cm'",
             "size": "'8 GiB', '512 MB', '10 Mbit'",
             "rate": "'10 Mbit/s', '1.5 Gbps', '100 MB/s'", "flops": "'3 GFLOP'",
             "flop_rate": "'2 TFLOP/s', '500 GFLOPS'", "power": "'7 W', '500 mW'"}


def _parse(value: object, dimension: str, require_unit: bool) -> float:
    """Parse ``value`` into the base unit of ``dimension``."""
    expected = f"a {dimension.replace('_', ' ')} with a unit such as {_EXAMPLES[dimension]}"
    if isinstance(value, bool):
        raise UnitError(f"got {value!r}; expected {expected}", value=value, expected=expected)
    if isinstance(value, (int, float)):
        if require_unit:
            raise UnitError(f"got bare number {value!r} without a unit; expected {expected}",
                            value=value, expected=expected)
        number = float(value)
    elif isinstance(value, str):
        match = _QUANTITY.match(value)
        if not match:
            raise UnitError(f"got {value!r}; expected {expected}", value=value, expected=expected)
        number_text, unit = match.groups()
        number = float(number_text)
        if unit is None:
            if require_unit:
                raise UnitError(f"got bare number {value!r} without a unit; expected {expected}",
                                value=value, expected=expected)
        else:
            factor = _TABLES[dimension].get(unit)
            if factor is None:
                raise UnitError(f"got unknown unit {unit!r} in {value!r}; expected {expected}",
                                value=value, expected=expected)
            number *= factor
    else:
        raise UnitError(f"got {value!r}; expected {expected}", value=value, expected=expected)
    if not math.isfinite(number):
        raise UnitError(f"got {value!r}; expected a finite {dimension}", value=value,
                        expected=expected)
    return number


def parse_time(value: object, *, require_unit: bool = True) -> float:
    """Duration in seconds from e.g. ``"5 ms"``."""
    return _parse(value, "time", require_unit)


def parse_length(value: object, *, require_unit: bool = True) -> float:
    """A distance in metres (e.g. "5 m", "30 cm")."""
    return _parse(value, "length", require_unit)


def parse_bytes(value: object, *, require_unit: bool = True) -> float:
    """Data size in bytes from e.g. ``"8 GiB"`` or ``"10 Mbit"``."""
    return _parse(value, "size", require_unit)


def parse_bitrate(value: object, *, require_unit: bool = True) -> float:
    """Data rate in bit/s from e.g. ``"10 Mbit/s"``, ``"1.5 Gbps"`` or ``"100 MB/s"``."""
    return _parse(value, "rate", require_unit)


def parse_byterate(value: object, *, require_unit: bool = True) -> float:
    """Data rate in bytes/s from e.g. ``"68 GB/s"`` or ``"800 Mbit/s"``."""
    return _parse(value, "rate", require_unit) / BITS_PER_BYTE


def parse_flops(value: object, *, require_unit: bool = True) -> float:
    """Operation count in FLOP from e.g. ``"3 GFLOP"``."""
    return _parse(value, "flops", require_unit)


def parse_flop_rate(value: object, *, require_unit: bool = True) -> float:
    """Compute rate in FLOP/s from e.g. ``"2 TFLOP/s"`` or ``"500 GFLOPS"``."""
    return _parse(value, "flop_rate", require_unit)


def parse_power(value: object, *, require_unit: bool = True) -> float:
    """Power in watts from e.g. ``"7 W"`` or ``"500 mW"``."""
    return _parse(value, "power", require_unit)


def parse_fraction(value: object) -> float:
    """A dimensionless fraction in [0, 1]; accepts ``0.3`` or ``"30 %"``."""
    expected = "a fraction between 0 and 1 (or a percentage such as '30 %')"
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            number = float(value.strip()[:-1]) / 100.0
        except ValueError:
            raise UnitError(f"got {value!r}; expected {expected}", value=value,
                            expected=expected) from None
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        raise UnitError(f"got {value!r}; expected {expected}", value=value, expected=expected)
    if not 0.0 <= number <= 1.0:
        raise UnitError(f"got {value!r}; expected {expected}", value=value, expected=expected)
    return number


def rate_unit_factor(unit: object, *, lowercase_bits: bool = False) -> float:
    """Bit/s per one ``unit`` (a rate unit alone, e.g. ``"Mbit/s"``, ``"kbps"``, ``"B/s"``).

    ``lowercase_bits`` also accepts an all-lowercase spelling, read as bits with the SI
    prefix in any case (``"mbps"`` = Mbit/s, ``"gbit/s"`` = Gbit/s), as column names often
    write it; bytes then need a capital ``B`` (``"MBps"``).
    """
    expected = "a rate unit such as 'bit/s', 'Mbit/s', 'kbps' or 'B/s'"
    if not isinstance(unit, str):
        raise UnitError(f"got {unit!r}; expected {expected}", value=unit, expected=expected)
    text = unit.strip()
    factor = _TABLES["rate"].get(text)
    if factor is None and lowercase_bits and text and text == text.lower():
        factor = _TABLES["rate"].get(text[0].upper() + text[1:])
    if factor is None:
        raise UnitError(f"got unknown rate unit {unit!r}; expected {expected}", value=unit,
                        expected=expected)
    return factor


def time_unit_factor(unit: str) -> float:
    """Seconds per one ``unit`` (a time unit alone, e.g. ``"s"``, ``"ms"``, ``"min"``)."""
    expected = "a time unit such as 's', 'ms' or 'min'"
    factor = _TABLES["time"].get(unit.strip()) if isinstance(unit, str) else None
    if factor is None:
        raise UnitError(f"got unknown time unit {unit!r}; expected {expected}", value=unit,
                        expected=expected)
    return factor


def _format(value: float, unit: str, prefixes: dict[str, float], digits: int) -> str:
    if value == 0 or not math.isfinite(value):
        return f"{value:g} {unit}"
    best = ""
    for p, f in sorted(prefixes.items(), key=lambda kv: kv[1]):
        if p == "K":
            continue
        if abs(value) >= f:
            best = p
    scaled = value / prefixes[best]
    text = f"{scaled:.{digits}g}"
    if "e" in text:  # e.g. 1000 MiB at 3 digits: write it out rather than as 1e+03
        text = f"{scaled:.0f}"
    return f"{text} {best}{unit}"


def format_time(seconds: float, digits: int = 4) -> str:
    """Human-readable duration: ``0.005 -> '5 ms'``."""
    if seconds == 0 or not math.isfinite(seconds):
        return f"{seconds:g} s"
    for unit, factor in (("h", 3600.0), ("min", 60.0), ("s", 1.0), ("ms", 1e-3),
                         ("us", 1e-6), ("ns", 1e-9)):
        if abs(seconds) >= factor or unit == "ns":
            if unit in ("h", "min") and abs(seconds) < 3 * factor:
                continue
            return f"{seconds / factor:.{digits}g} {unit}"
    raise AssertionError("unreachable")


def format_bytes(size_bytes: float, digits: int = 4) -> str:
    """Human-readable size in IEC units: ``8 * 2**30 -> '8 GiB'``."""
    return _format(size_bytes, "B", {"": 1.0, **_IEC}, digits)


def format_bitrate(bps: float, digits: int = 4) -> str:
    """Human-readable bit rate: ``1e7 -> '10 Mbit/s'``."""
    return _format(bps, "bit/s", _SI, digits)


def format_flop_rate(flop_per_s: float, digits: int = 4) -> str:
    """Human-readable compute rate: ``2e12 -> '2 TFLOP/s'``."""
    return _format(flop_per_s, "FLOP/s", _SI, digits)
