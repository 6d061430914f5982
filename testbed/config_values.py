"""Checked reading of config values: mappings with known keys, quantities with units.

Low in the layers (beside :mod:`testbed.units` and :mod:`testbed.errors`): every reader of
config files uses it, the cluster, trace and experiment sections alike.

Each helper raises a one-line :class:`ConfigError` naming the file (``source``) and the
field path (e.g. ``links[3].bandwidth``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from testbed.errors import ConfigError, bad_value
from testbed.units import parse_fraction

if TYPE_CHECKING:
    from testbed.traces.series import Series


def relocate(error: ConfigError, *, source: str, field: str) -> ConfigError:
    """``error`` re-issued for ``field`` of file ``source``."""
    return ConfigError(error.message, source=source, field=field, value=error.value,
                       expected=error.expected)


def mapping(value: object, *, source: str, field: str | None, what: str) -> dict:
    """``value`` if it is a mapping, else an error saying a ``what`` was expected."""
    if not isinstance(value, dict):
        raise bad_value(value, f"a mapping ({what})", source=source, field=field)
    return value


def check_keys(entry: dict, allowed: Iterable[str], *, source: str, field: str | None,
               required: Iterable[str] = ()) -> None:
    """Refuse keys outside ``allowed`` and report missing ``required`` keys."""
    allowed = list(allowed)
    prefix = f"{field}." if field else ""
    for key in entry:
        if key not in allowed:
            raise ConfigError(f"got unknown key {key!r}; expected one of {', '.join(allowed)}",
                              source=source, field=f"{prefix}{key}", value=key)
    for key in required:
        if key not in entry:
            raise ConfigError("missing; this key is required", source=source,
                              field=f"{prefix}{key}")


def name(value: object, *, source: str, field: str) -> str:
    """A non-empty string naming a node or a catalog entry."""
    if not isinstance(value, str) or not value.strip():
        raise bad_value(value, "a non-empty name (string)", source=source, field=field)
    return value


def quantity(parse: Callable[[object], float], value: object, *, source: str, field: str,
             what: str, allow_zero: bool = False) -> float:
    """A quantity with a unit, parsed by one of :mod:`testbed.units` (SI result), > 0.

    ``allow_zero`` accepts 0 too (latencies). Bare numbers are errors.
    """
    try:
        number = parse(value)
    except ConfigError as error:
        raise relocate(error, source=source, field=field) from None
    if number < 0 or (number == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise bad_value(value, f"a {what} {bound}", source=source, field=field)
    return number


def efficiency(value: object, *, source: str, field: str) -> float:
    """A fraction in (0, 1]: ``0.6`` or ``"60 %"``."""
    try:
        number = parse_fraction(value)
    except ConfigError as error:
        raise relocate(error, source=source, field=field) from None
    if number == 0:
        raise bad_value(value, "a fraction in (0, 1]", source=source, field=field)
    return number


def point_series(spec: dict, parse_value: Callable[[object, str], float], *, source: str,
                 field: str, unit: str, example: str, value_name: str = "value") -> Series:
    """A piecewise-constant :class:`Series` from ``{points: [[time, value], ...], loop}``.

    ``parse_value(value, field)`` turns one value into its SI number (raising a located
    ConfigError); ``example`` shows one point in the error message, e.g. ``['5 s', '30 %']``.
    """
    from testbed.traces.series import Series   # the traces package imports this module
    from testbed.units import parse_time

    points = spec.get("points")
    if not isinstance(points, list) or not points:
        raise bad_value(points, f"a non-empty list of [time, {value_name}] points such as "
                        f"[{example}]", source=source, field=f"{field}.points")
    times, values = [], []
    for k, point in enumerate(points):
        where = f"{field}.points[{k}]"
        if not isinstance(point, list) or len(point) != 2:
            raise bad_value(point, f"a [time, {value_name}] pair such as {example}",
                            source=source, field=where)
        times.append(quantity(parse_time, point[0], source=source, field=where, what="time",
                              allow_zero=True))
        values.append(parse_value(point[1], where))
    loop = None
    if "loop" in spec:
        loop = quantity(parse_time, spec["loop"], source=source, field=f"{field}.loop",
                        what="loop period")
    try:
        return Series(tuple(times), tuple(values), loop, unit=unit,
                      provenance=f"{source}: {field}")
    except ConfigError as error:
        raise relocate(error, source=source, field=field) from None
