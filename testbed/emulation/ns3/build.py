"""What the ns-3 backend builds: a topology and a token plan as plain data for the child
process that runs ns-3 (:mod:`.execute`).

- Every link that belongs to no medium becomes a point-to-point link: each direction's
  ``DataRate`` is its capacity (bit/s, the line rate), its ``Delay`` the link latency.
- Every medium with an access point becomes an 802.11 BSS on its own channel: the access
  point and its stations, at the stations' PHY (:class:`~testbed.cluster.wifi.WifiPhy`,
  which must be the same for all of them: one ns-3 rate manager serves every downlink).
- Capacity series of point-to-point links are replayed from t0; series on media, a
  capacity of 0 bit/s and generic media are refused (:class:`Ns3Unsupported`).
- The plan's tasks, dependencies (as event numbers) and connections (one per source,
  destination and channel) as arrays.
"""

from __future__ import annotations

from testbed.cluster.topology import Topology
from testbed.emulation.plan import TokenPlan
from testbed.emulation.shaping import schedule
from testbed.emulation.ns3.settings import Ns3Settings

OPS = {"mark": 0, "compute": 1, "send": 2, "signal": 3}
STANDARD_NAMES = {"80211n": "Ht", "80211ac": "Vht", "80211ax": "He"}


class Ns3Unsupported(ValueError):
    """The scenario has something the ns-3 backend cannot replay (the message says what)."""


def network_description(topology: Topology, settings: Ns3Settings,
                        horizon_s: float) -> dict:
    """Nodes, point-to-point links, BSSs and capacity changes (within ``horizon_s``)."""
    nodes = list(topology.graph.nodes)
    index = {name: i for i, name in enumerate(nodes)}
    members = {}
    bss = []
    for medium in topology.media.values():
        if not medium.access_point:
            raise Ns3Unsupported(f"medium {medium.name!r} is a generic shared channel; the "
                                 "ns-3 backend builds 802.11 BSSs (media with an "
                                 "access_point) only")
        phys = {topology.links[link].wifi for link in sorted(medium.members)}
        if None in phys or len(phys) != 1:
            raise Ns3Unsupported(f"the stations of medium {medium.name!r} use different PHYs "
                                 f"({', '.join(sorted(str(p) for p in phys))}); ns-3 serves "
                                 "every downlink of a BSS at one rate: give them one "
                                 "technology and MCS")
        phy = phys.pop()
        assert phy is not None   # checked above
        for member in medium.members:
            members[member] = medium.name
            if topology.links[member].series is not None:
                raise Ns3Unsupported(f"link {member[0]}->{member[1]} of medium {medium.name!r} "
                                     "has a capacity series; the ns-3 backend replays series "
                                     "on wired links only")
        family = STANDARD_NAMES[phy.standard]
        bss.append({"name": medium.name, "ap": index[medium.access_point],
                    "stations": [index[s] for s in medium.stations],
                    "standard": phy.standard,
                    "channel": f"{{0, {phy.width_mhz}, BAND_5GHZ, 0}}",
                    "data_mode": f"{family}Mcs{phy.mcs}"
                    if settings.rate_control == "constant" else "",
                    "short_guard": phy.guard_interval_ns == 400,
                    "guard_ns": phy.guard_interval_ns,
                    "spatial_streams": phy.spatial_streams})
    p2p = []
    for (a, b), link in topology.links.items():
        if (a, b) in members or index[a] > index[b]:
            continue
        back = topology.links[(b, a)]
        for one in (link, back):
            low = min(one.series.values) if one.series is not None else one.capacity_bps
            if low <= 0:
                raise Ns3Unsupported(f"link {one.src}->{one.dst} reaches 0 bit/s; ns-3's "
                                     "point-to-point links need a rate > 0")
        p2p.append({"a": index[a], "b": index[b], "bps_ab": link.capacity_at(0.0),
                    "bps_ba": back.capacity_at(0.0), "delay_s": link.latency_s})
    changes = [{"a": index[c.link[0]], "b": index[c.link[1]], "at_s": c.at_s, "bps": c.bps}
               for c in schedule(topology, horizon_s)]
    return {"nodes": nodes, "p2p": p2p, "bss": bss, "changes": changes,
            "settings": settings.as_dict()}


def plan_description(plan: TokenPlan, nodes: list[str]) -> dict:
    """The plan's tasks as arrays, with every dependency an event number."""
    index = {name: i for i, name in enumerate(nodes)}
    events: dict[str, int] = {}

    def event(name: str) -> int:
        if name not in events:
            events[name] = len(events)
        return events[name]
    xfers = sorted({t.xfer for t in plan.tasks if t.op == "send"})
    xfer_index = {x: k for k, x in enumerate(xfers)}
    signals = sorted({t.signal for t in plan.tasks if t.op == "signal"})
    signal_index = {s: k for k, s in enumerate(signals)}
    connections: dict[tuple[str, str, str], int] = {}
    tasks = []
    for t in plan.tasks:
        conn = -1
        if t.op == "send":
            conn = connections.setdefault((t.device, t.dst, t.channel), len(connections))
        tasks.append({"device": index[t.device], "op": OPS[t.op], "duration_s": t.duration_s,
                      "dst": index[t.dst] if t.dst else -1, "size_bytes": int(t.size_bytes),
                      "conn": conn, "xfer": xfer_index.get(t.xfer, -1),
                      "signal": signal_index.get(t.signal, -1),
                      "not_before_s": t.not_before_s, "done_event": event(f"k{t.id}"),
                      "deps": [event(d) for d in t.deps]})
    xfer_event = [event(f"x{x}") for x in xfers]
    signal_event = [event(f"s{s}") for s in signals]
    return {"tasks": tasks, "task_ids": [t.id for t in plan.tasks], "xfers": xfers,
            "connections": [[index[s], index[d]] for (s, d, _), _k in
                            sorted(connections.items(), key=lambda item: item[1])],
            "xfer_event": xfer_event, "signal_event": signal_event, "n_events": len(events),
            "deadline_s": 30.0 + 4.0 * plan.sim_duration_s}
