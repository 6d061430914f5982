"""Fixed routes: the path of least total latency, with deterministic tie-breaking.

Among paths of equal total latency the one with fewest hops wins, then the lexicographically
smallest node sequence. Latencies are compared as whole picoseconds so that sums are exact
and ties are real ties, not accidents of floating-point rounding order.

This is Dijkstra's algorithm on the label (latency, hops, node sequence). The label of a
path's prefix never exceeds the label of the path, and two prefixes of equal latency and hops
have equal length, so their order decides the order of their extensions: the first label to
reach a node is its best route.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping

LATENCY_RESOLUTION_S = 1e-12


def routes_from(src: str, latency_s: Mapping[tuple[str, str], float],
                neighbours: Mapping[str, Iterable[str]]) -> dict[str, tuple[str, ...]]:
    """Best node sequence from ``src`` to every node it can reach (``src`` maps to ``(src,)``).

    ``latency_s[(u, v)]`` is the latency of the directed link u -> v in seconds;
    ``neighbours[u]`` lists the nodes u has a link to.
    """
    best: dict[str, tuple[str, ...]] = {}
    heap: list[tuple[int, int, tuple[str, ...]]] = [(0, 0, (src,))]
    while heap:
        latency_ps, hops, path = heapq.heappop(heap)
        node = path[-1]
        if node in best:
            continue
        best[node] = path
        for nxt in neighbours.get(node, ()):
            if nxt not in best:
                step_ps = round(latency_s[(node, nxt)] / LATENCY_RESOLUTION_S)
                heapq.heappush(heap, (latency_ps + step_ps, hops + 1, path + (nxt,)))
    return best


def all_routes(latency_s: Mapping[tuple[str, str], float]
               ) -> dict[tuple[str, str], tuple[str, ...]]:
    """Best node sequence for every ordered pair of distinct, connected nodes."""
    neighbours: dict[str, list[str]] = {}
    for u, v in latency_s:
        neighbours.setdefault(u, []).append(v)
        neighbours.setdefault(v, [])
    routes: dict[tuple[str, str], tuple[str, ...]] = {}
    for src in neighbours:
        for dst, path in routes_from(src, latency_s, neighbours).items():
            if dst != src:
                routes[(src, dst)] = path
    return routes
