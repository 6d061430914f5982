"""Typed config sections: one frozen dataclass per section of a config file, whose fields
are the single source of the section's keys, defaults, checks and documentation.

A field is declared with :func:`setting`::

    @dataclass(frozen=True)
    class Workload:
        prompt_tokens: int = setting(128, integer(1), "prompt length (tokens)",
                                     sim="prompt_tokens")

- the **key** is the field's name, or ``key=`` when the file spells it differently from
  the Python name (``mss`` in a file, ``mss_bytes`` in code: units in every public name);
- the **default** is written as a file would write it (``"200 ms"``, ``"technology"``):
  the resolved config shows it so, and the field's typed default is that value parsed;
- the **parser** turns a file's value into the typed one, or raises a one-line
  :class:`ConfigError` naming the file, the dotted field and what was expected;
- ``sim=`` names the engine setting (a :class:`testbed.sim.engine.SimConfig` field) it
  feeds, so that a scenario's engine configuration is assembled from the declarations.

:func:`parse_section` reads a mapping into the dataclass (unknown keys, missing required
keys and bad values are errors), :func:`defaults_of` gives the defaults as a file would
write them, :func:`describe` lists every key for ``testbed settings``.

Low in the layers, beside :mod:`testbed.config_values`: it imports nothing from testbed's
packages.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from typing import Any

from testbed import config_values as cv
from testbed.errors import bad_value
from testbed.units import parse_bytes, parse_time

#: Marks a setting without a default: the key must be given.
REQUIRED: Any = object()
#: ``(value, source, field) -> typed value``; raises a located ConfigError.
Parser = Callable[[object, str, str], Any]
_META = "setting"


@dataclasses.dataclass(frozen=True)
class Setting:
    """How one key of a section is read (see the module docstring)."""

    key: str
    default: object
    parse: Parser
    doc: str
    sim: str | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


def setting(default: object, parse: Parser, doc: str, *, key: str | None = None,
            sim: str | None = None) -> Any:
    """A dataclass field read from a config file (see the module docstring)."""
    meta = {_META: Setting(key or "", default, parse, doc, sim)}
    if default is REQUIRED:       # keyword-only: it may follow fields with defaults
        return dataclasses.field(kw_only=True, metadata=meta)
    return dataclasses.field(default=parse(default, "<defaults>", key or "default"),
                             metadata=meta)


def settings(cls: type) -> Iterator[tuple[str, Setting]]:
    """``(attribute, setting)`` of every declared field of section ``cls``, in order."""
    for f in dataclasses.fields(cls):
        meta = f.metadata.get(_META)
        if meta is not None:
            yield f.name, dataclasses.replace(meta, key=meta.key or f.name)


def keys(cls: type) -> tuple[str, ...]:
    """The keys a file may give in section ``cls``."""
    return tuple(s.key for _, s in settings(cls))


def defaults_of(cls: type) -> dict:
    """The section's defaults as a file writes them; keys that are absent unless given
    (required ones, default None, sections with no such default) are left out."""
    return {s.key: s.default for _, s in settings(cls)
            if not s.required and s.default is not None and s.default != {}}


def parse_section(cls: type, value: object, *, source: str, field: str | None) -> Any:
    """``value`` (a mapping, or None for an absent section) read into section ``cls``."""
    entry = {} if value is None else cv.mapping(
        value, source=source, field=field, what="keys " + ", ".join(keys(cls)))
    declared = list(settings(cls))
    cv.check_keys(entry, [s.key for _, s in declared], source=source, field=field,
                  required=[s.key for _, s in declared if s.required])
    prefix = f"{field}." if field else ""
    return cls(**{name: s.parse(entry.get(s.key, s.default), source, prefix + s.key)
                  for name, s in declared})


def section(cls: type) -> Parser:
    """A parser reading a nested section into ``cls``."""
    def parse(value: object, source: str, field: str) -> Any:
        if isinstance(value, cls):       # a typed default
            return value
        return parse_section(cls, value, source=source, field=field)
    return parse


def subsection(cls: type, doc: str, *, key: str | None = None,
               sim: str | None = None) -> Any:
    """A field holding the nested section ``cls`` (its defaults are the section's);
    ``sim``: the engine setting the whole section is."""
    return setting(defaults_of(cls), section(cls), doc, key=key, sim=sim)


def sim_settings(instance: object) -> dict[str, Any]:
    """``{SimConfig field: value}`` of every setting of ``instance`` (and of its nested
    sections) declared with ``sim=``."""
    out: dict[str, Any] = {}
    for name, s in settings(type(instance)):
        value = getattr(instance, name)
        if s.sim is not None:
            out[s.sim] = value
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            out.update(sim_settings(value))
    return out


def describe(cls: type, prefix: str = "") -> Iterator[tuple[str, object, str]]:
    """``(dotted key, default as written, doc)`` of every key of ``cls``, nested sections
    expanded (their own row first)."""
    for name, s in settings(cls):
        key = prefix + s.key
        yield key, "(required)" if s.required else s.default, s.doc
        inner = _section_class(cls, name)
        if inner is not None:
            yield from describe(inner, key + ".")


def _section_class(cls: type, name: str) -> type | None:
    """The section class of field ``name`` of ``cls`` when it is a nested section."""
    default = next(f.default for f in dataclasses.fields(cls) if f.name == name)
    if dataclasses.is_dataclass(default) and not isinstance(default, type) and \
            any(True for _ in settings(type(default))):
        return type(default)
    return None


# --- parsers -----------------------------------------------------------------------------

def raw(value: object, source: str, field: str) -> object:
    """Any value, checked later by the code that needs its context."""
    return value


def integer(minimum: int) -> Parser:
    def parse(value: object, source: str, field: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise bad_value(value, f"an integer >= {minimum}", source=source, field=field)
        return value
    return parse


def boolean(value: object, source: str, field: str) -> bool:
    if not isinstance(value, bool):
        raise bad_value(value, "true or false", source=source, field=field)
    return value


def one_of(choices: tuple[str, ...] | list[str]) -> Parser:
    def parse(value: object, source: str, field: str) -> str:
        if value not in choices:
            raise bad_value(value, " or ".join(choices), source=source, field=field)
        return str(value)
    return parse


def number(*, minimum: float = -math.inf, above: float | None = None,
           maximum: float = math.inf, what: str = "a number") -> Parser:
    """A finite real number in [minimum, maximum] (or > ``above``)."""
    def parse(value: object, source: str, field: str) -> float:
        ok = not isinstance(value, bool) and isinstance(value, (int, float)) and \
            math.isfinite(value) and minimum <= value <= maximum and \
            (above is None or value > above)
        if not ok:
            raise bad_value(value, what, source=source, field=field)
        return float(value)   # type: ignore[arg-type]
    return parse


def name_or_none(value: object, source: str, field: str) -> str | None:
    return None if value is None else cv.name(value, source=source, field=field)


def duration(*, allow_zero: bool = False, none: bool = False) -> Parser:
    """A duration with a unit (``"200 ms"``) in seconds; ``none``: also None or ``"none"``
    (read as None)."""
    def parse(value: object, source: str, field: str) -> float | None:
        if none and value in (None, "none"):
            return None
        return cv.quantity(parse_time, value, source=source, field=field, what="duration",
                           allow_zero=allow_zero)
    return parse


def size_bytes(*, allow_zero: bool = False) -> Parser:
    """A size with a unit (``"64 KiB"``) in bytes."""
    def parse(value: object, source: str, field: str) -> float:
        return cv.quantity(parse_bytes, value, source=source, field=field, what="size",
                           allow_zero=allow_zero)
    return parse


