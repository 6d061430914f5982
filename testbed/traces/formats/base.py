"""The trace-format interface and registry.

A format is one file in this package that registers a :class:`TraceFormat` under its name
in ``TRACE_FORMATS``: ``detect(first_lines, path) -> bool`` says whether a file looks like
it (``first_lines``: its first non-blank lines, stripped, comments included), and
``read(path, **options) -> Series`` reads it into capacities in bit/s, times in s from
the first sample. ``options`` lists the reader's options (config spelling, values with
units as strings); an unknown option or a bad value is a :class:`TraceOptionError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from testbed.errors import ConfigError
from testbed.registry import Registry
from testbed.traces.series import Series
from testbed.units import UnitError, parse_time, rate_unit_factor

UNIT = "bit/s"


class TraceOptionError(ConfigError):
    """A bad reader option; ``field`` is the option's name (to be placed by the caller)."""


@dataclass(frozen=True)
class TraceFormat:
    """One trace format: its detector, its reader and the options the reader accepts."""

    name: str
    detect: Callable[[list[str], Path], bool]
    read: Callable[..., Series]
    options: Mapping[str, str] = field(default_factory=dict)  # name -> what it means
    summary: str = ""

    def load(self, path: str | Path, **options) -> Series:
        """``read(path, **options)`` after refusing options this format does not know."""
        for key in options:
            if key not in self.options:
                known = ", ".join(self.options) or "none"
                raise TraceOptionError(
                    f"got unknown option {key!r} for trace format {self.name!r}; expected "
                    f"one of: {known}", field=key, value=key)
        return self.read(Path(path), **options)


TRACE_FORMATS: Registry[TraceFormat] = Registry("trace format")


def register(fmt: TraceFormat) -> TraceFormat:
    """Register ``fmt`` under its name."""
    return TRACE_FORMATS.register(fmt.name)(fmt)


def series(path: Path, fmt: str, times_s, values_bps, *, duration_s: float | None = None,
           loop_period_s: float | None = None) -> Series:
    """The Series a reader returns: bit/s, provenance naming the file and the format."""
    return Series(tuple(times_s), tuple(values_bps), loop_period_s, UNIT,
                  f"{path} ({fmt})", duration_s)


def time_option(name: str, value: object) -> float:
    """A time option with a unit (e.g. ``"100 ms"``), in s, > 0."""
    try:
        seconds = parse_time(value)
    except UnitError as error:
        raise TraceOptionError(error.message, field=name, value=value) from None
    if seconds <= 0:
        raise TraceOptionError(f"got {value!r}; expected a time > 0 such as '1 s'",
                               field=name, value=value)
    return seconds


def choice_option(name: str, value: object, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (case-insensitive)."""
    text = value.strip().lower() if isinstance(value, str) else None
    if text not in choices:
        raise TraceOptionError(f"got {value!r}; expected one of {', '.join(choices)}",
                               field=name, value=value)
    return text


def rate_unit_option(name: str, value: object) -> float:
    """A rate unit (e.g. ``"B/s"``, ``"Mbit/s"``) as bit/s per unit."""
    try:
        return rate_unit_factor(value)
    except UnitError as error:
        raise TraceOptionError(error.message, field=name, value=value) from None
