"""A scenario's ``devices:`` section: background load, memory taken, failures per device.

::

    devices:
      jetson-nano:
        background: {points: [["0 s", "0 %"], ["5 s", "30 %"]], loop: "10 s"}  # compute and
        memory_taken: {points: [["0 s", "10 %"]]}                  # memory bandwidth taken
        failures: [["2 s", "4 s"]]                                  # down from 2 s to 4 s
      "*":                                                          # every device
        background: {uniform: "30 %", step: "100 ms"}    # the prototype's random load

``background`` and ``memory_taken`` are fractions in [0, 1] (``"30 %"`` or ``0.3``) as a
piecewise-constant series (``points``, optional ``loop``) or drawn afresh every ``step``
uniformly in ``[0, uniform]`` from the scenario's seed, for ``duration`` (default 1 h,
then the draws repeat). Availability is 1 minus the background load.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from testbed import config_values as cv
from testbed.cluster.topology import Topology
from testbed.errors import ConfigError, bad_value
from testbed.experiments.seeding import component_rng
from testbed.traces.series import Series
from testbed.units import parse_fraction, parse_time

DEVICE_KEYS = ("background", "memory_taken", "failures")
SERIES_KEYS = ("points", "loop", "uniform", "step", "duration")


@dataclass
class DeviceDynamics:
    """Per device name: availability series, memory-taken series, down intervals (s)."""

    avail: dict[str, Series] = field(default_factory=dict)
    memory_taken: dict[str, Series] = field(default_factory=dict)
    failures: dict[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)


def parse_devices(entries: object, topology: Topology, seed: int, *,
                  source: str) -> DeviceDynamics:
    dynamics = DeviceDynamics()
    if entries in (None, {}):
        return dynamics
    entries = cv.mapping(entries, source=source, field="devices",
                         what="device name -> {background, memory_taken, failures}")
    for name, entry in entries.items():
        where = f"devices.{name}"
        targets = list(topology.devices) if name == "*" else [name]
        if name != "*" and name not in topology.devices:
            raise bad_value(name, "a device of the topology: " + ", ".join(topology.devices),
                            source=source, field=where)
        entry = cv.mapping(entry, source=source, field=where, what=", ".join(DEVICE_KEYS))
        cv.check_keys(entry, DEVICE_KEYS, source=source, field=where)
        for device in targets:
            if "background" in entry:
                taken = _fraction_series(entry["background"], seed, device, "background",
                                         source=source, field=f"{where}.background")
                dynamics.avail[device] = Series(taken.times_s,
                                                (1.0 - np.asarray(taken.values)).tolist(),
                                                taken.loop_period_s, "fraction",
                                                f"{source}: {where}.background")
            if "memory_taken" in entry:
                dynamics.memory_taken[device] = _fraction_series(
                    entry["memory_taken"], seed, device, "memory",
                    source=source, field=f"{where}.memory_taken")
            if "failures" in entry:
                if device == topology.controller:
                    raise ConfigError("the controller cannot fail (it holds the request and "
                                      "the LM head)", source=source, field=f"{where}.failures")
                dynamics.failures[device] = _intervals(entry["failures"], source=source,
                                                       field=f"{where}.failures")
    return dynamics


def _fraction_series(value: object, seed: int, device: str, stream: str, *, source: str,
                     field: str) -> Series:
    spec = cv.mapping(value, source=source, field=field,
                      what="{points, loop} or {uniform, step}")
    cv.check_keys(spec, SERIES_KEYS, source=source, field=field)
    if "uniform" in spec:
        top = _fraction(spec["uniform"], source, f"{field}.uniform")
        step = cv.quantity(parse_time, spec.get("step", "1 s"), source=source,
                           field=f"{field}.step", what="step")
        duration = cv.quantity(parse_time, spec.get("duration", "1 h"), source=source,
                               field=f"{field}.duration", what="duration")
        count = max(int(np.ceil(duration / step)), 1)
        draws = component_rng(seed, "devices", device, stream).uniform(0.0, top, size=count)
        times = (np.arange(count) * step).tolist()   # k * step, as floats
        return Series(times, draws.tolist(), count * step, "fraction", f"{source}: {field}")
    if "points" not in spec:
        raise ConfigError("missing; give 'points' or 'uniform'", source=source,
                          field=f"{field}.points")
    return cv.point_series(spec, lambda v, where: _fraction(v, source, where), source=source,
                           field=field, unit="fraction", example="['5 s', '30 %']",
                           value_name="fraction")


def _fraction(value: object, source: str, field: str) -> float:
    try:
        return parse_fraction(value)
    except ConfigError as error:
        raise error.located(source, field) from None


def _intervals(value: object, *, source: str, field: str) -> tuple[tuple[float, float], ...]:
    if not isinstance(value, list):
        raise bad_value(value, "a list of [down, up] times such as [['2 s', '4 s']]",
                        source=source, field=field)
    intervals: list[tuple[float, float]] = []
    for k, pair in enumerate(value):
        where = f"{field}[{k}]"
        if not isinstance(pair, list) or len(pair) != 2:
            raise bad_value(pair, "a [down, up] pair of times", source=source, field=where)
        down = cv.quantity(parse_time, pair[0], source=source, field=where, what="time",
                           allow_zero=True)
        up = cv.quantity(parse_time, pair[1], source=source, field=where, what="time")
        if up <= down:
            raise bad_value(pair, "a recovery time after the failure time", source=source,
                            field=where)
        if intervals and down < intervals[-1][1]:
            raise bad_value(pair, "intervals in order, not overlapping", source=source,
                            field=where)
        intervals.append((down, up))
    return tuple(intervals)
