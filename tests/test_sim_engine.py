"""The engine: memory and K/V growth, out-of-memory, migrations, replayed capacities."""

import pytest

from testbed.cluster import TOPOLOGY_GENERATORS, make_device
from testbed.model import get_cost_model, get_model
from testbed.model.blocks import blocks_of
from testbed.partition import PARTITIONERS
from testbed.partition.base import Partitioner
from testbed.partition.single_device import SingleDevice
from testbed.plan.placement import Placement
from testbed.sim.engine import SimConfig, Simulation
from testbed.traces.series import Series

BW = 100e6      # bit/s on every link
LAT = 0.001     # s per hop


def mesh(*kinds, memory=None):
    devices = [make_device(name, kind) for name, kind in kinds]
    if memory:
        devices = [d.with_overrides(memory_bytes=memory.get(d.name, d.memory_bytes))
                   for d in devices]
    return TOPOLOGY_GENERATORS.get("full_mesh")(devices, BW, LAT)


CLUSTER = (("ctl", "apple-m2-mac-mini"), ("a", "jetson-orin-nx-16gb"),
           ("b", "jetson-orin-nx-16gb"), ("c", "jetson-orin-nano-8gb"))


class Scripted(Partitioner):
    """Placement ``first`` until token ``switch_at``, then ``second``."""

    name = "scripted"

    def __init__(self, first, second=None, switch_at=None):
        super().__init__()
        self.first, self.second, self.switch_at = first, second, switch_at

    def decide(self, obs):
        if self.switch_at is not None and obs.token_index >= self.switch_at:
            return self.second
        return self.first


def spread(model, attn, proj="b", ffn="c"):
    return Placement(model, [attn[b.index % len(attn)] if b.kind == "attn"
                             else {"proj": proj, "ffn": ffn}[b.kind] for b in blocks_of(model)])


def run(model, placement_or_partitioner, topology=None, **kw):
    partitioner = placement_or_partitioner if isinstance(placement_or_partitioner, Partitioner) \
        else Scripted(placement_or_partitioner)
    cfg = SimConfig(model=model, cost=kw.pop("cost", get_cost_model("decode")),
                    topology=topology or mesh(*CLUSTER), prompt_tokens=kw.pop("prompt", 16),
                    generate_tokens=kw.pop("tokens", 6), **kw)
    sim = Simulation(cfg, partitioner)
    return sim, sim.run()


def test_merged_jobs_and_flows_equal_the_per_block_model():
    model = get_model("llama-3.2-1b").with_overrides(n_layers=3)   # 8 K/V groups per layer
    placement = spread(model, ["a", "a", "a", "b", "b", "c", "a", "b"])
    _, merged = run(model, placement, tokens=5)
    _, reference = run(model, placement, tokens=5, per_block=True)
    assert [t.latency_s for t in merged.tokens] == \
        pytest.approx([t.latency_s for t in reference.tokens], rel=1e-12)
    assert len(reference.flows) > len(merged.flows)  # it really was per block


def test_kv_cache_grows_by_two_rows_of_head_dim_per_kv_head_per_token():
    model = get_model("llama-3.2-1b").with_overrides(n_layers=2)   # GQA, head_dim 64
    placement = spread(model, ["a", "a", "a", "b"])  # a holds 6 K/V groups, b holds 2
    _, records = run(model, placement, tokens=6, prompt=32)
    used = {}
    for sample in records.memory:
        used.setdefault(sample.device, []).append(sample.used_bytes)
    per_row = 2 * model.head_dim * model.bytes_per_kv          # K and V, one position
    for device, groups in (("a", 6), ("b", 2)):
        decode = used[device][1:]   # token 1 is the prefill pass, with its own activations
        growth = [later - earlier for earlier, later in zip(decode, decode[1:])]
        assert growth == [model.n_layers * groups * per_row] * 4
    # and the absolute K/V part after t tokens is 2 * L * head_dim * bytes per K/V head
    cost = get_cost_model("decode")
    attn = cost.step_cost(model, "attn", 32 + 5, 5)
    assert attn.kv_bytes == 2 * (32 + 5) * model.head_dim * model.bytes_per_kv


def test_out_of_memory_is_recorded_not_ignored():
    model = get_model("llama-3.2-1b").with_overrides(n_layers=2)
    topology = mesh(*CLUSTER, memory={"c": 1e6})                  # ffn blocks need far more
    _, records = run(model, spread(model, ["a", "b"]), topology=topology, tokens=4)
    assert records.outcome == "oom"   # every token generated, memory overflowed
    assert [e.token for e in records.oom] == [1, 2, 3, 4]
    assert {e.device for e in records.oom} == {"c"}
    assert all(e.used_bytes > e.capacity_bytes for e in records.oom)


def test_blocking_migration_pauses_generation_for_the_exact_transfer_time():
    model = get_model("gpt2-small").with_overrides(n_layers=2)
    first = spread(model, ["a"])
    second = first.with_moves({b: "b" for b in blocks_of(model)
                               if b.kind == "attn" and b.layer == 0})
    _, records = run(model, Scripted(first, second, switch_at=4), tokens=6)
    moved = [m for m in records.migrations]
    assert len(moved) == model.n_heads and {(m.src, m.dst) for m in moved} == {("a", "b")}
    token4 = records.tokens[3]
    assert token4.migrations == model.n_heads
    # the K/V caches (after token 3), activations and weights of 12 heads, one flow a -> b
    cost = get_cost_model("decode").step_cost(model, "attn", 16 + 2, 2)
    size = model.n_heads * cost.memory_bytes
    assert sum(m.size_bytes for m in moved) == pytest.approx(size)
    assert token4.migration_wait_s == pytest.approx(LAT + size * 8 / BW, rel=1e-9)
    assert token4.latency_s == pytest.approx(token4.migration_wait_s + token4.compute_s
                                             + token4.comm_s, rel=1e-12)
    assert all(t.migration_wait_s == 0 for t in records.tokens if t.token != 4)


def test_weights_preloaded_moves_only_the_cache():
    model = get_model("gpt2-small").with_overrides(n_layers=1)
    first = spread(model, ["a"])
    second = first.with_moves({b: "b" for b in blocks_of(model) if b.kind == "attn"})
    _, records = run(model, Scripted(first, second, switch_at=3), tokens=4,
                     weights_preloaded=True)
    cost = get_cost_model("decode").step_cost(model, "attn", 16 + 1, 1)
    expected = model.n_heads * (cost.memory_bytes - cost.weight_bytes)
    assert sum(m.size_bytes for m in records.migrations) == pytest.approx(expected)


def test_live_migration_keeps_serving_then_sends_the_new_rows():
    model = get_model("gpt2-small").with_overrides(n_layers=1)
    first = spread(model, ["a"])
    second = first.with_moves({b: "b" for b in blocks_of(model) if b.kind == "attn"})
    sim, records = run(model, Scripted(first, second, switch_at=3), tokens=300,
                       migration_mode="live")
    live = records.migrations
    assert len(live) == model.n_heads and {m.mode for m in live} == {"live"}
    start, end = live[0].start_s, live[0].end_s
    # generation went on while the bulk moved: tokens ran between start and end
    during = [t for t in records.tokens if start <= t.start_s and t.end_s <= end]
    assert during, "no token was served while the live migration was in flight"
    switch_token = next(t for t in records.tokens if t.migration_wait_s > 0)
    bulk = get_cost_model("decode").step_cost(model, "attn", 16 + 1, 1).memory_bytes
    rows = switch_token.seq_len - 1 - (16 + 1)        # K/V rows written since the snapshot
    per_row = 2 * model.head_dim * model.bytes_per_kv
    assert live[0].size_bytes == pytest.approx(bulk + rows * per_row)
    # the wait is only the few new rows, far below the bulk transfer time
    assert switch_token.migration_wait_s == pytest.approx(
        LAT + model.n_heads * rows * per_row * 8 / BW, rel=1e-9)
    deferred = [d for d in records.decisions if d.outcome == "deferred"]
    assert deferred and all(start <= d.time_s <= end for d in deferred)


def test_replayed_capacity_series_changes_transfer_times():
    model = get_model("gpt2-small").with_overrides(n_layers=1)
    topology = mesh(*CLUSTER)
    fade = Series((0.0, 0.05), (BW, BW / 10), unit="bit/s")
    topology = topology.with_link_series("ctl", "a", fade)
    placement = spread(model, ["a"], proj="a", ffn="a")
    _, records = run(model, placement, topology=topology, tokens=40)
    comm = [t.comm_s for t in records.tokens]
    fast = LAT + model.d_model * 2 * 8 / BW + LAT + model.d_model * 2 * 8 / BW
    slow = LAT + model.d_model * 2 * 8 / (BW / 10) + LAT + model.d_model * 2 * 8 / BW
    assert comm[1] == pytest.approx(fast, rel=1e-9)
    assert comm[-1] == pytest.approx(slow, rel=1e-9)


def test_infeasible_first_decision_is_an_outcome_not_a_crash():
    model = get_model("llama-3-8b")
    topology = mesh(("ctl", "raspberry-pi-4-8gb"), ("a", "raspberry-pi-4-8gb"))
    sim, records = run(model, SingleDevice(seed=0), topology=topology, tokens=3)
    assert records.outcome.startswith("infeasible at token 1")
    assert not records.tokens
    assert records.decisions[0].outcome == "infeasible"


def _failure_run(failures, recovery="recompute", tokens=12):
    model = get_model("gpt2-small").with_overrides(n_layers=2)
    partitioner = PARTITIONERS.get("round_robin")(seed=0)
    return run(model, partitioner, tokens=tokens, failures=failures, cache_recovery=recovery)


@pytest.mark.parametrize("recovery", ["recompute", "resend"])
def test_device_failure_mid_token_replaces_rebuilds_and_keeps_every_token_once(recovery):
    _, calm = _failure_run({})
    t5 = calm.tokens[4]
    middle = (t5.start_s + t5.end_s) / 2
    outage = 10.0   # a spans the rest of the run: token ends (memory samples) fall in it
    sim, records = _failure_run({"a": ((middle, middle + outage),)}, recovery)
    assert records.outcome == "ok"
    assert [t.token for t in records.tokens] == list(range(1, 13))
    hit = records.tokens[4]
    assert hit.lost_s > 0 and hit.recovery_s > 0 and hit.migrations > 0
    for t in records.tokens:
        assert t.latency_s == pytest.approx(t.compute_s + t.comm_s + t.migration_wait_s
                                            + t.recovery_s + t.lost_s, rel=1e-9)
    rebuilt = [m for m in records.migrations if m.mode == f"recovery-{recovery}"]
    assert rebuilt and {m.src for m in rebuilt} == {"a"} and "a" not in {m.dst for m in rebuilt}
    flows = [f for f in records.flows if f.kind == "recovery"]
    assert flows and {f.src for f in flows} == {"ctl"}
    if recovery == "resend":   # weights and caches from the controller's replicas
        assert sum(f.size_bytes for f in flows) > sum(m.size_bytes for m in rebuilt) * 0.99
    # while a is down nothing is placed on it
    down = [s for s in records.memory if middle < s.time_s < middle + outage and
            s.device == "a"]
    assert down and all(s.used_bytes == 0 for s in down)
    # the recompute path pays a pass over the whole sequence: slower than resending
    assert hit.latency_s > t5.latency_s


def test_blocks_moved_during_prefill_carry_their_weights():
    """A failure during the first pass: the re-decision moves healthy blocks too, and
    each carries its weights (no cache exists yet), never 0 bytes."""
    _, calm = _failure_run({})
    first = calm.tokens[0]
    middle = (first.start_s + first.end_s) / 2
    _, records = _failure_run({"a": ((middle, middle + 10.0),)})
    assert [t.token for t in records.tokens] == list(range(1, 13))
    moved = [m for m in records.migrations if m.mode == "blocking" and m.token == 1]
    assert moved, "round-robin re-spreads the healthy blocks over the devices left"
    model = get_model("gpt2-small").with_overrides(n_layers=2)
    from testbed.plan.work import DECODE, step_work
    work = step_work(get_cost_model("decode"), model, DECODE, 1, 0)
    for m in moved:
        assert m.size_bytes == work.cost(m.block.split(".")[1].rstrip("0123456789")
                                         ).weight_bytes > 0


def test_failure_at_a_token_boundary_loses_no_pass():
    _, calm = _failure_run({})
    boundary = calm.tokens[3].end_s
    _, records = _failure_run({"b": ((boundary - 1e-12, boundary + 1.0),)})
    assert [t.token for t in records.tokens] == list(range(1, 13))
    assert sum(t.recovery_s > 0 for t in records.tokens) == 1
