"""``testbed run --timeline``: a Chrome/Perfetto trace with a track per device and per link
direction; ``--gantt``: a Gantt chart of a few tokens."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pandas as pd

from testbed.experiments.results import read_table
import pytest

from testbed.experiments.scenario import load_scenario
from testbed.experiments.trace_events import microseconds

REPO = Path(__file__).resolve().parents[1]

# Heavy background load and a link that collapses every 40 ms: resource_aware migrates
# (on per-station links: with the shared BSS it keeps its placement).
SCENARIO = """\
name: timeline
seed: 3
model: {name: gpt2-small, overrides: {n_layers: 2}}
topology: {file: home_office.yaml, media: false}
links:
  - {a: ap, b: jetson-nx, both_directions: true,
     bandwidth: {points: [["0 s", "400 Mbit/s"], ["20 ms", "2 Mbit/s"]], loop: "40 ms"}}
devices:
  "*": {background: {uniform: "90 %", step: "10 ms"}}
workload: {prompt_tokens: 32, generate_tokens: 12, decision_interval: 1}
migration: {mode: blocking, weights_preloaded: true}
controller: {device: mac-mini, hosts_blocks: false}
partitioners: [resource_aware, round_robin]
"""


def cli(*args: object, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "testbed.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    folder = tmp_path_factory.mktemp("timeline")
    path = folder / "timeline.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    proc = cli("run", path, "--out", folder / "out", "--no-figures", "--timeline",
               folder / "trace.json", "--gantt", folder / "gantt.png", "--gantt-tokens", "2",
               cwd=folder)
    assert proc.returncode == 0, proc.stderr
    document = json.loads((folder / "trace.json").read_text(encoding="utf-8"))
    return folder, document, load_scenario(path)


def test_every_event_is_well_formed(traced):
    _, document, _ = traced
    events = document["traceEvents"]
    assert events
    for event in events:
        for key in ("ph", "ts", "pid", "tid", "name"):
            assert key in event, (key, event)
        assert event["ph"] in ("X", "M")
        assert event["ts"] >= 0
        if event["ph"] == "X":
            assert event["dur"] >= 0
            assert isinstance(event["args"], dict)


def test_processes_and_tracks_are_named(traced):
    _, document, scenario = traced
    events = document["traceEvents"]
    processes = {e["pid"]: e["args"]["name"] for e in events if e["name"] == "process_name"}
    assert sorted(processes.values()) == ["partitioner resource_aware", "partitioner round_robin"]
    threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
               if e["name"] == "thread_name"}
    for pid in processes:
        names = {name for (p, _), name in threads.items() if p == pid}
        for device in scenario.sim.topology.devices:
            assert f"device {device}" in names
        for src, dst in scenario.sim.topology.links:
            assert f"link {src}->{dst}" in names
        assert "tokens" in names and "migrations" in names
    for event in events:
        if event["ph"] == "X":
            assert (event["pid"], event["tid"]) in threads, event


def test_slices_match_the_tables(traced):
    folder, document, scenario = traced
    slices = [e for e in document["traceEvents"] if e["ph"] == "X"]
    jobs = read_table(folder / "out", "jobs")
    flows = read_table(folder / "out", "flows")
    migrations = pd.read_csv(folder / "out" / "migrations.csv")
    tokens = pd.read_csv(folder / "out" / "tokens.csv")
    by_cat = defaultdict(int)
    for event in slices:
        by_cat[event["cat"]] += 1
    assert by_cat["compute"] == len(jobs) > 0
    hops = sum(len(scenario.sim.topology.path(s, d)) for s, d in zip(flows.src, flows.dst))
    assert by_cat["transfer"] == hops > 0
    assert by_cat["migration"] == len(migrations) > 0
    assert by_cat["token"] == len(tokens)
    assert {e["name"] for e in slices if e["cat"] == "compute"} <= {"attn", "proj", "ffn",
                                                                   "lm_head"}
    # times in microseconds: the last token ends when tokens.csv says
    last = max(e["ts"] + e["dur"] for e in slices if e["cat"] == "token")
    assert last == pytest.approx(tokens.end_s.max() * 1e6, rel=1e-9)


def test_slices_of_one_track_never_overlap_in_integer_nanoseconds(traced):
    _, document, _ = traced
    per_track = defaultdict(list)
    for event in document["traceEvents"]:
        if event["ph"] == "X":   # as Perfetto reads them: truncated to whole ns
            start = int(event["ts"] * 1000.0)
            per_track[(event["pid"], event["tid"])].append((start,
                                                            start + int(event["dur"] * 1000.0)))
    for track, spans in per_track.items():
        spans.sort()
        for (_, end), (start, _) in zip(spans, spans[1:]):
            assert start >= end, track


def test_microseconds_round_trip_to_whole_nanoseconds():
    for ns in [0, 1, 999, 1001, 123456789, 1_004_543_525, 987_654_321_123, *range(10**9,
                                                                                  10**9 + 500)]:
        assert int(microseconds(ns) * 1000.0) == ns


def test_gantt_png(traced):
    folder, _, _ = traced
    data = (folder / "gantt.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_timeline_of_a_sweep_is_a_one_line_error(tmp_path):
    proc = cli("run", REPO / "experiments" / "e5_scale.yaml", "--quick", "--timeline",
               tmp_path / "t.json", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("testbed: error: --timeline: applies to a single scenario "
                                   "(experiment: simulate), not to a sweep")
