"""Dataflows and their task graphs: every strategy's graph is run by the engine exactly as
its critical path says when nothing contends, conserves the model's work, and sends the
bytes its pattern implies (collectives by formula, root_sync by distributed-llama's own
published figures)."""

from __future__ import annotations

import dataclasses
import math

import pytest

from testbed.cluster import TOPOLOGY_GENERATORS, make_device
from testbed.dataflows import DATAFLOWS, make_dataflow
from testbed.dataflows.collectives import all_reduce, broadcast
from testbed.errors import ConfigError
from testbed.model import get_cost_model, get_model
from testbed.model.blocks import blocks_of
from testbed.model.cost import total_weight_bytes
from testbed.partition.fixed import Fixed
from testbed.plan.critical_path import critical_path
from testbed.plan.graph import COMPUTE, TRANSFER, GraphBuilder
from testbed.plan.messages import MessageCosts
from testbed.plan.network_view import NetworkView
from testbed.plan.observation import DeviceState
from testbed.plan.placement import Placement, PlacementError
from testbed.plan.work import step_work
from testbed.sim.engine import SimConfig, Simulation
from testbed.sim.fast_pass import fast_pass
from testbed.traces.series import Series

KINDS = ["jetson-orin-nx-16gb", "jetson-orin-nano-8gb", "raspberry-pi-5-8gb",
         "intel-nuc13-pro-i7-1360p", "apple-m2-mac-mini"]
DECODE = get_cost_model("decode")


def mesh(n: int, scale: float = 1.0):
    """A full mesh of ``n`` devices (the first is the controller) whose links all differ in
    capacity (``scale`` times 100-900 Mbit/s)."""
    devices = [make_device(f"d{i}", KINDS[i % len(KINDS)]) for i in range(n)]
    topology = TOPOLOGY_GENERATORS.get("full_mesh")(devices, 400e6, 2e-4)
    for k, key in enumerate(sorted(topology.links)):
        topology = topology.with_link_capacity(*key, scale * (100e6 + 37e6 * k))
    return topology


def overlapping(sim, records) -> int:
    """Pairs of flows whose fluid phases overlap on a link or NIC (contention)."""
    phases: dict = {}
    for f in records.flows:
        for resource in sim.network.route(f.src, f.dst)[0]:
            phases.setdefault(resource, []).append((f.start_s, f.fluid_end_s))
    count = 0
    for spans in phases.values():
        spans.sort()
        count += sum(1 for a, b in zip(spans, spans[1:]) if b[0] < a[1])
    return count


def slices(model, devices: list[str]) -> Placement:
    """Each layer cut evenly over ``devices`` (as the slices partitioner does)."""
    n = len(devices)
    count = {"attn": model.attn_blocks_per_layer, "proj": model.proj_shards,
             "ffn": model.ffn_shards}
    return Placement(model, [devices[b.index * n // count[b.kind]] for b in blocks_of(model)])


def cases():
    """(id, model, placement devices, dataflow spec, controller hosts blocks)."""
    small = get_model("gpt2-small").with_overrides(n_layers=3)
    gqa = get_model("llama-3.2-1b").with_overrides(n_layers=2)
    cut = small.with_overrides(proj_shards=2, ffn_shards=2)
    out = [("head_level", small, "mixed", "head_level", False, 1.0),
           ("head_level-gqa", gqa, "mixed", "head_level", False, 1.0),
           ("head_level-shards", cut, "mixed", "head_level", False, 1.0),
           ("layer_pipeline", small, "layers", "layer_pipeline", False, 1.0)]
    for algorithm in ("ring", "tree", "star"):
        # the ring pipelines the layer input along the ring: on slow links a device's
        # first all-reduce chunk would share the link with its forwarding of that input
        out.append((f"tensor_parallel-{algorithm}", small.with_overrides(proj_shards=3,
                    ffn_shards=3), "slices3",
                    {"name": "tensor_parallel", "collective": algorithm}, False,
                    20.0 if algorithm == "ring" else 1.0))
    out.append(("root_sync", small.with_overrides(proj_shards=3, ffn_shards=3), "root3",
                "root_sync", True, 1.0))
    return out


def placement_for(model, how: str) -> Placement:
    blocks = blocks_of(model)
    if how == "mixed":   # heads over three devices, proj and ffn elsewhere
        return Placement(model, [f"d{1 + b.index % 3}" if b.kind == "attn" else
                                 ("d4" if b.kind == "proj" else f"d{1 + (b.layer + b.index) % 4}")
                                 for b in blocks])
    if how == "layers":
        return Placement(model, [f"d{1 + b.layer % 4}" for b in blocks])
    if how == "slices3":
        return slices(model, ["d1", "d2", "d3"])
    if how == "root3":
        return slices(model, ["d0", "d1", "d2"])
    raise ValueError(how)


def simulate(topology, model, placement, dataflow, hosts, *, messages=None, fast=False,
             tokens=3, **config_options):
    config = SimConfig(model=model, cost=DECODE, topology=topology, prompt_tokens=8,
                       generate_tokens=tokens, controller_hosts_blocks=hosts,
                       dataflow=dataflow, fast_path=fast,
                       messages=messages or MessageCosts(), **config_options)
    sim = Simulation(config, Fixed(placement={"*": "d0"}))
    sim.partitioner.decide = lambda obs: placement
    return sim, sim.run()


def states(topology):
    return {name: DeviceState(spec) for name, spec in topology.devices.items()}


CASES = cases()


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("costs", [False, True], ids=["no-message-costs", "message-costs"])
def test_engine_with_nothing_contending_equals_the_critical_path(case, costs):
    _, model, how, dataflow, hosts, scale = case
    topology = mesh(5, scale)
    placement = placement_for(model, how)
    messages = MessageCosts({d: 30e-6 for d in topology.devices},
                            {d: 20e-6 for d in topology.devices},
                            {key: 10e-6 for key in topology.links}) if costs else MessageCosts()
    sim, records = simulate(topology, model, placement, dataflow, hosts, messages=messages)
    assert records.outcome == "ok"
    assert overlapping(sim, records) == 0        # the premise: no flow shares a link
    view = NetworkView(topology, {k: link.capacity_bps for k, link in topology.links.items()})
    for token in records.tokens:
        graph = sim.graph(placement, sim.generation.step_of(token.token))
        expected = critical_path(graph, states(topology), view, messages, queues=costs)
        assert token.latency_s == pytest.approx(expected.total_s, rel=1e-9, abs=1e-12)
        assert token.compute_s == pytest.approx(expected.compute_s, rel=1e-9, abs=1e-12)
        assert token.comm_s == pytest.approx(expected.comm_s, rel=1e-9, abs=1e-12)
    if not costs:   # with no queueing, the plain longest path is the same number
        graph = sim.graph(placement, sim.generation.step_of(2))
        plain = critical_path(graph, states(topology), view)
        assert records.tokens[1].latency_s == pytest.approx(plain.total_s, rel=1e-9)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_the_fast_sweep_runs_these_passes_and_equals_the_events(case):
    _, model, how, dataflow, hosts, scale = case
    topology = mesh(5, scale)
    placement = placement_for(model, how)
    # links of unequal per-message delays: flows finish in another order than they arrive
    messages = MessageCosts(link_s={key: 1e-5 * (k % 7) for k, key in
                                    enumerate(sorted(topology.links))})
    _, slow = simulate(topology, model, placement, dataflow, hosts, messages=messages)
    sim, fast = simulate(topology, model, placement, dataflow, hosts, messages=messages,
                         fast=True)
    assert sim.swept_passes == len(fast.tokens)
    for a, b in zip(slow.tokens, fast.tokens):
        assert b.latency_s == pytest.approx(a.latency_s, rel=1e-12)
    # the same records in the same order (ids by start, rows by the end of the fluid phase)
    assert [(f.flow_id, f.src, f.dst, f.size_bytes) for f in slow.flows] \
        == [(f.flow_id, f.src, f.dst, f.size_bytes) for f in fast.flows]
    for a, b in zip(slow.flows, fast.flows):
        assert (b.start_s, b.fluid_end_s, b.end_s) == pytest.approx(
            (a.start_s, a.fluid_end_s, a.end_s), rel=1e-12)


@pytest.mark.parametrize("twin, swept", [("jetson-orin-nx-16gb", False),
                                          ("raspberry-pi-5-8gb", True)])
def test_the_sweep_leaves_a_tie_between_different_works_to_the_events(twin, swept):
    """d1 and d2 compute the same block and send it to d3 over equal links; d3 then runs
    proj for d1's output and ffn (whose result goes on to d0) for d2's. With d1 and d2
    alike both works reach d3 at the very same instant, the order of the events decides
    which runs first, and the sweep must refuse; with d2 slower it may sweep."""
    devices = [make_device("d0", "apple-m2-mac-mini"), make_device("d1", KINDS[0]),
               make_device("d2", twin), make_device("d3", "apple-m2-mac-mini")]
    topology = TOPOLOGY_GENERATORS.get("full_mesh")(devices, 400e6, 2e-4)
    model = get_model("gpt2-small").with_overrides(n_layers=1)
    sim, _ = simulate(topology, model, Placement(model, ["d0"] * len(blocks_of(model))),
                      "head_level", True, fast=True, tokens=1)
    b = GraphBuilder("test", "d0")
    one, two = (b.transfer(d, "d3", "attn", (("attn.out", 1),),
                           b.compute(d, "attn", (("attn", 1),))) for d in ("d1", "d2"))
    proj = b.compute("d3", "proj", (("proj", 1),), one)
    ffn = b.compute("d3", "ffn", (("ffn", 1),), two)
    back = b.transfer("d3", "d0", "ffn", (("ffn.out", 1),), ffn)
    b.compute("d0", "sink", (("none", 1),), (proj, back))
    graph = b.finish().bind(step_work(DECODE, model, "decode", 9, 1))
    result = fast_pass(graph, "t", sim.env.now, sim.network, sim.queues, MessageCosts(), {})
    assert (result is not None) == swept


def test_the_sweep_stays_off_while_another_flow_is_in_flight():
    """A transfer already on the d1 -> d2 link (e.g. a live migration) shares it with the
    pipeline's hidden states: the pass is not swept, and the tokens are those of the
    events."""
    model = get_model("gpt2-small").with_overrides(n_layers=3)
    topology = mesh(5)
    latencies, swept = {}, {}
    for fast in (False, True):
        config = SimConfig(model=model, cost=DECODE, topology=topology, prompt_tokens=8,
                           generate_tokens=3, dataflow="layer_pipeline", fast_path=fast)
        sim = Simulation(config, Fixed(placement={"*": "d0"}))
        sim.partitioner.decide = lambda obs: placement_for(model, "layers")
        background = sim.network.transfer("d1", "d2", 1e9, kind="migration")
        records = sim.run()
        assert not background.triggered             # in flight through every pass
        latencies[fast] = [t.latency_s for t in records.tokens]
        swept[fast] = sim.swept_passes
    assert latencies[True] == pytest.approx(latencies[False], rel=1e-12)
    assert swept[True] == 0


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("phase, seq_len", [("decode", 40), ("prefill", 16)])
def test_graph_conserves_the_models_flop_and_weights(case, phase, seq_len):
    _, model, how, dataflow, _, _ = case
    placement = placement_for(model, how)
    work = step_work(DECODE, model, phase, seq_len, 0 if phase == "prefill" else 3)
    graph = make_dataflow(dataflow).template(placement, "d0").bind(work)
    per_layer_flops = (model.attn_blocks_per_layer * work.attn.flops
                       + model.proj_shards * work.proj.flops
                       + model.ffn_shards * work.ffn.flops)
    total = model.n_layers * per_layer_flops + work.lm_head.flops
    assert graph.totals()["flops"] == pytest.approx(total, rel=1e-12)
    held = 0.0
    for recipe in graph.template.memory.values():
        held += sum(count * work.cost(term).weight_bytes for term, count in recipe)
    lm_head = DECODE.lm_head_cost(model, seq_len).weight_bytes
    assert held == pytest.approx(total_weight_bytes(model) - lm_head, rel=1e-12)
    assert all(d < i for i, deps in enumerate(graph.template.deps) for d in deps)


def _collective(algorithm: str, n: int, what: str = "all_reduce"):
    g = GraphBuilder("test", "p0")
    devices = [f"p{i}" for i in range(n)]
    ready = [g.compute(d, "partial", (("none", 1),)) for d in devices]
    if what == "all_reduce":
        done = all_reduce(g, algorithm, devices, ready, (("hidden", 1),), layer=0)
    else:
        done = broadcast(g, algorithm, devices, ready[0], (("hidden", 1),), layer=0)
    g.compute("p0", "end", (("none", 1),), done)
    work = step_work(DECODE, get_model("gpt2-small"), "decode", 10, 1)
    return g.finish().bind(work), work.input_bytes, devices


@pytest.mark.parametrize("n", [2, 3, 4, 8])
def test_ring_all_reduce_sends_2_n_minus_1_over_n_of_the_tensor_per_device(n):
    graph, size, devices = _collective("ring", n)
    per = graph.transfer_bytes_by_device()
    for d in devices:
        sent, received = per[d]
        assert sent == pytest.approx(2 * (n - 1) / n * size, rel=1e-12)
        assert received == pytest.approx(2 * (n - 1) / n * size, rel=1e-12)
    assert graph.totals()["messages"] == 2 * (n - 1) * n
    # step s of device k forwards what step s - 1 brought from its predecessor
    t = graph.template
    sends = [i for i, op in enumerate(t.op) if op == TRANSFER]
    for s in range(1, 2 * (n - 1)):
        for k in range(n):
            before = sends[(s - 1) * n + (k - 1) % n]
            assert t.dst[before] == t.device[sends[s * n + k]] == devices[k]
            assert before in _ancestors(t, sends[s * n + k])


def _ancestors(template, task: int) -> set[int]:
    out: set[int] = set()
    stack = list(template.deps[task])
    while stack:
        d = stack.pop()
        if d not in out:
            out.add(d)
            stack.extend(template.deps[d])
    return out


@pytest.mark.parametrize("n", [2, 3, 5, 8])
def test_star_all_reduce_goes_through_the_root(n):
    graph, size, devices = _collective("star", n)
    per = graph.transfer_bytes_by_device()
    assert per["p0"] == pytest.approx(((n - 1) * size, (n - 1) * size), rel=1e-12)
    for d in devices[1:]:
        assert per[d] == pytest.approx((size, size), rel=1e-12)
    t = graph.template
    assert all("p0" in (t.device[i], t.dst[i]) for i, op in enumerate(t.op) if op == TRANSFER)


@pytest.mark.parametrize("n", [2, 3, 5, 8])
@pytest.mark.parametrize("algorithm", ["tree", "ring", "star"])
def test_broadcast_reaches_everyone_once_and_never_forwards_before_receiving(n, algorithm):
    graph, size, devices = _collective(algorithm, n, what="broadcast")
    t = graph.template
    transfers = [i for i, op in enumerate(t.op) if op == TRANSFER]
    assert sorted(t.dst[i] for i in transfers) == devices[1:]
    for i in transfers:
        if t.device[i] != "p0":
            received = [d for d in t.deps[i] if t.op[d] == TRANSFER and t.dst[d] == t.device[i]]
            assert received, f"{t.device[i]} forwards before it has the tensor"
    if algorithm != "star":          # a device sends to its children one after another
        for d in devices:
            own = [i for i in transfers if t.device[i] == d]
            assert all(a in _ancestors(t, b) for a, b in zip(own, own[1:])), d
    tree_all_reduce, _, _ = _collective("tree", n)
    assert tree_all_reduce.totals()["messages"] == 2 * (n - 1)


# distributed-llama v0.1.0 README, "Network Transfer for Generating Single Token", Q80 buffer:
# (sent, received) by the root per token in kB of 1024 bytes
PUBLISHED = {("llama-2-7b", 2): (590, 522), ("llama-2-7b", 4): (2046, 784),
             ("llama-2-7b", 8): (5094, 914), ("llama-2-13b", 2): (924, 818),
             ("llama-2-13b", 4): (3203, 1227), ("llama-2-13b", 8): (7976, 1431),
             ("llama-2-70b", 8): (28857, 4016)}
F32_BUFFER = {("llama-2-7b", 2): (2224, 1968), ("llama-2-7b", 4): (7704, 2952),
              ("llama-2-7b", 8): (19180, 3444), ("llama-2-13b", 8): (30030, 5390)}


@pytest.mark.parametrize("key", sorted(PUBLISHED) + [k + ("f32",) for k in sorted(F32_BUFFER)],
                         ids=lambda k: "-".join(map(str, k)))
def test_root_sync_bytes_at_the_root_equal_distributed_llamas_published_figures(key):
    name, n, *buffer = key
    dtype = buffer[0] if buffer else "q8_0"
    published = (F32_BUFFER if buffer else PUBLISHED)[(name, n)]
    model = _llama2(name).with_overrides(weight_dtype="q4_0", activation_dtype=dtype,
                                         kv_dtype="f32", proj_shards=n, ffn_shards=n)
    placement = slices(model, [f"d{i}" for i in range(n)])
    graph = make_dataflow("root_sync").template(placement, "d0").bind(
        step_work(DECODE, model, "decode", 16, 15))
    sent, received = graph.transfer_bytes_by_device()["d0"]
    assert sent / 1024 == pytest.approx(published[0], rel=0.02)
    assert received / 1024 == pytest.approx(published[1], rel=0.02)
    assert abs(sent / 1024 - published[0]) < 1.0 and abs(received / 1024 - published[1]) < 1.0


def _llama2(name: str):
    if name != "llama-2-70b":
        return get_model(name)
    # Llama 2 70B (Touvron et al. 2023, Table 1; GQA with 8 K/V heads), not in the catalog
    return get_model("llama-2-13b").with_overrides(
        name="llama-2-70b", n_layers=80, d_model=8192, n_heads=64, n_kv_heads=8,
        head_dim=128, ffn_dim=28672)


def test_with_contention_the_engine_is_slower_than_the_closed_form_never_faster():
    """The ring on slow links: a device's first all-reduce chunk shares the link with its
    forwarding of the layer input; max-min sharing makes those passes longer."""
    model = get_model("gpt2-small").with_overrides(n_layers=3, proj_shards=3, ffn_shards=3)
    topology = mesh(5)
    placement = placement_for(model, "slices3")
    flow = {"name": "tensor_parallel", "collective": "ring"}
    sim, records = simulate(topology, model, placement, flow, False)
    assert overlapping(sim, records) > 0
    view = NetworkView(topology, {k: link.capacity_bps for k, link in topology.links.items()})
    longer = 0
    for token in records.tokens:
        closed = critical_path(sim.graph(placement, sim.generation.step_of(token.token)),
                               states(topology), view).total_s
        assert token.latency_s >= closed * (1 - 1e-12)
        longer += token.latency_s > closed * (1 + 1e-9)
    assert longer > 0
    _, fast = simulate(topology, model, placement, flow, False, fast=True)
    assert [t.latency_s for t in fast.tokens] == pytest.approx(
        [t.latency_s for t in records.tokens], rel=1e-12)   # the sweep refused: same events


def test_root_sync_holds_every_cache_on_the_root_and_moves_only_weights():
    model = get_model("llama-2-7b").with_overrides(proj_shards=4, ffn_shards=4,
                                                   kv_prealloc_tokens=2048, kv_dtype="f32")
    placement = slices(model, ["d0", "d1", "d2", "d3"])
    flow = make_dataflow("root_sync")
    graph = flow.template(placement, "d0").bind(step_work(DECODE, model, "decode", 16, 15))
    root_cache = 2 * 2048 * 128 * 4 * 32 * 32        # f32 K and V, 2048 positions, all heads
    assert graph.memory_bytes["d0"] - graph.memory_bytes["d1"] == pytest.approx(
        root_cache, rel=0.01)
    assert flow.moving_part("attn") == "attn.qkv"


@pytest.mark.parametrize("placement_of, message", [
    (lambda m: slices(m, ["d1", "d0"]), "slice 0 on the root"),
    (lambda m: Placement(m, ["d0"] * len(blocks_of(m))), "own device"),
])
def test_root_sync_refuses_placements_it_cannot_run(placement_of, message):
    model = get_model("gpt2-small").with_overrides(n_layers=2, proj_shards=2, ffn_shards=2)
    with pytest.raises(PlacementError, match=message):
        make_dataflow("root_sync").template(placement_of(model), "d0")


def test_layer_pipeline_needs_whole_layers_and_then_equals_head_level():
    model = get_model("gpt2-small").with_overrides(n_layers=4)
    split = placement_for(model, "mixed")
    with pytest.raises(PlacementError, match="layer 0 is split over"):
        make_dataflow("layer_pipeline").template(split, "d0")
    topology = mesh(5)
    whole = placement_for(model, "layers")
    _, pipeline = simulate(topology, model, whole, "layer_pipeline", False)
    _, heads = simulate(topology, model, whole, "head_level", False)
    for a, b in zip(pipeline.tokens, heads.tokens):
        assert a.latency_s == pytest.approx(b.latency_s, rel=1e-12)
    assert len(pipeline.flows) == len(heads.flows)


def test_the_registry_and_bad_options_are_one_line_errors():
    assert {"head_level", "layer_pipeline", "tensor_parallel", "root_sync"} <= \
        set(DATAFLOWS.names())
    with pytest.raises(ConfigError, match="expected one of .*ring"):
        make_dataflow({"name": "tensor_parallel", "collective": "mesh"})
    with pytest.raises(ConfigError, match="unknown option"):
        make_dataflow({"name": "head_level", "colective": "ring"})
    with pytest.raises(ConfigError, match="unknown dataflow 'heads'"):
        make_dataflow("heads")


def test_message_costs_serialise_on_the_sender():
    """A device sending to k peers pays its send overhead k times, one after another."""
    model = get_model("gpt2-small").with_overrides(n_layers=1)
    topology = mesh(5)
    placement = Placement(model, [f"d{1 + b.index % 4}" if b.kind == "attn" else "d1"
                                  for b in blocks_of(model)])
    base = simulate(topology, model, placement, "head_level", False)[1].tokens[1].latency_s
    o = 1e-3
    costly = MessageCosts({"d0": o}, {})
    slow = simulate(topology, model, placement, "head_level", False,
                    messages=costly)[1].tokens[1].latency_s
    # d0 (the controller) sends the input to 4 hosts and nothing else: the last of the
    # four leaves after 4 overheads; the slowest branch decides, so the pass is longer by
    # between 1 and 4 overheads
    assert o * (1 - 1e-9) <= slow - base <= 4 * o * (1 + 1e-9)
    assert not math.isclose(slow, base)


@pytest.mark.parametrize("fast", [False, True], ids=["events", "sweep"])
def test_link_delays_add_per_message_and_overheads_stretch_under_load(fast):
    """A layer pipeline is a chain, every transfer on its critical path: a delay ``δ`` per
    message on every link adds ``δ`` per message; a send overhead ``o`` on the controller,
    which has half its processor free, adds ``2 o`` (it sends one message, the input)."""
    model = get_model("gpt2-small").with_overrides(n_layers=3)
    topology = mesh(5)
    placement = placement_for(model, "layers")
    half = {"d0": Series((0.0,), (0.5,))}

    def latency(messages):
        sim, records = simulate(topology, model, placement, "layer_pipeline", False,
                                messages=messages, fast=fast, avail_compute=half)
        assert sim.swept_passes == (len(records.tokens) if fast else 0)
        return records.tokens[1].latency_s, sim.graph(placement, sim.generation.step_of(2))

    base, graph = latency(MessageCosts())
    n_messages = graph.totals()["messages"]
    assert n_messages == 4                    # d0 -> d1 -> d2 -> d3 -> d0
    delta, o = 7e-4, 3e-4
    delayed, _ = latency(MessageCosts(link_s={key: delta for key in topology.links}))
    assert delayed - base == pytest.approx(n_messages * delta, rel=1e-9)
    sent, _ = latency(MessageCosts(send_s={"d0": o}))
    assert sent - base == pytest.approx(2 * o, rel=1e-9)


def test_a_graph_is_written_as_json_one_node_per_task():
    import json

    from testbed.plan.graph import graph_to_json
    model = get_model("gpt2-small").with_overrides(n_layers=2)
    graph = make_dataflow("head_level").template(placement_for(model, "mixed"), "d0").bind(
        step_work(DECODE, model, "decode", 9, 1))
    doc = json.loads(graph_to_json(graph))
    assert len(doc["nodes"]) == len(graph)
    computes = [n for n in doc["nodes"] if n["op"] == COMPUTE]
    assert sum(n["flops"] for n in computes) == pytest.approx(graph.totals()["flops"])
    assert all(d < n["id"] for n in doc["nodes"] for d in n["deps"])
    assert dataclasses.is_dataclass(graph.template)
