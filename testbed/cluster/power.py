"""Power figures: each device type's idle power, each link technology's energy per bit.

``data/device_power.csv`` gives a device type's idle power (W) with its source; its power
when busy is the catalog's ``typical_power_w`` (``data/devices.csv``). Rows whose source
is ``assumed`` have no published figure yet (25 % of the typical power) and say so.
``data/link_energy.csv`` gives the energy a radio or NIC spends per bit it sends and per
bit it receives (nJ/bit), with its source; base (idle) power of the interface is part of
the device's idle power, not charged per bit.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

from testbed.errors import ConfigError

DATA = Path(__file__).parent / "data"
DEVICE_POWER_CSV = DATA / "device_power.csv"
LINK_ENERGY_CSV = DATA / "link_energy.csv"
NJ = 1e-9


def idle_power_w(device_type: str) -> float | None:
    """Idle power of a catalog device type (W); None when the table has none."""
    return _device_power().get(device_type)


def link_energy_j_per_bit(technology: str) -> tuple[float, float] | None:
    """``(sent, received)`` energy per bit of a link technology (J/bit); None if unknown."""
    return _link_energy().get(technology)


def route_energy_j_per_bit(topology, src: str, dst: str) -> float:
    """Energy per bit of a message from ``src`` to ``dst`` over every hop of its route:
    each hop's energy sent plus received, by its link technology (J/bit); hops without a
    figure cost nothing."""
    total = 0.0
    for key in topology.path(src, dst):
        figures = link_energy_j_per_bit(topology.links[key].technology)
        if figures is not None:
            total += figures[0] + figures[1]
    return total


def link_energy_rows() -> list[dict[str, str]]:
    """The rows of ``data/link_energy.csv`` (figures and sources), in file order."""
    return list(_read(LINK_ENERGY_CSV, ("technology", "tx_nj_per_bit", "rx_nj_per_bit",
                                        "source", "notes")))


@lru_cache(maxsize=1)
def _device_power() -> dict[str, float]:
    rows = _read(DEVICE_POWER_CSV, ("device", "idle_power_w", "source", "notes"))
    return {row["device"]: _positive(row["idle_power_w"], DEVICE_POWER_CSV, line,
                                     "idle_power_w") for line, row in enumerate(rows, 2)}


@lru_cache(maxsize=1)
def _link_energy() -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for line, row in enumerate(link_energy_rows(), 2):
        tx, rx = (_positive(row[c], LINK_ENERGY_CSV, line, c) * NJ
                  for c in ("tx_nj_per_bit", "rx_nj_per_bit"))
        out[row["technology"]] = (tx, rx)
    return out


def _read(path: Path, columns: tuple[str, ...]) -> tuple[dict[str, str], ...]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != columns:
            raise ConfigError(f"got columns {reader.fieldnames}; expected "
                              f"{', '.join(columns)}", source=str(path), field="header")
        return tuple(reader)


def _positive(text: str, path: Path, line: int, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigError(f"line {line}: {column} {text!r}; expected a positive number",
                          source=str(path), value=text)
    return value
