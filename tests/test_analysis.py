"""Migration interference: overlapping means sharing a link (or a Wi-Fi channel) at the
same time, and rates are compared on the same route."""

from __future__ import annotations

import pandas as pd
import pytest

from testbed.cluster.build import build_topology
from testbed.experiments.analysis import migration_interference, shared_resources


def flow(src, dst, kind, start, end, size=1000.0):
    return {"partitioner": "p", "src": src, "dst": dst, "kind": kind, "size_bytes": size,
            "start_s": start, "fluid_end_s": end, "end_s": end}


@pytest.fixture(scope="module")
def home():
    return build_topology({"file": "home_office.yaml"}, source="<test>")


@pytest.fixture(scope="module")
def wired():
    return build_topology({"file": "home_office.yaml", "media": False}, source="<test>")


def test_a_migration_at_the_same_time_on_other_links_does_not_count(wired):
    flows = pd.DataFrame([
        flow("mac-mini", "nuc", "migration", 0.0, 1.0),
        flow("jetson-nx", "pi5", "inference", 0.2, 0.4),     # same time, disjoint links
        flow("nuc", "mac-mini", "inference", 0.2, 0.4),      # reverse direction: disjoint
        flow("mac-mini", "jetson-nx", "inference", 0.5, 0.6),  # shares mac-mini -> switch
        flow("mac-mini", "jetson-nx", "inference", 1.5, 1.6),  # same links, after it ended
    ])
    out = migration_interference(flows, wired).iloc[0]
    assert out.inference_flows == 4 and out.overlapping == 1


def test_stations_of_one_access_point_share_its_channel(home, wired):
    flows = pd.DataFrame([flow("jetson-nx", "ap", "migration", 0.0, 1.0) | {"dst": "pi5"},
                          flow("phone", "nuc", "inference", 0.2, 0.4)])
    assert migration_interference(flows, home).iloc[0].overlapping == 1   # one BSS
    assert migration_interference(flows, wired).iloc[0].overlapping == 0  # a wire each
    assert "bss" in shared_resources(home)("phone", "nuc")


def test_the_rate_ratio_compares_flows_on_the_same_route(wired):
    # a fast route that never meets a migration and a slow one that sometimes does, at
    # the same rate either way: migrations cost nothing, so the ratio must be 1 (comparing
    # across routes would report the slow route's rate against the fast one's)
    rows = [flow("mac-mini", "nuc", "migration", 10.0, 11.0)]
    for k in range(4):
        rows.append(flow("nuc", "mac-mini", "inference", 20.0 + k, 20.0 + k + 0.001))  # fast
        rows.append(flow("mac-mini", "nuc", "inference", k * 10 + 10.2, k * 10 + 10.3))  # slow
    out = migration_interference(pd.DataFrame(rows), wired).iloc[0]
    assert out.overlapping == 1
    assert out.rate_ratio == pytest.approx(1.0)
    assert out.routes_compared == 1
    # halve the overlapping flow's rate: the ratio says so
    rows[2]["fluid_end_s"] = rows[2]["end_s"] = 10.4
    slower = migration_interference(pd.DataFrame(rows), wired).iloc[0]
    assert slower.rate_ratio == pytest.approx(0.5)
