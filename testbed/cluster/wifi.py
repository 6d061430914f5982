"""802.11n/ac/ax: PHY rates, and the TCP goodput and per-message air time they imply.

Figures from the standards (IEEE Std 802.11-2020; 802.11ax-2021 for HE), 5 GHz band, best
effort access category:

- slot 9 us and SIFS 16 us (OFDM PHY, 802.11-2020 Table 17-21); AIFS[BE] = SIFS + 3 slots
  and CWmin[BE] = 15 (default EDCA parameter set, Table 9-155), so a contending
  transmission waits AIFS plus a mean backoff of 7.5 slots;
- PHY header (preamble): legacy part L-STF + L-LTF + L-SIG = 20 us, then HT-SIG 8 + HT-STF 4
  + 4 per HT-LTF (Clause 19); VHT-SIG-A 8 + VHT-STF 4 + 4 per VHT-LTF + VHT-SIG-B 4
  (Clause 21); RL-SIG 4 + HE-SIG-A 8 + HE-STF 4 + 7.2 per HE-LTF (2x LTF, 0.8 us GI; Clause
  27). One LTF per spatial stream, rounded up to 1, 2, 4, 4 (or 6, 8);
- data symbols: 3.2 us + guard interval (0.8, or 0.4 short) for HT/VHT, 12.8 us + guard
  interval (0.8, 1.6 or 3.2) for HE; data subcarriers 52/108/234/468 (HT/VHT at 20/40/80/160
  MHz) and 234/468/980/1960 (HE); SERVICE 16 bits and tail 6 bits per PPDU;
- a compressed BlockAck is 32 bytes at the 24 Mbit/s legacy rate: 20 us + 3 symbols of 4 us.

**TCP goodput of a station alone** (:func:`tcp_goodput_bps`): one cycle is a data TXOP
carrying an A-MPDU of ``n`` segments (each MSS + 40 bytes IPv4/TCP + 12 of timestamps, 8 of
LLC/SNAP, a 26-byte QoS MAC header and 4 of FCS, in a 4-byte delimiter, padded to 4 bytes;
``n`` limited by the maximum A-MPDU length and the 64-frame BlockAck window) plus the TXOP
in which the receiver returns ``n/2`` delayed TCP ACKs; each TXOP pays AIFS, the mean
backoff, the PHY header, SIFS and a BlockAck. Goodput = ``n * MSS * 8 / cycle``.

**Per message** a transmission pays its PHY header even on an idle channel; when others are
transmitting it also waits AIFS and a backoff and ends with SIFS + BlockAck (the contention
overhead); an access point relaying a frame it just received waits SIFS, its BlockAck and
AIFS (:func:`relay_s`).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from testbed.errors import ConfigError, close_matches

SLOT_S = 9e-6
SIFS_S = 16e-6
AIFSN_BE = 3
CW_MIN_BE = 15
BLOCK_ACK_S = 20e-6 + 3 * 4e-6
#: A-MPDU limit used by default (bytes): the 802.11n maximum (2^16 - 1), which ns-3 applies
#: to every standard unless told otherwise.
DEFAULT_MAX_AMPDU_BYTES = 65535
BA_WINDOW = 64
TCP_IP_HEADER_BYTES = 52       # IPv4 20 + TCP 20 + timestamps option 12
MAC_OVERHEAD_BYTES = 8 + 26 + 4  # LLC/SNAP + QoS data header + FCS
DELIMITER_BYTES = 4
MSS_BYTES = 1448               # TCP payload per segment: 1500-byte IP packets with timestamps

#: (bits per subcarrier, coding rate) of MCS 0-11 (HT uses 0-7 per stream).
_MODULATION = [(1, 1 / 2), (2, 1 / 2), (2, 3 / 4), (4, 1 / 2), (4, 3 / 4), (6, 2 / 3),
               (6, 3 / 4), (6, 5 / 6), (8, 3 / 4), (8, 5 / 6), (10, 3 / 4), (10, 5 / 6)]
_SUBCARRIERS = {"ht": {20: 52, 40: 108}, "vht": {20: 52, 40: 108, 80: 234, 160: 468},
                "he": {20: 234, 40: 468, 80: 980, 160: 1960}}
_MAX_MCS = {"ht": 7, "vht": 9, "he": 11}
_STANDARD_OF = {"80211n": "ht", "80211ac": "vht", "80211ax": "he"}
WIFI_CSV = Path(__file__).parent / "data" / "wifi_phy.csv"


@dataclass(frozen=True)
class WifiPhy:
    """One station's PHY configuration: ``standard`` is ``80211n``, ``80211ac`` or
    ``80211ax``; ``guard_interval_ns`` 400/800 (HT, VHT) or 800/1600/3200 (HE)."""

    standard: str
    width_mhz: int
    mcs: int
    spatial_streams: int
    guard_interval_ns: int
    max_ampdu_bytes: int = DEFAULT_MAX_AMPDU_BYTES

    def __post_init__(self):
        family = _STANDARD_OF.get(self.standard)
        if family is None:
            raise ConfigError(f"got Wi-Fi standard {self.standard!r}; expected one of "
                              f"{', '.join(_STANDARD_OF)}", value=self.standard)
        if self.width_mhz not in _SUBCARRIERS[family]:
            raise ConfigError(f"got a {self.width_mhz} MHz channel; {self.standard} has "
                              f"{', '.join(map(str, _SUBCARRIERS[family]))} MHz",
                              value=self.width_mhz)
        if not 0 <= self.mcs <= _MAX_MCS[family]:
            raise ConfigError(f"got MCS {self.mcs}; {self.standard} has MCS 0-"
                              f"{_MAX_MCS[family]}", value=self.mcs)
        if not 1 <= self.spatial_streams <= 8:
            raise ConfigError(f"got {self.spatial_streams} spatial streams; expected 1-8",
                              value=self.spatial_streams)
        allowed = (800, 1600, 3200) if family == "he" else (400, 800)
        if self.guard_interval_ns not in allowed:
            raise ConfigError(f"got a {self.guard_interval_ns} ns guard interval; "
                              f"{self.standard} has {', '.join(map(str, allowed))} ns",
                              value=self.guard_interval_ns)

    def __str__(self) -> str:
        gi = "short GI" if self.guard_interval_ns == 400 else f"{self.guard_interval_ns} ns GI"
        return (f"{self.standard} {self.width_mhz} MHz MCS {self.mcs} x{self.spatial_streams} "
                f"{gi}")

    @property
    def family(self) -> str:
        return _STANDARD_OF[self.standard]

    @property
    def symbol_s(self) -> float:
        base = 12.8e-6 if self.family == "he" else 3.2e-6
        return base + self.guard_interval_ns * 1e-9

    @property
    def bits_per_symbol(self) -> float:
        bits, rate = _MODULATION[self.mcs]
        return _SUBCARRIERS[self.family][self.width_mhz] * bits * rate * self.spatial_streams

    @property
    def rate_bps(self) -> float:
        """The PHY data rate (bit/s)."""
        return self.bits_per_symbol / self.symbol_s

    @property
    def preamble_s(self) -> float:
        n = self.spatial_streams
        ltfs = n if n in (1, 2, 4, 6, 8) else n + 1
        if self.family == "ht":
            return 20e-6 + 8e-6 + 4e-6 + 4e-6 * ltfs
        if self.family == "vht":
            return 20e-6 + 8e-6 + 4e-6 + 4e-6 * ltfs + 4e-6
        return 20e-6 + 4e-6 + 8e-6 + 4e-6 + 7.2e-6 * ltfs

    def ppdu_s(self, payload_bytes: float) -> float:
        """Air time of one PPDU carrying ``payload_bytes`` of MPDUs (s)."""
        symbols = math.ceil((16 + 8 * payload_bytes + 6) / self.bits_per_symbol)
        return self.preamble_s + symbols * self.symbol_s


def _subframe_bytes(mpdu_bytes: int) -> int:
    return (DELIMITER_BYTES + mpdu_bytes + 3) // 4 * 4


def contention_s() -> float:
    """What a transmission pays beyond its PPDU when it has to contend (s): AIFS, the mean
    backoff, SIFS and the BlockAck."""
    return SIFS_S + AIFSN_BE * SLOT_S + CW_MIN_BE / 2 * SLOT_S + SIFS_S + BLOCK_ACK_S


def _segments_per_ampdu(phy: WifiPhy, mss_bytes: int) -> int:
    data_sub = _subframe_bytes(mss_bytes + TCP_IP_HEADER_BYTES + MAC_OVERHEAD_BYTES)
    return max(1, min(BA_WINDOW, phy.max_ampdu_bytes // data_sub))


def txop_payload_bytes(phy: WifiPhy, mss_bytes: int = MSS_BYTES) -> int:
    """TCP payload one A-MPDU carries (bytes): what one channel access sends."""
    return _segments_per_ampdu(phy, mss_bytes) * mss_bytes


def relay_s() -> float:
    """What an access point waits before relaying a frame it just received (s): SIFS and
    the BlockAck it returns, then AIFS (no backoff is pending: ns-3's EDCA, and 802.11's
    when its last transmission is long past)."""
    return SIFS_S + BLOCK_ACK_S + SIFS_S + AIFSN_BE * SLOT_S


def tcp_goodput_bps(phy: WifiPhy, mss_bytes: int = MSS_BYTES) -> float:
    """TCP payload rate of one station alone on the channel (bit/s; module docstring)."""
    data_sub = _subframe_bytes(mss_bytes + TCP_IP_HEADER_BYTES + MAC_OVERHEAD_BYTES)
    n = _segments_per_ampdu(phy, mss_bytes)
    ack_sub = _subframe_bytes(TCP_IP_HEADER_BYTES + MAC_OVERHEAD_BYTES)
    acks = max(1, n // 2)
    cycle = (phy.ppdu_s(n * data_sub) + contention_s()) + \
        (phy.ppdu_s(acks * ack_sub) + contention_s())
    return n * mss_bytes * 8 / cycle


@lru_cache(maxsize=1)
def _defaults() -> dict[str, WifiPhy]:
    rows = {}
    with open(WIFI_CSV, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            rows[row["technology"]] = WifiPhy(row["standard"], int(row["width_mhz"]),
                                              int(row["mcs"]), int(row["spatial_streams"]),
                                              int(row["guard_interval_ns"]))
    return rows


def is_wifi(technology: str) -> bool:
    """True for the link technologies that are Wi-Fi (and form media)."""
    return technology in _defaults()


def default_phy(technology: str) -> WifiPhy:
    """The typical client PHY of a Wi-Fi technology (``data/wifi_phy.csv``)."""
    rows = _defaults()
    if technology not in rows:
        raise ConfigError(f"got {technology!r}, which is not a Wi-Fi technology; "
                          f"{close_matches(technology, rows)}expected one of "
                          f"{', '.join(rows)}", value=technology)
    return rows[technology]
