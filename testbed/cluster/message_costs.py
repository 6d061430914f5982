"""Default per-message costs by device type and link technology, from ``data/message_costs.csv``.

A message costs its sender ``send_us`` and its receiver ``recv_us`` of processor time
(LogP's ``o``; :mod:`testbed.plan.messages`), and every link it crosses ``per_message_us``
of extra delay (a store-and-forward hop on Ethernet, medium access on Wi-Fi). Each row cites
the measurement or standard it is derived from. Devices and technologies without a row cost
nothing per message: no public measurement was found for them.

A scenario turns the defaults on with ``network: {message_costs: catalog}``, or gives its
own ``{send: "20 us", recv: "20 us", per_link: "5 us"}``; without either (``none``, the
default) messages cost only their bytes and the path latency, as before this model existed.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

from testbed.cluster.topology import Topology
from testbed.errors import ConfigError
from testbed.plan.messages import NO_MESSAGE_COSTS, MessageCosts

MESSAGE_COSTS_CSV = Path(__file__).parent / "data" / "message_costs.csv"
MODES = ("none", "catalog")


@lru_cache(maxsize=1)
def message_cost_table() -> tuple[dict, ...]:
    """The rows of the table (``kind``, ``name``, figures in µs or None, ``source``)."""
    rows = []
    with open(MESSAGE_COSTS_CSV, newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            figures = dict(row)
            for column in ("send_us", "recv_us", "per_message_us"):
                text = (row[column] or "").strip()
                try:
                    figures[column] = float(text) if text else None
                except ValueError:
                    raise ConfigError(f"got {text!r}; expected a number of microseconds",
                                      source=str(MESSAGE_COSTS_CSV),
                                      field=f"line {line}.{column}") from None
            rows.append(figures)
    return tuple(rows)


def catalog_message_costs(topology: Topology) -> MessageCosts:
    """The table's costs for the devices (by catalog type) and links (by technology) of
    ``topology``."""
    devices = {r["name"]: r for r in message_cost_table() if r["kind"] == "device"}
    links = {r["name"]: r for r in message_cost_table() if r["kind"] == "link"}
    send, recv, per_link = {}, {}, {}
    for name, spec in topology.devices.items():
        row = devices.get(spec.model)
        if row is not None:
            send[name] = (row["send_us"] or 0.0) * 1e-6
            recv[name] = (row["recv_us"] or 0.0) * 1e-6
    for key, link in topology.links.items():
        row = links.get(link.technology)
        if row is not None and row["per_message_us"]:
            per_link[key] = row["per_message_us"] * 1e-6
    return MessageCosts(send, recv, per_link)


def uniform_message_costs(topology: Topology, send_s: float, recv_s: float,
                          per_link_s: float = 0.0) -> MessageCosts:
    """The same costs on every device and link of ``topology``."""
    return MessageCosts({d: send_s for d in topology.devices},
                        {d: recv_s for d in topology.devices},
                        {key: per_link_s for key in topology.links} if per_link_s else {})


__all__ = ["MODES", "NO_MESSAGE_COSTS", "catalog_message_costs", "message_cost_table",
           "uniform_message_costs"]
