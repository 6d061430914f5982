"""Energy of a run, from its records: devices (idle + utilisation) and links (per bit).

- A device draws its idle power for the whole run and, while it computes, the difference
  up to its active (typical) power: ``E = P_idle * T + (P_active - P_idle) * busy_s``
  (dynamic power proportional to utilisation). Figures: :mod:`testbed.cluster.power`.
- Every flow costs, on each hop of its route, the sender's energy per bit sent and the
  receiver's energy per bit received, by that hop's link technology (a Wi-Fi relay through
  the access point pays twice, as the air does). Hops whose technology has no figure
  (links given by capacity only) cost nothing.

A run with a device of unknown power has device energy NaN: it is not guessed.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from testbed.cluster.power import route_energy_j_per_bit
from testbed.cluster.topology import Topology
from testbed.units import BITS_PER_BYTE

COLUMNS = ["energy_j", "device_energy_j", "network_energy_j", "energy_j_per_token",
           "energy_j_per_request"]


def device_energy(devices: pd.DataFrame, topology: Topology) -> pd.DataFrame:
    """The devices table with each device's ``idle_power_w``, ``active_power_w`` and
    ``energy_j`` over its run."""
    specs = topology.devices
    idle = devices.device.map(lambda d: _power(specs[d].idle_power_w))
    active = devices.device.map(lambda d: _power(specs[d].active_power_w))
    energy = idle * devices.run_s + (active - idle).clip(lower=0) * devices.busy_s
    return devices.assign(idle_power_w=idle, active_power_w=active, energy_j=energy)


def network_energy_j(flows: pd.DataFrame, topology: Topology) -> float:
    """Energy of every byte the flows carried, hop by hop (J)."""
    if flows.empty:
        return 0.0
    per_pair = flows.groupby(["src", "dst"], sort=False).size_bytes.sum()
    return float(sum(size * BITS_PER_BYTE * route_energy_j_per_bit(topology, src, dst)
                     for (src, dst), size in per_pair.items()))


def energy_summary(devices: pd.DataFrame, flows: pd.DataFrame, topology: Topology,
                   output_tokens: int, requests: float) -> dict[str, float]:
    """The :data:`COLUMNS` of one partitioner's run."""
    device_j = float(device_energy(devices, topology).energy_j.sum(skipna=False)) \
        if len(devices) else math.nan
    network_j = network_energy_j(flows, topology)
    total = device_j + network_j
    return {"energy_j": total, "device_energy_j": device_j, "network_energy_j": network_j,
            "energy_j_per_token": total / output_tokens if output_tokens else math.nan,
            "energy_j_per_request": total / requests if requests else math.nan}


def _power(value: float | None) -> float:
    return np.nan if value is None else float(value)
