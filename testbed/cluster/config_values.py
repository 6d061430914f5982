"""Checked reading of config values: mappings with known keys, quantities with units.

Each helper raises a one-line :class:`ConfigError` naming the file (``source``) and the
field path (e.g. ``links[3].bandwidth``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from testbed.errors import ConfigError, bad_value
from testbed.units import parse_fraction


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
