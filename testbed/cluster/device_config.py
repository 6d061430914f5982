"""Devices as written in config files: a catalog type with overrides, or inline figures.

``{name: jetson, device: jetson-orin-nano-8gb, memory: "4 GiB", eff_mem: 0.6}`` takes the
catalog figures and overrides some (also ``idle_power`` and ``active_power``, e.g. "5 W",
for the energy model); ``{name: e3, device: {peak_flops: "50 GFLOP/s",
mem_bw: "20 GB/s", memory: "4 GiB"}}`` describes a custom device. Quantities need units.
"""

from __future__ import annotations

from testbed import config_values as cv
from testbed.cluster.catalog import make_device
from testbed.cluster.device import DeviceSpec
from testbed.errors import ConfigError
from testbed.units import (parse_bitrate, parse_byterate, parse_bytes, parse_flop_rate,
                           parse_power)

# config key -> (DeviceSpec field, parser, what it is)
QUANTITIES = {
    "memory": ("memory_bytes", parse_bytes, "memory size"),
    "peak_flops": ("peak_flops", parse_flop_rate, "compute rate"),
    "mem_bw": ("mem_bw_bytes_per_s", parse_byterate, "memory bandwidth"),
    "nic_tx": ("nic_tx_bps", parse_bitrate, "bit rate"),
    "nic_rx": ("nic_rx_bps", parse_bitrate, "bit rate"),
    "idle_power": ("idle_power_w", parse_power, "power"),
    "active_power": ("active_power_w", parse_power, "power"),
}
FRACTIONS = ("eff_flops", "eff_mem")
DEVICE_KEYS = (*QUANTITIES, *FRACTIONS)
INLINE_REQUIRED = ("peak_flops", "mem_bw", "memory")


def device_fields(entry: dict, *, source: str, field: str) -> dict:
    """The device figures present in ``entry``, as DeviceSpec keyword arguments (SI)."""
    fields = {}
    for key, (spec_field, parse, what) in QUANTITIES.items():
        if key in entry:
            fields[spec_field] = cv.quantity(parse, entry[key], source=source,
                                             field=f"{field}.{key}", what=what)
    for key in FRACTIONS:
        if key in entry:
            fields[key] = cv.efficiency(entry[key], source=source, field=f"{field}.{key}")
    return fields


def device_from_config(entry: object, *, source: str, field: str,
                       extra_keys: tuple[str, ...] = ()) -> DeviceSpec:
    """A DeviceSpec from ``{name, device, <overrides>}``; ``extra_keys`` are tolerated."""
    entry = cv.mapping(entry, source=source, field=field, what="a node with name and device")
    cv.check_keys(entry, ("name", "device", *DEVICE_KEYS, *extra_keys), source=source,
                  field=field, required=("name", "device"))
    node_name = cv.name(entry["name"], source=source, field=f"{field}.name")
    overrides = device_fields(entry, source=source, field=field)
    kind = entry["device"]
    if isinstance(kind, dict):
        cv.check_keys(kind, DEVICE_KEYS, source=source, field=f"{field}.device",
                      required=INLINE_REQUIRED)
        figures = device_fields(kind, source=source, field=f"{field}.device")
        device = DeviceSpec(name=node_name, model="custom", **figures)
    else:
        cv.name(kind, source=source, field=f"{field}.device")
        try:
            device = make_device(node_name, kind)
        except ConfigError as error:
            raise cv.relocate(error, source=source, field=f"{field}.device") from None
    return device.with_overrides(**overrides) if overrides else device
