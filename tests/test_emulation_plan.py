"""The emulation backend's parts that need neither root nor Mininet: the per-token plan
compiled from a simulation, its join with the simulator's records, the workers on the
loopback interface, addressing, shaping commands and the model corrections."""

from __future__ import annotations

import dataclasses
import math

import pandas as pd
import pytest

from testbed.cluster import TOPOLOGY_GENERATORS, make_device
from testbed.cluster.build import build_topology
from testbed.emulation.addressing import AddressingError, plan_addresses
from testbed.emulation.compare import (COLUMNS, error_rows, error_table, join_tokens,
                                       join_transfers)
from testbed.emulation.executor import emulated_tables
from testbed.emulation.janitor import alive
from testbed.emulation.loopback import run_on_loopback
from testbed.emulation.model_correction import (GOODPUT_FACTOR, add_header_overhead,
                                                scaled_capacity, wire_bytes, zero_latency)
from testbed.emulation.plan import PlanError, compile_plan
from testbed.emulation.recording import ReplayPartitioner, simulate
from testbed.emulation.resources import RunResources, guarded
from testbed.emulation.shaping import queue_batch, schedule, tc_rate_args
from testbed.model import get_cost_model, get_model
from testbed.partition.base import Partitioner
from testbed.plan.placement import Placement
from testbed.sim.engine import SimConfig
from testbed.traces.series import Series

MODEL = get_model("gpt2-small").with_overrides(n_layers=2)


class Switcher(Partitioner):
    """Test partitioner: ``first`` until token ``at``, then ``then`` (a migration)."""

    name = "switcher"

    def __init__(self, first: str, then: str, at: int = 3):
        super().__init__(None)
        self.first, self.then, self.at = first, then, at

    def decide(self, obs):
        device = self.first if obs.token_index < self.at else self.then
        devices = [device] * len(obs.blocks)
        devices[0] = "b"  # one attention block always elsewhere: some inference traffic
        return Placement(obs.model, devices)


def _config(cost: str = "decode", tokens: int = 5) -> SimConfig:
    devices = [make_device("ctl", "apple-m2-mac-mini"), make_device("a", "jetson-orin-nx-16gb"),
               make_device("b", "jetson-orin-nano-8gb"), make_device("c", "raspberry-pi-5-8gb")]
    topology = TOPOLOGY_GENERATORS.get("full_mesh")(devices, 50e6, 1e-3)
    return SimConfig(model=MODEL, cost=get_cost_model(cost), topology=topology,
                     prompt_tokens=8, generate_tokens=tokens)


def _compile(config: SimConfig, run):
    records = run.records
    return compile_plan(model=config.model, cost=config.cost,
                        controller=config.topology.controller,
                        devices=list(config.topology.devices),
                        prompt_tokens=config.prompt_tokens, tokens=records.tokens,
                        flows=records.flows, jobs=records.jobs, decisions=run.decisions)


def _as_emulated(plan, run) -> dict[str, pd.DataFrame]:
    """Tables as if the emulation had reproduced the simulation exactly."""
    flows = sorted(run.records.flows, key=lambda f: (f.start_s, f.flow_id))
    joined = join_transfers(plan, flows, pd.DataFrame(
        {"xfer": [t.xfer for t in plan.transfers], "start_s": 0.0, "end_s": 0.0,
         "duration_s": 1.0}), run.topology)
    transfers = pd.DataFrame({"xfer": joined.xfer, "start_s": joined.sim_start_s,
                              "end_s": joined.sim_end_s, "duration_s": joined.sim_s})
    tokens = pd.DataFrame([{"token": t.token, "start_s": t.start_s, "end_s": t.end_s,
                            "latency_s": t.latency_s} for t in run.records.tokens])
    return {"transfers": transfers, "tokens": tokens}


def test_plan_mirrors_the_simulated_pass_and_its_migrations():
    config = _config()
    run = simulate(config, Switcher("a", "c"), "switcher")
    plan = _compile(config, run)
    records = run.records
    assert len(plan.transfers) == len(records.flows)
    assert len(plan.computes) == len(records.jobs)
    assert [t.token for t in plan.tokens] == [1, 2, 3, 4, 5]
    migrations = [t for t in plan.transfers if t.kind == "migration"]
    simulated = [f for f in records.flows if f.kind == "migration"]
    assert migrations and len(migrations) == len(simulated)
    assert {(t.src, t.dst, t.token) for t in migrations} == {("a", "c", 3)}
    assert sum(t.size_bytes for t in migrations) == round(sum(f.size_bytes for f in simulated))
    # the controller tells the old device to send and hears from the new one
    assert {(t.device, t.dst) for t in plan.tasks if t.op == "signal"} == {("ctl", "a"),
                                                                          ("c", "ctl")}
    # simulated compute times are what the workers will sleep
    assert sum(c.sim_s for c in plan.computes) == pytest.approx(
        sum(j.end_s - j.start_s for j in records.jobs))


def test_join_of_identical_times_has_no_error():
    config = _config(cost="paper")
    run = simulate(config, Switcher("a", "c"), "switcher")
    plan = _compile(config, run)
    emulated = _as_emulated(plan, run)
    transfers = join_transfers(plan, run.records.flows, emulated["transfers"], run.topology)
    tokens = join_tokens(run.records.tokens, emulated["tokens"])
    assert len(transfers) == len(plan.transfers)
    assert (transfers.sim_s == transfers.emu_s).all()
    table = error_table(error_rows(transfers, tokens))
    assert list(table.columns) == COLUMNS
    assert {"transfer_time", "token_latency"} <= set(table.metric)
    assert table.set_index("metric").loc["token_latency", "median_err_pct"] == 0.0


def test_join_refuses_records_of_another_plan():
    config = _config(cost="paper")
    run = simulate(config, Switcher("a", "c"), "switcher")
    other = simulate(config, Switcher("c", "a"), "switcher")
    plan = _compile(config, run)
    emulated = _as_emulated(plan, run)
    with pytest.raises(ValueError):
        join_transfers(plan, other.records.flows, emulated["transfers"], run.topology)


def test_replayed_placements_give_the_same_plan():
    config = _config()
    run = simulate(config, Switcher("a", "c"), "switcher")
    again = simulate(config, ReplayPartitioner(run.decisions), "replay")
    assert [(f.src, f.dst, f.size_bytes) for f in again.records.flows] == \
        [(f.src, f.dst, f.size_bytes) for f in run.records.flows]


def test_live_migrations_and_missing_jobs_are_refused():
    config = _config()
    run = simulate(config, Switcher("a", "c"), "switcher")
    with pytest.raises(PlanError, match="blocking"):
        compile_plan(model=config.model, cost=config.cost, controller="ctl",
                     devices=list(config.topology.devices), prompt_tokens=8,
                     tokens=run.records.tokens, flows=run.records.flows, jobs=run.records.jobs,
                     decisions=run.decisions, migration_mode="live")
    with pytest.raises(PlanError, match="record_jobs"):
        compile_plan(model=config.model, cost=config.cost, controller="ctl",
                     devices=list(config.topology.devices), prompt_tokens=8,
                     tokens=run.records.tokens, flows=run.records.flows, jobs=[],
                     decisions=run.decisions)


def test_workers_execute_the_plan_on_the_loopback():
    config = _config(cost="paper", tokens=4)
    run = simulate(config, Switcher("a", "c"), "switcher")
    plan = _compile(config, run)
    resources = RunResources()
    with guarded(resources):
        emulated = run_on_loopback(plan, resources)
        pids = list(resources.workers)
    tables = emulated_tables(plan, emulated)
    assert len(tables["tokens"]) == 4
    assert (tables["tokens"].latency_s > 0).all()
    # every token took at least its simulated compute on the critical path
    assert len(tables["transfers"]) == len(plan.transfers)
    assert tables["transfers"].duration_s.min() >= 0
    joined = join_transfers(plan, run.records.flows, tables["transfers"], run.topology)
    assert len(joined) == len(plan.transfers)
    assert not any(alive(pid) for pid in pids)
    assert not resources.run_dir.exists()


def test_addresses_route_along_the_topology_paths():
    topology = build_topology({"file": "line_4.yaml"}, source="test")
    plan = plan_addresses(topology, "tbzzz")
    hosts = {d: plan.mn_name[d] for d in topology.devices}
    assert all(name.startswith("tbzzz") for name in plan.mn_name.values())
    assert all(len(port.name) <= 15 for port in plan.ports.values())
    # mac-mini reaches pi5 through jetson-nx: its route leaves on the mac-mini--jetson-nx link
    route = next(r for r in plan.routes if r.device == "mac-mini"
                 and r.destination == plan.identity["pi5"])
    assert route.dev == plan.ports[("mac-mini", "jetson-nx")].name
    assert route.via == plan.ports[("jetson-nx", "mac-mini")].address
    # every ordered pair crosses each link of its path: fair-queue classes exist for it
    pair = (plan.identity["mac-mini"], plan.identity["pi5"])
    for link in topology.path("mac-mini", "pi5"):
        assert pair in plan.crossing[link]
    assert len(hosts) == 4


def test_switch_loops_are_refused():
    from testbed.cluster.topology import LinkSpec, Topology
    devices = [make_device("a", "apple-m2-mac-mini"), make_device("b", "jetson-orin-nx-16gb")]
    links = [LinkSpec(u, v, 1e8, 1e-4) for u, v in
             (("a", "s1"), ("b", "s2"), ("s1", "s2"), ("s2", "s3"), ("s3", "s1"))]
    topology = Topology(devices + ["s1", "s2", "s3"], links)
    with pytest.raises(AddressingError, match="loop"):
        plan_addresses(topology, "tbzzz")


def test_shaping_commands_and_schedule():
    args = tc_rate_args("tbzzzh0-eth0", 40e6)
    assert args[:4] == ["tc", "class", "change", "dev"] and "40000000bit" in args
    lines = queue_batch("x-eth0", 40e6, [("10.255.0.1", "10.255.0.2")])
    assert lines[1].endswith("default 2")
    assert any("match ip src 10.255.0.1/32 match ip dst 10.255.0.2/32" in line
               for line in lines)
    assert len(queue_batch("x-eth0", 40e6, [], queueing="fifo")) == 3
    topology = _config().topology
    series = Series((0.0, 1.0), (50e6, 10e6), loop_period_s=2.0, unit="bit/s")
    topology = topology.with_link_series("a", "b", series)
    changes = schedule(topology, 4.5)
    assert [(c.at_s, c.bps) for c in changes] == [(1.0, 10e6), (2.0, 50e6), (3.0, 10e6),
                                                  (4.0, 50e6)]


def test_model_corrections():
    assert wire_bytes(0) == 0
    assert wire_bytes(1448) == 1448 + 66
    assert wire_bytes(1449) == 1449 + 2 * 66
    assert GOODPUT_FACTOR == pytest.approx(1448 / 1514)
    topology = _config().topology
    flat = zero_latency(topology)
    assert all(link.latency_s == 0 for link in flat.links.values())
    assert flat.path("ctl", "c") == topology.path("ctl", "c")
    scaled = scaled_capacity(topology, 0.5)
    assert scaled.links[("ctl", "a")].capacity_bps == 25e6
    config = dataclasses.replace(_config(), topology=flat)
    plain = simulate(config, Switcher("a", "c"), "x")
    heavier = simulate(config, ReplayPartitioner(plain.decisions), "x",
                       network_patch=add_header_overhead)
    sizes = [f.size_bytes for f in plain.records.flows]
    assert [f.size_bytes for f in heavier.records.flows] == [wire_bytes(s) for s in sizes]
    assert heavier.records.tokens[-1].end_s > plain.records.tokens[-1].end_s
    assert not math.isnan(heavier.records.tokens[-1].end_s)


def test_cli_reports_a_missing_mininet(monkeypatch, capsys, tmp_path):
    from testbed import cli
    from testbed.emulation import validate
    monkeypatch.setattr(validate, "unavailable_reason", lambda: "the Mininet backend needs root")
    status = cli.main(["validate", "mininet", "experiments/validate_mininet.yaml", "--out",
                       str(tmp_path / "out")])
    assert status == 3
    assert "needs root" in capsys.readouterr().err
