"""Random tiered clusters drawn as in the paper's prototype, of any size.

Tiers: 10 % "cloud" (x4), 30 % "regional" (x2), 60 % "edge" (x1); the factor multiplies
log-normal, clipped memory and compute (PAPER.md). Memory bandwidth is 0.25 byte per FLOP
(clipped to 4-200 GB/s). Links and their one-way latencies are uniform per link in a
range set by the tiers of the two ends (``LINK_RANGES``): clouds are meshed, every
regional site is linked to every cloud and to the next site (a ring), edge devices are
spread over the sites and meshed within a site. The controller is the device with the
most compute, as in the prototype. ``topologies/make_paper_topologies.py`` uses the same
draws for the three named topologies it writes.

In a scenario: ``topology: {tiered: {n_devices: 25, seed: 7}}``.
"""

from __future__ import annotations

import math

import numpy as np

from testbed.cluster.device import DeviceSpec
from testbed.cluster.topology import LinkSpec, Topology

TIERS = (("cloud", 0.1, 4.0), ("regional", 0.3, 2.0), ("edge", 0.6, 1.0))
MEMORY_MEDIAN_GB, MEMORY_SIGMA, MEMORY_CLIP_GB = 4.0, 0.5, (2.0, 64.0)
COMPUTE_MEDIAN_FLOPS, COMPUTE_SIGMA, COMPUTE_CLIP_FLOPS = 2e10, 0.5, (1e9, 5e11)
BYTES_PER_FLOP, MEM_BW_CLIP_GBPS = 0.25, (4.0, 200.0)
# sorted pair of tiers -> (bandwidth range in Gbit/s, one-way latency range in ms).
# The ranges are the authors' prototype's; what measurements say of the latencies:
# - edge-edge 0.5-5 ms, a device's own LAN or Wi-Fi hop: links.csv gives 0.1-0.5 ms round
#   trip on switched Ethernet and 2-10 ms on Wi-Fi (shared/reference/links.csv sources);
# - edge-regional 2-10 ms: Charyyev, Arslan, Gunes, "Latency Comparison of Cloud
#   Datacenters and Edge Servers", IEEE GLOBECOM 2020 (8,456 end-users to 6,341 Akamai
#   edge servers and 69 cloud locations): 58 % of end-users reach a nearby edge server in
#   less than 10 ms round trip;
# - cloud-edge 10-30 ms: the same study finds only 29 % of end-users within 10 ms of a
#   nearby cloud location; cellular access alone adds 15-40 ms (5G) or 30-70 ms (LTE)
#   round trip (links.csv);
# - cloud-cloud, cloud-regional and regional-regional (1-15 ms) are metro and inter-
#   datacentre hops we have no measurement for here.
# ``network: {latency_scale: x}`` in a scenario scales them all (experiments/e2_latency.yaml).
LINK_RANGES = {
    ("cloud", "cloud"): ((10.0, 40.0), (1.0, 5.0)),
    ("cloud", "regional"): ((1.0, 10.0), (5.0, 15.0)),
    ("cloud", "edge"): ((0.05, 0.5), (10.0, 30.0)),
    ("regional", "regional"): ((1.0, 10.0), (2.0, 10.0)),
    ("edge", "regional"): ((0.1, 1.0), (2.0, 10.0)),
    ("edge", "edge"): ((0.01, 1.0), (0.5, 5.0)),
}


def tier_counts(n: int) -> dict[str, int]:
    """How many devices of each tier among ``n`` (at least one cloud and one regional)."""
    cloud = max(1, round(0.1 * n))
    regional = max(1, round(0.3 * n))
    return {"cloud": cloud, "regional": regional, "edge": max(n - cloud - regional, 0)}


def draw_devices(rng: np.random.Generator, n: int) -> list[dict]:
    """``n`` devices, cloud first, then regional, then edge; figures rounded."""
    tiers = [tier for tier, count in tier_counts(n).items() for _ in range(count)][:n]
    factor = np.array([dict((t, f) for t, _, f in TIERS)[tier] for tier in tiers])
    memory_gb = np.clip(rng.lognormal(math.log(MEMORY_MEDIAN_GB), MEMORY_SIGMA, n) * factor,
                        *MEMORY_CLIP_GB)
    flops = np.clip(rng.lognormal(math.log(COMPUTE_MEDIAN_FLOPS), COMPUTE_SIGMA, n) * factor,
                    *COMPUTE_CLIP_FLOPS)
    gflops = np.round(flops / 1e9, 1)
    mem_bw_gbps = np.clip(np.round(BYTES_PER_FLOP * gflops, 1), *MEM_BW_CLIP_GBPS)
    counters: dict[str, int] = {}
    devices = []
    for i, tier in enumerate(tiers):
        index = counters[tier] = counters.get(tier, -1) + 1
        devices.append({"name": f"{tier}{index}", "tier": tier,
                        "memory_gb": round(float(memory_gb[i]), 2),
                        "gflops": float(gflops[i]), "mem_bw_gbps": float(mem_bw_gbps[i])})
    return devices


def draw_links(rng: np.random.Generator, devices: list[dict],
               pairs: list[tuple[int, int]]) -> list[dict]:
    """Bandwidth (Mbit/s, 3 significant digits) and latency (ms, to 0.01 ms) per pair."""
    links = []
    for a, b in pairs:
        tier_pair = tuple(sorted((devices[a]["tier"], devices[b]["tier"])))
        (bw_low, bw_high), (lat_low, lat_high) = LINK_RANGES[tier_pair]
        mbps = rng.uniform(bw_low, bw_high) * 1e3
        ms = rng.uniform(lat_low, lat_high)
        links.append({"a": devices[a]["name"], "b": devices[b]["name"],
                      "mbps": float(f"{mbps:.3g}"), "ms": round(float(ms), 2)})
    return links


def mesh(indices: list[int]) -> list[tuple[int, int]]:
    return [(a, b) for i, a in enumerate(indices) for b in indices[i + 1:]]


def cloud_regional_edge(rng: np.random.Generator, n: int):
    """Clouds meshed; each regional site linked to every cloud and to the next site (ring);
    edge devices spread over the sites, meshed within a site."""
    devices = draw_devices(rng, n)
    counts = tier_counts(n)
    cloud = list(range(counts["cloud"]))
    regional = list(range(len(cloud), min(len(cloud) + counts["regional"], n)))
    edge = list(range(len(cloud) + len(regional), n))
    groups = [[e for k, e in enumerate(edge) if k % len(regional) == r]
              for r in range(len(regional))]
    pairs = mesh(cloud) + [(c, r) for r in regional for c in cloud]
    if len(regional) > 2:
        pairs += [(regional[k], regional[(k + 1) % len(regional)])
                  for k in range(len(regional))]
    elif len(regional) == 2:
        pairs.append((regional[0], regional[1]))
    for r, group in zip(regional, groups):
        pairs += [(r, e) for e in group] + mesh(group)
    comments = {devices[e]["name"]: f"site of {devices[r]['name']}"
                for r, group in zip(regional, groups) for e in group}
    return devices, draw_links(rng, devices, pairs), comments


def tiered_topology(n_devices: int, seed: int, *, name: str | None = None,
                    memory_max_bytes: float | None = None) -> Topology:
    """A random ``n_devices`` cluster (cloud/regional/edge) from ``seed``; with
    ``memory_max_bytes`` no device but the controller (which holds the embedding and LM
    head) has more memory than that. The draws are unchanged: the same cluster with smaller
    memories."""
    if n_devices < 2:
        raise ValueError("a tiered cluster needs at least 2 devices")
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    devices, links, _ = cloud_regional_edge(rng, n_devices)
    controller = max(devices, key=lambda d: d["gflops"])["name"]
    cap = math.inf if memory_max_bytes is None else memory_max_bytes
    specs = [DeviceSpec(d["name"], f"paper-{d['tier']}", d["gflops"] * 1e9,
                        d["mem_bw_gbps"] * 1e9,
                        d["memory_gb"] * 1e9 if d["name"] == controller
                        else min(d["memory_gb"] * 1e9, cap), 1.0, 1.0)
             for d in devices]
    link_specs = [LinkSpec(link["a"], link["b"], link["mbps"] * 1e6, link["ms"] * 1e-3)
                  for link in links]
    if name is None:
        name = f"tiered-{n_devices}-seed{seed}" + (
            "" if memory_max_bytes is None else f"-max{memory_max_bytes / 1e9:g}GB")
    return Topology(specs, link_specs, name=name,
                    controller=controller)
