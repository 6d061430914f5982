"""The ``ns3:`` section of a scenario: every setting of the ns-3 backend, stated.

::

    ns3:
      tcp: {segment_size: 1448, buffer: "4 MiB", initial_cwnd: 10, congestion: cubic}
      wifi: {rate_control: constant, distance: "5 m", max_ampdu: 65535}
      p2p_queue_packets: 100
      warm_up: "64 KiB"

- ``tcp.segment_size`` (bytes, MSS): 1448 fills a 1500-byte IP packet with the timestamps
  option ns-3 sends by default; ``buffer``: send and receive buffer of every socket;
  ``initial_cwnd`` in segments (RFC 6928: 10); ``congestion``: ``cubic`` (Linux's default)
  or ``newreno``. Connections are persistent, one per (source, destination, channel), and
  warmed up with ``warm_up`` bytes before the run starts (as the Mininet workers do); with
  ``warm_up: 0 B`` they are opened (handshake done) but start from TCP's initial window.
- ``wifi.rate_control``: ``constant`` (every station at its link's MCS: ns-3's
  ConstantRateWifiManager) or ``ideal`` (ns-3's IdealWifiManager picks the MCS from the
  SNR); ``distance`` of every station from its access point (log-distance path loss, ns-3's
  YansWifiChannel default); ``max_ampdu`` bytes per A-MPDU (best effort). The standard,
  channel width, spatial streams, guard interval and MCS are the stations' links' own PHY
  (:class:`~testbed.cluster.wifi.WifiPhy`), so both backends model the same radio.
- ``p2p_queue_packets``: the drop-tail queue of each point-to-point device (ns-3's default
  100 packets).
- ``rng_run``: ns-3's run number (``RngSeedManager::SetRun``): the random backoffs of 802.11
  differ from one run to another, and so do the times of single transfers.
  ``replications``: runs ``rng_run``, ``rng_run + 1``, ...; each transfer's and token's
  ns-3 time is then the median over them (the reference a deterministic model predicts),
  and the validation also reports how far run 2 is from run 1 (ns-3's own spread).
"""

from __future__ import annotations

from dataclasses import dataclass

from testbed import config_values as cv
from testbed.cluster.wifi import DEFAULT_MAX_AMPDU_BYTES
from testbed.errors import ConfigError, bad_value
from testbed.units import parse_bytes, parse_length

KEYS = ("tcp", "wifi", "p2p_queue_packets", "warm_up", "rng_run", "replications")
TCP_KEYS = ("segment_size", "buffer", "initial_cwnd", "congestion")
WIFI_KEYS = ("rate_control", "distance", "max_ampdu")
CONGESTION = {"cubic": "ns3::TcpCubic", "newreno": "ns3::TcpNewReno"}
RATE_CONTROL = ("constant", "ideal")


@dataclass(frozen=True)
class Ns3Settings:
    segment_bytes: int = 1448
    buffer_bytes: int = 4 << 20
    initial_cwnd: int = 10
    congestion: str = "cubic"
    rate_control: str = "constant"
    distance_m: float = 5.0
    max_ampdu_bytes: int = DEFAULT_MAX_AMPDU_BYTES
    p2p_queue_packets: int = 100
    warm_up_bytes: int = 64 * 1024
    rng_run: int = 1
    replications: int = 1

    def as_dict(self) -> dict:
        return {"tcp": {"segment_size": self.segment_bytes, "buffer_bytes": self.buffer_bytes,
                        "initial_cwnd": self.initial_cwnd, "congestion": self.congestion},
                "wifi": {"rate_control": self.rate_control, "distance_m": self.distance_m,
                         "max_ampdu_bytes": self.max_ampdu_bytes},
                "p2p_queue_packets": self.p2p_queue_packets,
                "warm_up_bytes": self.warm_up_bytes, "rng_run": self.rng_run,
                "replications": self.replications}


def _count(value: object, *, source: str, field: str, low: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise bad_value(value, f"an integer >= {low}", source=source, field=field)
    return value


def settings_from_config(data: object, *, source: str) -> Ns3Settings:
    """The backend's settings from a scenario's ``ns3`` section (None: the defaults)."""
    if data is None:
        return Ns3Settings()
    data = cv.mapping(data, source=source, field="ns3", what="the ns-3 settings")
    cv.check_keys(data, KEYS, source=source, field="ns3")
    tcp = cv.mapping(data.get("tcp") or {}, source=source, field="ns3.tcp", what="TCP settings")
    cv.check_keys(tcp, TCP_KEYS, source=source, field="ns3.tcp")
    wifi = cv.mapping(data.get("wifi") or {}, source=source, field="ns3.wifi",
                      what="Wi-Fi settings")
    cv.check_keys(wifi, WIFI_KEYS, source=source, field="ns3.wifi")
    base = Ns3Settings()
    congestion = tcp.get("congestion", base.congestion)
    if congestion not in CONGESTION:
        raise ConfigError(f"got {congestion!r}; expected one of {', '.join(CONGESTION)}",
                          source=source, field="ns3.tcp.congestion", value=congestion)
    rate_control = wifi.get("rate_control", base.rate_control)
    if rate_control not in RATE_CONTROL:
        raise ConfigError(f"got {rate_control!r}; expected one of {', '.join(RATE_CONTROL)}",
                          source=source, field="ns3.wifi.rate_control", value=rate_control)

    def size(section: dict, key: str, default: int, field: str, zero: bool = False) -> int:
        if key not in section:
            return default
        return int(cv.quantity(parse_bytes, section[key], source=source, field=field,
                               what="size", allow_zero=zero))
    return Ns3Settings(
        segment_bytes=_count(tcp.get("segment_size", base.segment_bytes), source=source,
                             field="ns3.tcp.segment_size", low=100),
        buffer_bytes=size(tcp, "buffer", base.buffer_bytes, "ns3.tcp.buffer"),
        initial_cwnd=_count(tcp.get("initial_cwnd", base.initial_cwnd), source=source,
                            field="ns3.tcp.initial_cwnd"),
        congestion=congestion, rate_control=rate_control,
        distance_m=cv.quantity(parse_length, wifi["distance"], source=source,
                               field="ns3.wifi.distance", what="distance")
        if "distance" in wifi else base.distance_m,
        max_ampdu_bytes=_count(wifi.get("max_ampdu", base.max_ampdu_bytes), source=source,
                               field="ns3.wifi.max_ampdu", low=1600),
        p2p_queue_packets=_count(data.get("p2p_queue_packets", base.p2p_queue_packets),
                                 source=source, field="ns3.p2p_queue_packets"),
        warm_up_bytes=size(data, "warm_up", base.warm_up_bytes, "ns3.warm_up", zero=True),
        rng_run=_count(data.get("rng_run", base.rng_run), source=source, field="ns3.rng_run"),
        replications=_count(data.get("replications", base.replications), source=source,
                            field="ns3.replications"))
