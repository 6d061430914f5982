"""A capacity trace from a scenario entry: a file or a generator, plus replay options.

    trace: {file: ../shared/traces/lumos5g_mmwave/5g_trace_100_walking, format: lumos5g,
            offset: "30 s", scale_to_mean: "200 Mbit/s", loop: true, clip_min: "1 Mbit/s"}
    trace: {generator: gilbert_elliott, step: "100 ms", duration: "60 s",
            good: "50 Mbit/s", bad: "2 Mbit/s", mean_good: "5 s", mean_bad: "1 s"}

File entries: ``file`` (relative paths: the scenario's folder first, then the current
folder), ``format`` (default: detected) and the reader's options (e.g. ``window`` for
mahimahi, ``gaps`` for oboe, ``direction`` for ucc5g). Generator entries: ``generator``,
``duration``, ``step`` (required for the random ones) and the generator's parameters
with units. Replay options for both: ``offset`` (time), ``scale`` (factor) or
``scale_to_mean`` (rate), ``loop`` (true/false), ``clip_min`` (rate); see
:mod:`testbed.traces.replay`. Errors name the scenario file and the field (e.g.
``links[0].trace.offset``); errors inside a trace file name that file and its line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from testbed import config_values as cv
from testbed.errors import ConfigError, bad_value
from testbed.traces.formats import TRACE_FORMATS, TraceOptionError
from testbed.traces.generators import REQUIRED, TRACE_GENERATORS, keyword
from testbed.traces.load import detect_format
from testbed.traces.replay import replay
from testbed.traces.series import Series
from testbed.units import parse_bitrate, parse_time

REPLAY_KEYS = ("offset", "scale", "scale_to_mean", "loop", "clip_min")
FILE_KEYS = ("file", "format")
GENERATOR_KEYS = ("generator", "duration", "step")


def trace_from_config(entry: object, *, source: str, field: str, base_dir: Path,
                      rng_for: Callable[[], np.random.Generator]) -> Series:
    """The Series (bit/s) a ``trace:`` entry describes, with its replay options applied.
    ``rng_for()`` gives the random generator for synthetic traces (called only for them)."""
    entry = cv.mapping(entry, source=source, field=field,
                       what="a trace: {file: PATH, ...} or {generator: NAME, ...}")
    if ("file" in entry) == ("generator" in entry):
        raise bad_value(sorted(entry), "exactly one of 'file' or 'generator'", source=source,
                        field=field)
    options = _replay_options(entry, source=source, field=field)
    if "file" in entry:
        series = _from_file(entry, source=source, field=field, base_dir=Path(base_dir))
    else:
        series = _from_generator(entry, source=source, field=field, rng_for=rng_for)
    try:
        return replay(series, **options)
    except ConfigError as error:
        raise ConfigError(error.message, source=source, field=f"{field}.{error.field}",
                          value=error.value) from None


def resolve_file(value: object, *, source: str, field: str, base_dir: Path) -> Path:
    """An existing file: absolute, else under ``base_dir``, else under the current folder."""
    name = cv.name(value, source=source, field=field)
    path = Path(name).expanduser()
    candidates = [path] if path.is_absolute() else [Path(base_dir) / path, Path.cwd() / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    where = " or ".join(str(c) for c in candidates)
    raise ConfigError(f"got {name!r}, which is not a file (looked for {where}); expected a "
                      "trace file path, relative to the scenario's folder or the current one",
                      source=source, field=field, value=name)


def _from_file(entry: dict, *, source: str, field: str, base_dir: Path) -> Series:
    path = resolve_file(entry["file"], source=source, field=f"{field}.file", base_dir=base_dir)
    if "format" in entry:
        name = cv.name(entry["format"], source=source, field=f"{field}.format")
        reader = TRACE_FORMATS.get(name, source=source, field=f"{field}.format")
    else:
        reader = TRACE_FORMATS.get(detect_format(path))
    cv.check_keys(entry, (*FILE_KEYS, *REPLAY_KEYS, *reader.options), source=source,
                  field=field)
    options = {key: value for key, value in entry.items()
               if key not in FILE_KEYS and key not in REPLAY_KEYS}
    try:
        return reader.load(path, **options)
    except TraceOptionError as error:
        raise ConfigError(error.message, source=source, field=f"{field}.{error.field}",
                          value=error.value) from None


def _from_generator(entry: dict, *, source: str, field: str,
                    rng_for: Callable[[], np.random.Generator]) -> Series:
    name = cv.name(entry["generator"], source=source, field=f"{field}.generator")
    generator = TRACE_GENERATORS.get(name, source=source, field=f"{field}.generator")
    required = ("duration", "step") if generator.random else ("duration",)
    cv.check_keys(entry, (*GENERATOR_KEYS, *REPLAY_KEYS, *generator.params), source=source,
                  field=field, required=required)
    duration = cv.quantity(parse_time, entry["duration"], source=source,
                           field=f"{field}.duration", what="duration")
    step = duration
    if "step" in entry:
        step = cv.quantity(parse_time, entry["step"], source=source, field=f"{field}.step",
                           what="step")
    params = {}
    for key, (kind, default) in generator.params.items():
        where = f"{field}.{key}"
        if key not in entry:
            if default is REQUIRED:
                raise ConfigError("missing; this key is required", source=source, field=where)
            params[keyword(key, kind)] = default
            continue
        params[keyword(key, kind)] = _parameter(kind, entry[key], source=source, field=where)
    rng = rng_for() if generator.random else None
    try:
        return generator(duration, step, rng, **params)
    except ValueError as error:
        raise ConfigError(f"{error}; expected parameters that fit generator {name!r}",
                          source=source, field=field) from None


def _parameter(kind: str, value: object, *, source: str, field: str):
    if kind == "rate":
        return cv.quantity(parse_bitrate, value, source=source, field=field, what="rate",
                           allow_zero=True)
    if kind == "time":
        return cv.quantity(parse_time, value, source=source, field=field, what="time")
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise bad_value(value, "a number >= 0", source=source, field=field)
        return float(value)
    if kind == "schedule":
        if not isinstance(value, list) or not value:
            raise bad_value(value, "a list of [time, rate] pairs such as "
                                   "[['0 s', '50 Mbit/s'], ['10 s', '5 Mbit/s']]",
                            source=source, field=field)
        points = []
        for k, point in enumerate(value):
            where = f"{field}[{k}]"
            if not isinstance(point, list) or len(point) != 2:
                raise bad_value(point, "a [time, rate] pair such as ['10 s', '5 Mbit/s']",
                                source=source, field=where)
            points.append((cv.quantity(parse_time, point[0], source=source, field=where,
                                       what="time", allow_zero=True),
                           cv.quantity(parse_bitrate, point[1], source=source, field=where,
                                       what="rate", allow_zero=True)))
        return points
    raise AssertionError(kind)


def _replay_options(entry: dict, *, source: str, field: str) -> dict:
    """The replay keywords (SI) from the entry's replay keys."""
    options: dict = {}
    if "offset" in entry:
        options["offset_s"] = cv.quantity(parse_time, entry["offset"], source=source,
                                          field=f"{field}.offset", what="offset",
                                          allow_zero=True)
    if "scale" in entry and "scale_to_mean" in entry:
        raise bad_value(entry["scale"], "either scale or scale_to_mean, not both",
                        source=source, field=f"{field}.scale")
    if "scale" in entry:
        scale = entry["scale"]
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
            raise bad_value(scale, "a factor > 0 (a plain number)", source=source,
                            field=f"{field}.scale")
        options["scale"] = float(scale)
    if "scale_to_mean" in entry:
        options["scale_to_mean_bps"] = cv.quantity(parse_bitrate, entry["scale_to_mean"],
                                                   source=source,
                                                   field=f"{field}.scale_to_mean",
                                                   what="mean rate")
    if "loop" in entry:
        if not isinstance(entry["loop"], bool):
            raise bad_value(entry["loop"], "true or false", source=source,
                            field=f"{field}.loop")
        options["loop"] = entry["loop"]
    if "clip_min" in entry:
        options["clip_min_bps"] = cv.quantity(parse_bitrate, entry["clip_min"], source=source,
                                              field=f"{field}.clip_min", what="rate",
                                              allow_zero=True)
    return options
