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
from testbed.cluster.message_costs import uniform_message_costs
from testbed.dataflows import make_dataflow
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
from testbed.partition import make_partitioner
from testbed.partition.base import Partitioner
from testbed.plan.placement import Placement
from testbed.sim.engine import SimConfig, Simulation
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


#: Two layers cut into two proj and two ffn shards: tensor parallelism over two devices.
SHARDED = MODEL.with_overrides(proj_shards=2, ffn_shards=2)


def _config(cost: str = "decode", tokens: int = 5, **options) -> SimConfig:
    devices = [make_device("ctl", "apple-m2-mac-mini"), make_device("a", "jetson-orin-nx-16gb"),
               make_device("b", "jetson-orin-nano-8gb"), make_device("c", "raspberry-pi-5-8gb")]
    topology = TOPOLOGY_GENERATORS.get("full_mesh")(devices, 50e6, 1e-3)
    options.setdefault("model", MODEL)
    return SimConfig(cost=get_cost_model(cost), topology=topology, prompt_tokens=8,
                     generate_tokens=tokens, **options)


def _compile(config: SimConfig, run, **options):
    records = run.records
    return compile_plan(model=config.model, cost=config.cost,
                        controller=config.topology.controller,
                        devices=list(config.topology.devices),
                        prompt_tokens=config.prompt_tokens, tokens=records.tokens,
                        flows=records.flows, jobs=records.jobs, decisions=run.decisions,
                        dataflow=config.dataflow, **options)


def _one_for_one(plan, run) -> None:
    """The plan's inference transfers are the simulator's inference flows, one for one,
    and the join pairs each with the flow it was compiled from."""
    flows = [f for f in run.records.flows if f.kind == "inference"]
    transfers = [t for t in plan.transfers if t.kind == "inference"]
    assert flows and len(transfers) == len(flows)
    assert sorted((t.token, t.src, t.dst, t.size_bytes) for t in transfers) == \
        sorted((int(f.tag[1:]), f.src, f.dst, round(f.size_bytes)) for f in flows)
    by_id = {f.flow_id: f for f in run.records.flows}
    for t in plan.transfers:
        flow = by_id[t.flow_id]
        assert (flow.src, flow.dst, int(flow.tag[1:]), flow.start_s) == \
            (t.src, t.dst, t.token, t.sim_start_s)
        assert abs(flow.size_bytes - t.size_bytes) <= 0.5
    emulated = _as_emulated(plan, run)
    joined = join_transfers(plan, run.records.flows, emulated["transfers"], run.topology)
    assert len(joined) == len(plan.transfers)
    starts = {t.xfer: t.sim_start_s for t in plan.transfers}
    assert (joined.sim_start_s == joined.xfer.map(starts)).all()
    assert (joined.sim_s == joined.emu_s).all()


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
    _one_for_one(plan, run)


def _slices(devices: list[str]) -> Partitioner:
    return make_partitioner({"name": "slices", "devices": devices})


@pytest.mark.parametrize("dataflow, hosts_blocks, devices, stages", [
    ("head_level", False, ["a", "b", "c"], {"input", "attn_out", "proj_out", "output"}),
    ("tensor_parallel", False, ["a", "b"], {"input", "allreduce", "output"}),
    ({"name": "tensor_parallel", "collective": "tree"}, False, ["a", "b", "c"],
     {"input", "attn_out", "allreduce", "output"}),
    ("root_sync", True, ["ctl", "a"], {"sync_xb", "sync_qkv", "sync_att", "sync_proj",
                                       "sync_ffn_in", "sync_ffn_a", "sync_ffn_b",
                                       "sync_ffn2"}),
], ids=["head_level", "tensor_parallel", "tensor_parallel-tree", "root_sync"])
def test_plan_is_the_task_graph_the_engine_ran(dataflow, hosts_blocks, devices, stages):
    config = _config(model=SHARDED, dataflow=dataflow, controller_hosts_blocks=hosts_blocks)
    run = simulate(config, _slices(devices), "slices")
    assert run.records.outcome == "ok"
    plan = _compile(config, run)
    _one_for_one(plan, run)
    assert {t.stage for t in plan.transfers} == stages
    # one compute task per simulated computation, with its time
    assert len(plan.computes) == len(run.records.jobs)
    assert sorted((c.token, c.device, c.kind, c.sim_s) for c in plan.computes) == sorted(
        (int(j.label.split(".")[0][1:]), j.device, j.label.split(".", 1)[1],
         j.end_s - j.start_s) for j in run.records.jobs)
    # the tasks of each token are those of the engine's graph of that step
    simulation = Simulation(dataclasses.replace(config, record_jobs=True), _slices(devices))
    placement = run.decisions[0][1]
    for token in (1, 2):
        graph = simulation.graph(placement, simulation.generation.step_of(token))
        template = graph.template
        sizes = sorted((template.device[i], template.dst[i], round(graph.size_bytes[i]))
                       for i in range(len(template)) if template.op[i] == "transfer")
        assert sorted((t.src, t.dst, t.size_bytes) for t in plan.transfers
                      if t.token == token) == sizes
    assert plan.dataflow == make_dataflow(dataflow).describe()


def test_root_sync_slices_are_checked_against_the_controller():
    config = _config(model=SHARDED, dataflow="root_sync", controller_hosts_blocks=True,
                     tokens=2)
    run = simulate(config, _slices(["ctl", "a"]), "slices")
    moved = [(1, Placement(SHARDED, ["a" if d == "ctl" else "ctl"
                                     for d in run.decisions[0][1].devices]))]
    with pytest.raises(PlanError, match="root_sync"):
        compile_plan(model=SHARDED, cost=config.cost, controller="ctl",
                     devices=list(config.topology.devices), prompt_tokens=8,
                     tokens=run.records.tokens, flows=run.records.flows,
                     jobs=run.records.jobs, decisions=moved, dataflow="root_sync")


def test_a_run_of_another_dataflow_is_refused():
    config = _config(model=SHARDED, dataflow="tensor_parallel", tokens=2)
    run = simulate(config, _slices(["a", "b"]), "slices")
    with pytest.raises(PlanError, match="did not execute this graph"):
        _compile(dataclasses.replace(config, dataflow="head_level"), run)


def test_zero_byte_transfers_stay_messages():
    config = _config(cost="paper", model=SHARDED, dataflow="tensor_parallel", tokens=2)
    run = simulate(config, _slices(["a", "b"]), "slices")
    plan = _compile(config, run)
    assert plan.transfers and all(t.size_bytes == 0 for t in plan.transfers)
    _one_for_one(plan, run)
    assert sum(t.op == "send" for t in plan.tasks) == len(plan.transfers)


def test_message_costs_are_replayed_as_computations():
    config = _config(model=SHARDED, dataflow="root_sync", controller_hosts_blocks=True,
                     tokens=3)
    costs = uniform_message_costs(config.topology, 30e-6, 20e-6)
    config = dataclasses.replace(config, messages=costs)
    run = simulate(config, _slices(["ctl", "a"]), "slices")
    plan = _compile(config, run, messages=costs)
    _one_for_one(plan, run)
    assert len(plan.computes) == len(run.records.jobs)
    overheads = [c for c in plan.computes if c.kind in ("send", "recv")]
    assert len(overheads) == 2 * len(plan.transfers)
    assert sum(c.sim_s for c in plan.computes) == pytest.approx(
        sum(j.end_s - j.start_s for j in run.records.jobs))
    # each send waits for its overhead, computed on the same device just before
    kinds = {c.task: c for c in plan.computes}
    for task in plan.tasks:
        if task.op == "send":
            (dep,) = task.deps
            before = kinds[int(dep[1:])]
            assert (before.kind, before.device) == ("send", task.device)
    with pytest.raises(PlanError, match="per-link"):
        _compile(config, run, messages=uniform_message_costs(config.topology, 30e-6, 20e-6,
                                                              5e-6))


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


def _on_loopback(plan):
    """(emulated tables, worker PIDs, the run's resources) of ``plan`` run on loopback."""
    resources = RunResources()
    with guarded(resources):
        emulated = run_on_loopback(plan, resources)
        pids = list(resources.workers)
    return emulated_tables(plan, emulated), pids, resources


def test_workers_execute_the_plan_on_the_loopback():
    config = _config(cost="paper", tokens=4)
    run = simulate(config, Switcher("a", "c"), "switcher")
    plan = _compile(config, run)
    tables, pids, resources = _on_loopback(plan)
    assert len(tables["tokens"]) == 4
    assert (tables["tokens"].latency_s > 0).all()
    # every token took at least its simulated compute on the critical path
    assert len(tables["transfers"]) == len(plan.transfers)
    assert tables["transfers"].duration_s.min() >= 0
    joined = join_transfers(plan, run.records.flows, tables["transfers"], run.topology)
    assert len(joined) == len(plan.transfers)
    assert (joined.size_bytes == 0).any()    # zero-byte hand-overs arrive as messages too
    assert not any(alive(pid) for pid in pids)
    assert not resources.run_dir.exists()


def test_workers_execute_a_tensor_parallel_plan_on_the_loopback():
    config = _config(model=SHARDED, dataflow="tensor_parallel", tokens=3)
    run = simulate(config, _slices(["a", "b"]), "slices")
    plan = _compile(config, run)
    tables, pids, resources = _on_loopback(plan)
    assert len(tables["tokens"]) == 3 and (tables["tokens"].latency_s > 0).all()
    joined = join_transfers(plan, run.records.flows, tables["transfers"], run.topology)
    assert len(joined) == len(plan.transfers) == len(run.records.flows)
    assert joined.emu_s.notna().all() and (joined.emu_s >= 0).all()
    assert set(joined.stage) == {"input", "allreduce", "output"}
    assert len(tables["computes"]) == len(run.records.jobs)
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


VALIDATION = """
name: dataflows-emulation
seed: 1
model: {name: gpt2-small, overrides: {n_layers: 2, proj_shards: 2, ffn_shards: 2}}
cost: decode
topology: {file: line_4.yaml}
workload: {prompt_tokens: 16, generate_tokens: 3, decision_interval: 1}
controller: {device: mac-mini, hosts_blocks: true}
dataflow: tensor_parallel
network: {message_costs: {send: "20 us", recv: "10 us"%s}}
partitioners:
  - {name: slices, devices: [jetson-nx, pi5]}
  - {name: slices, devices: [mac-mini, jetson-nano], dataflow: root_sync, label: dllama}
  - {name: fixed, placement: {"*": jetson-nano}, dataflow: head_level}
"""


def test_validation_replays_each_partitioners_dataflow(tmp_path):
    """What ``testbed validate mininet`` hands the emulation (no Mininet needed): per
    partitioner entry, the plan of the dataflow it was simulated under."""
    from testbed.emulation import validate
    from testbed.errors import ConfigError
    from testbed.experiments.scenario import load_scenario

    path = tmp_path / "scenario.yaml"
    path.write_text(VALIDATION % "", encoding="utf-8")
    scenario = load_scenario(path)
    validate.check_supported(scenario)
    simulated = validate.simulations(scenario, scenario.sim.topology)
    assert [make_dataflow(d).name for _, d in simulated] == ["tensor_parallel", "root_sync",
                                                             "head_level"]
    for i, (run, dataflow) in enumerate(simulated):
        plan = validate.compiled_plan(scenario, run, dataflow, i)
        assert plan.dataflow == make_dataflow(dataflow).describe()
        _one_for_one(plan, run)
        assert {"send", "recv"} <= {c.kind for c in plan.computes}
    stages = {make_dataflow(d).name: {t.stage for t in validate.compiled_plan(scenario, r, d, 0)
                                      .transfers} for r, d in simulated}
    assert "allreduce" in stages["tensor_parallel"] and "sync_qkv" in stages["root_sync"]
    # the plan of one dataflow does not fit the run of another
    with pytest.raises(ConfigError, match="did not execute this graph"):
        validate.compiled_plan(scenario, simulated[0][0], "head_level", 0)
    path.write_text(VALIDATION % ', per_link: "5 us"', encoding="utf-8")
    with pytest.raises(ConfigError, match="per-link"):
        validate.check_supported(load_scenario(path))


def test_mininet_refuses_shared_media_and_says_what_to_do(tmp_path):
    from testbed.emulation import validate
    from testbed.errors import ConfigError
    from testbed.experiments.scenario import load_scenario
    path = tmp_path / "scenario.yaml"
    path.write_text(VALIDATION.replace("{file: line_4.yaml}", "{file: home_office.yaml}")
                    % "", encoding="utf-8")
    with pytest.raises(ConfigError, match="media: false") as caught:
        validate.check_supported(load_scenario(path))
    assert caught.value.field == "topology"
    path.write_text(VALIDATION.replace("{file: line_4.yaml}",
                                       "{file: home_office.yaml, media: false}") % "",
                    encoding="utf-8")
    scenario = load_scenario(path)
    assert not scenario.sim.topology.media
    validate.check_supported(scenario)
