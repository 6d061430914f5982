"""Link technologies (Wi-Fi 4/5/6, Ethernet, LTE, 5G, Bluetooth) from ``data/links.csv``.

A topology link that names a ``technology`` without its own figures takes them from here:
capacity = mean of the typical low and high throughput, one-way latency = half the mean of
the typical low and high latency, because the table's latencies are round-trip times (one
hop, lightly loaded). Wi-Fi figures are per station; airtime shared between the stations of
one access point is not modelled by these defaults. Provenance: ``../shared/reference/``.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

from testbed.errors import ConfigError, close_matches

LINKS_CSV = Path(__file__).parent / "data" / "links.csv"
_NUMERIC = ("phy_peak_mbps", "typical_throughput_mbps_low", "typical_throughput_mbps_high",
            "typical_latency_ms_low", "typical_latency_ms_high")


@lru_cache(maxsize=1)
def _rows() -> dict[str, dict]:
    """Technology name -> figures from the table, in file order."""
    rows: dict[str, dict] = {}
    with open(LINKS_CSV, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            figures: dict = {"link": row["link"], "standard": row["standard"]}
            for column in _NUMERIC:
                figures[column] = float(row[column])
            figures["source"] = row["source"]
            rows[row["link"]] = figures
    return rows


#: Payload share of a *line rate* given for a link of this technology: TCP with timestamps
#: carries 1448 bytes per 1538 bytes on the wire of physical Ethernet (preamble and SFD 8,
#: MAC header 14, IPv4 20, TCP 20 + 12 of timestamps, FCS 4, inter-frame gap 12; IEEE
#: 802.3). The other rows' rates are measured throughputs (cellular, Bluetooth) or a Wi-Fi
#: station's TCP goodput alone (testbed.cluster.wifi): 1. The table's own figures (no
#: ``bandwidth`` given) are typical TCP throughputs already: 1.
LINE_RATE_GOODPUT = {"ethernet-1g": 1448 / 1538}


def line_rate_goodput_factor(technology: str) -> float:
    """The payload share of a line rate given for a link of ``technology`` (1 if none)."""
    return LINE_RATE_GOODPUT.get(technology, 1.0)


def list_link_technologies() -> list[str]:
    """Names of the link technologies, in table order."""
    return list(_rows())


def get_link_technology(name: str) -> dict:
    """The table's figures for ``name`` plus the defaults derived from them.

    Adds ``capacity_bps`` (bit/s, mean of typical throughput) and ``latency_s`` (s, one-way:
    half the mean typical round-trip time).
    """
    rows = _rows()
    if name not in rows:
        raise ConfigError(f"got unknown link technology {name!r}; {close_matches(name, rows)}"
                          f"expected one of {', '.join(rows)}", value=name)
    figures = dict(rows[name])
    low, high = figures["typical_throughput_mbps_low"], figures["typical_throughput_mbps_high"]
    figures["capacity_bps"] = (low + high) / 2 * 1e6
    rtt_low, rtt_high = figures["typical_latency_ms_low"], figures["typical_latency_ms_high"]
    figures["latency_s"] = (rtt_low + rtt_high) / 2 / 2 * 1e-3
    return figures
