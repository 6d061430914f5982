"""Write the paper's three named topologies as YAML: paper_edge8, paper_clusters16, paper_cloud24.

Run ``python topologies/make_paper_topologies.py``; it overwrites the three files next to it
with the same content every time (fixed seed, one random stream per topology, so changing
one topology does not change the others).

How devices and links are drawn, following the prototype's configs (``PAPER.md``,
"Experiment settings seen in the prototype's configs"):

* Tiers: 10 % "cloud" (x4), 30 % "regional" (x2), 60 % "edge" (x1); the factor multiplies
  both memory and compute.
* Memory: log-normal, median 4 GB, sigma 0.5, times the tier factor, clipped to 2-64 GB.
* Compute: log-normal, median 2e10 FLOP/s, sigma 0.5, times the tier factor, clipped to
  1e9-5e11 FLOP/s. (A sigma of 0.5 keeps the tiers apart: a factor of 4 is 2.8 sigma.)
* Memory bandwidth (the paper has none; the testbed needs one): 0.25 byte per FLOP of
  compute, clipped to 4-200 GB/s. That ratio sits between a Raspberry Pi 4 (0.27 B/FLOP)
  and a Jetson Nano (0.05), the class of devices the paper's compute range describes.
* Efficiencies are 1.0: the paper's figures are used as attained rates.
* Links: bandwidth and one-way latency uniform per link, in a range set by the tiers of the
  two ends (``LINK_RANGES``): fast between cloud and regional, slow to the edge, 0.01 to
  40 Gbit/s overall. The paper has no latency; the ranges here are the testbed's choice.
* Controller: the device with the most compute, as in the prototype.

Values are rounded for legibility before they are written; the written values are the ones
every run uses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from testbed.cluster.tiered import draw_devices, draw_links, mesh  # noqa: E402

SEED = 2505_02533  # the paper's arXiv number
OUT_DIR = Path(__file__).resolve().parent


def edge8(rng: np.random.Generator):
    """1 cloud over 2 regional sites; 5 edge devices, each on a regional site, the edge
    devices of one site on a shared local network (meshed)."""
    devices = draw_devices(rng, 8)
    cloud, regional, edge = [0], [1, 2], list(range(3, 8))
    groups = [[e for k, e in enumerate(edge) if k % len(regional) == r]
              for r in range(len(regional))]
    pairs = [(c, r) for c in cloud for r in regional] + mesh(regional)
    for r, group in zip(regional, groups):
        pairs += [(r, e) for e in group] + mesh(group)
    comments = {devices[e]["name"]: f"site of {devices[r]['name']}"
                for r, group in zip(regional, groups) for e in group}
    return devices, draw_links(rng, devices, pairs), comments


def clusters16(rng: np.random.Generator):
    """4 clusters of 4 meshed devices; the strongest-tier member of each cluster (its head)
    is meshed with the other heads."""
    devices = draw_devices(rng, 16)
    heads = [0, 1, 2, 3]  # 2 cloud + 2 regional
    clusters = [[h] + list(range(4 + c, 16, 4)) for c, h in enumerate(heads)]
    pairs = mesh(heads)
    for members in clusters:
        pairs += mesh(members)
    order = [i for members in clusters for i in members]
    comments = {devices[i]["name"]: f"cluster {c}" + (" head" if i == members[0] else "")
                for c, members in enumerate(clusters) for i in members}
    return [devices[i] for i in order], draw_links(rng, devices, pairs), comments


def cloud24(rng: np.random.Generator):
    """2 meshed clouds; 7 regional sites, each linked to both clouds and to the next site
    (ring); 15 edge devices spread over the sites, meshed within a site."""
    devices = draw_devices(rng, 24)
    from testbed.cluster.tiered import tier_counts
    counts = tier_counts(24)
    cloud = list(range(counts["cloud"]))
    regional = list(range(len(cloud), len(cloud) + counts["regional"]))
    edge = list(range(len(cloud) + len(regional), 24))
    groups = [[e for k, e in enumerate(edge) if k % len(regional) == r]
              for r in range(len(regional))]
    pairs = mesh(cloud) + [(c, r) for r in regional for c in cloud]
    pairs += [(regional[k], regional[(k + 1) % len(regional)]) for k in range(len(regional))]
    for r, group in zip(regional, groups):
        pairs += [(r, e) for e in group] + mesh(group)
    comments = {devices[e]["name"]: f"site of {devices[r]['name']}"
                for r, group in zip(regional, groups) for e in group}
    return devices, draw_links(rng, devices, pairs), comments


def bandwidth_text(mbps: float) -> str:
    return f"{mbps / 1e3:g} Gbit/s" if mbps >= 1e3 else f"{mbps:g} Mbit/s"


def render(name: str, title: str, stream: int, devices: list[dict], links: list[dict],
           comments: dict[str, str]) -> str:
    """The YAML text of one topology."""
    controller = max(devices, key=lambda d: d["gflops"])["name"]  # first of the strongest
    lines = [
        f"# {title}",
        "# The paper's setting (PAPER.md, 'Experiment settings seen in the prototype's",
        "# configs'): tiered devices with log-normal, clipped memory and compute, link",
        "# bandwidths uniform per link by tier. GENERATED by topologies/make_paper_topologies.py",
        f"# (SeedSequence({SEED}), stream {stream}); edit the script, not this file. Memory",
        "# bandwidth and latencies are the testbed's additions (see the script's docstring).",
        f"name: {name}",
        f"controller: {controller}    # the device with the most compute, as in the prototype",
        "nodes:",
    ]
    for d in devices:
        note = f"    # {d['tier']}" + (f", {comments[d['name']]}" if d["name"] in comments else "")
        lines.append(
            f"  - {{name: {d['name']}, device: {{peak_flops: \"{d['gflops']:g} GFLOP/s\", "
            f"mem_bw: \"{d['mem_bw_gbps']:g} GB/s\", memory: \"{d['memory_gb']:g} GB\", "
            f"eff_flops: 1.0, eff_mem: 1.0}}}}{note}")
    lines.append("links:")
    for link in links:
        lines.append(f"  - {{a: {link['a']}, b: {link['b']}, bandwidth: "
                     f"\"{bandwidth_text(link['mbps'])}\", latency: \"{link['ms']:g} ms\"}}")
    return "\n".join(lines) + "\n"


SHAPES = (
    ("paper_edge8", "paper-edge8",
     "8-node hierarchical edge cluster (1 cloud, 2 regional, 5 edge).", edge8),
    ("paper_clusters16", "paper-clusters16",
     "16 nodes in 4 clusters (2 cloud, 5 regional, 9 edge).", clusters16),
    ("paper_cloud24", "paper-cloud24",
     "24 nodes in cloud, regional and edge tiers (2 cloud, 7 regional, 15 edge).", cloud24),
)


def render_all() -> dict[str, str]:
    """File name -> YAML text for the three topologies."""
    streams = np.random.SeedSequence(SEED).spawn(len(SHAPES))
    texts = {}
    for stream, ((stem, name, title, shape), seed) in enumerate(zip(SHAPES, streams)):
        devices, links, comments = shape(np.random.default_rng(seed))
        texts[f"{stem}.yaml"] = render(name, title, stream, devices, links, comments)
    return texts


def main() -> None:
    for file_name, text in render_all().items():
        (OUT_DIR / file_name).write_text(text, encoding="utf-8")
        print(f"wrote {OUT_DIR / file_name}")


if __name__ == "__main__":
    main()
