"""Serving many requests: one request equals one sequence, Little's law, admission and
preemption keep memory, batched work reads weights once, the records hold every token."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testbed.errors import ConfigError
from testbed.experiments.runner import run_scenario
from testbed.experiments.scenario import scenario_from_dict
from testbed.model import get_cost_model, get_model
from testbed.plan.batch import PassItem, batch_work, item_work
from testbed.plan.work import DECODE, PREFILL, step_work

SMALL = {"name": "tinyllama-1.1b", "overrides": {"n_layers": 4}}
FADING = [{"a": "ap", "b": "jetson-nx", "both_directions": True,
           "bandwidth": {"points": [["0 s", "400 Mbit/s"], ["0.3 s", "20 Mbit/s"]],
                         "loop": "0.6 s"}}]
CHURN = {"*": {"background": {"uniform": "30 %", "step": "50 ms"}},
         "pi5": {"failures": [["0.3 s", "0.9 s"]]}}   # a failure: recovery and migrations


def scenario(**extra):
    data = {"model": SMALL, "topology": {"file": "home_office.yaml"}, "seed": 3,
            "workload": {"prompt_tokens": 32, "generate_tokens": 12, "decision_interval": 2},
            "partitioners": ["resource_aware", "resource_aware_plus", "edgeshard"]}
    data.update(extra)
    return scenario_from_dict(data)


# ------------------------------------------------------------------ one request = today
@pytest.mark.parametrize("mode", ["blocking", "live"])
def test_one_request_at_time_zero_equals_the_single_sequence(mode):
    common = {"links": FADING, "migration": {"mode": mode}, "devices": CHURN,
              "partitioners": ["resource_aware", "round_robin", "edgeshard"]}
    single = run_scenario(scenario(**common))
    served = run_scenario(scenario(**common, requests={
        "arrivals": "list", "requests": [["0 s", 32, 12]]}))
    assert len(single.tables["migrations"]) > 0      # the comparison covers migrations
    for name in ("tokens", "flows", "memory", "migrations", "decisions", "oom"):
        a, b = single.tables[name], served.tables[name]
        columns = [c for c in a.columns if c != "decision_wall_s"]
        pd.testing.assert_frame_equal(a[columns], b[columns], check_dtype=False,
                                      obj=name)
    assert (served.tables["tokens"].request == 0).all()
    for column in ("ttft_p50_s", "tpot_p50_s", "itl_p99_s", "energy_j"):
        assert np.allclose(single.summary[column], served.summary[column], rtol=0, atol=0)


# ------------------------------------------------------------------ batched work
def test_a_batch_reads_each_weight_once_and_every_cache():
    model, cost = get_model("llama-3.2-1b"), get_cost_model("decode")
    lengths = [40, 90, 300]
    batch = batch_work(cost, model, [PassItem(n - 1) for n in lengths])
    alone = [step_work(cost, model, DECODE, n, 0) for n in lengths]
    for kind in ("attn", "proj", "ffn"):
        got, parts = batch.cost(kind), [w.cost(kind) for w in alone]
        assert got.weight_bytes == parts[0].weight_bytes
        assert got.flops == pytest.approx(sum(p.flops for p in parts))
        kv = sum(p.kv_bytes for p in parts)
        assert got.kv_bytes == pytest.approx(kv)
        assert got.bytes_read == pytest.approx(parts[0].weight_bytes + kv)
    # the K/V cache of a decode step is 2 * L * head_dim * bytes_kv per request
    assert batch.attn.kv_bytes == pytest.approx(2 * sum(lengths) * model.head_dim *
                                                model.bytes_per_kv)
    assert batch.positions == 3 and batch.seq_len == sum(lengths)
    assert batch.input_bytes == pytest.approx(3 * alone[0].input_bytes)
    assert batch_work(cost, model, [PassItem(39)]) == alone[0]


def test_prefill_chunks_add_up_to_the_whole_prompt():
    model, cost = get_model("llama-3.2-1b"), get_cost_model("decode")
    whole = step_work(cost, model, PREFILL, 300, 0)
    first, second = (item_work(cost, model, PassItem(0, 120, True)),
                     item_work(cost, model, PassItem(120, 180, True)))
    for kind in ("attn", "attn.core", "proj", "ffn"):
        assert first.cost(kind).flops + second.cost(kind).flops == \
            pytest.approx(whole.cost(kind).flops, rel=1e-12)
    assert second.attn.kv_bytes == whole.attn.kv_bytes   # it attends every cached position
    assert first.positions + second.positions == whole.positions


# ------------------------------------------------------------------ queueing
def test_littles_law_holds_on_the_records():
    """Mean requests in the system equals the configured arrival rate times the mean time
    in system, within the sampling error of 400 Poisson arrivals (5 % on the rate)."""
    rate = 10.0
    result = run_scenario(scenario(
        partitioners=["edgeshard"], seed=11,
        workload={"prompt_tokens": 32, "generate_tokens": 12, "decision_interval": 8},
        requests={"arrivals": "poisson", "rate_per_s": rate, "count": 400,
                  "output_tokens": {"dist": "uniform", "low": 4, "high": 20}},
        batching={"max_batch": 8}))
    requests, batches = result.tables["requests"], result.tables["batches"]
    assert (requests.outcome == "done").all() and len(requests) == 400
    sojourn = (requests.end_s - requests.arrival_s).mean()
    # time average of the number in the system, from the arrivals and departures
    events = pd.concat([pd.Series(1, index=requests.arrival_s),
                        pd.Series(-1, index=requests.end_s)]).sort_index()
    count = events.cumsum().to_numpy()
    times = events.index.to_numpy()
    horizon = times[-1]
    in_system = float((count[:-1] * np.diff(times)).sum() / horizon)
    assert in_system > 1.0                            # a loaded system, not an idle one
    assert in_system == pytest.approx(rate * sojourn, rel=0.12)
    # the scheduler's own counts (running + waiting after each pass) tell the same
    t = batches.time_s.to_numpy()
    held = np.diff(np.append(t, horizon))
    sampled = float(((batches.running + batches.waiting).to_numpy() * held).sum() / horizon)
    assert sampled == pytest.approx(in_system, rel=0.15)
    assert batches.running.max() > 1 and (batches.running <= 8).all()   # real batches


def test_a_saturated_method_queues_and_its_throughput_stops_growing():
    def throughput(rate):
        result = run_scenario(scenario(
            partitioners=["round_robin"], requests={"arrivals": "poisson",
                                                   "rate_per_s": rate, "count": 30},
            batching={"max_batch": 4}))
        return result.summary.iloc[0]
    low, high = throughput(0.5), throughput(50.0)
    offered = 12 * np.array([0.5, 50.0])          # output tokens per second arriving
    assert low.throughput_tokens_per_s == pytest.approx(offered[0], rel=0.2)   # keeps up
    assert high.throughput_tokens_per_s < 0.2 * offered[1]                     # saturated
    assert high.ttft_p50_s > 5 * low.ttft_p50_s                                # queues


# ------------------------------------------------------------------ memory and records
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), max_batch=st.integers(1, 6),
       prefill=st.sampled_from(["separate", "chunked"]), memory_gb=st.sampled_from([1.2, 2, 8]))
def test_served_requests_are_all_accounted_and_batches_never_overflow(seed, max_batch, prefill,
                                                                       memory_gb):
    result = run_scenario(scenario_from_dict({
        "model": SMALL, "seed": seed,
        "topology": {"generator": "full_mesh", "bandwidth": "100 Mbit/s",
                     "latency": "1 ms", "devices": [
                         {"name": "ctl", "device": "apple-m2-mac-mini"},
                         {"name": "a", "device": "raspberry-pi-5-8gb",
                          "memory": f"{memory_gb} GB"},
                         {"name": "b", "device": "raspberry-pi-4-8gb",
                          "memory": f"{memory_gb} GB"}]},
        "controller": {"device": "ctl"},
        "workload": {"prompt_tokens": 64, "generate_tokens": 16},
        "requests": {"arrivals": "poisson", "rate_per_s": 20, "count": 12,
                     "prompt_tokens": {"dist": "lognormal", "mean": 200, "sigma": 0.8,
                                       "low": 8, "high": 1500},
                     "output_tokens": {"dist": "uniform", "low": 1, "high": 30}},
        "batching": {"max_batch": max_batch, "prefill": prefill, "chunk_tokens": 128},
        "partitioners": ["greedy"]}))
    requests, tokens = result.tables["requests"], result.tables["tokens"]
    batches, oom = result.tables["batches"], result.tables["oom"]
    assert sorted(requests.request) == list(range(12))
    assert set(requests.outcome) <= {"done", "rejected"}
    for row in requests[requests.outcome == "done"].itertuples():
        mine = tokens[tokens.request == row.request]
        assert list(mine.token) == list(range(1, row.output_tokens + 1))
        assert row.arrival_s <= row.admitted_s <= row.first_token_s <= row.end_s
    assert (batches.running <= max_batch).all()
    # admission waits for memory: an overflow only ever comes from a request running alone
    alone = set(tokens[tokens.batch_size == 1].iteration)
    assert set(oom.token) <= alone


def test_a_request_that_can_never_fit_is_rejected_and_recorded():
    result = run_scenario(scenario_from_dict({
        "model": {"name": "tinyllama-1.1b", "overrides": {"n_layers": 4,
                                                          "max_position": 1_000_000}},
        "topology": {"generator": "full_mesh", "bandwidth": "1 Gbit/s", "latency": "1 ms",
                     "devices": [{"name": "ctl", "device": "apple-m2-mac-mini"},
                                 {"name": "a", "device": "raspberry-pi-5-8gb",
                                  "memory": "1 GB"}]},
        "controller": {"device": "ctl"}, "partitioners": ["edgeshard"],
        # 300 000 positions of K/V cache are 1.2 GB: more than the worker has
        "requests": {"arrivals": "list", "requests": [["0 s", 16, 4], ["0.1 s", 300_000, 2],
                                                      ["0.2 s", 16, 4]]}}))
    requests = result.tables["requests"].set_index("request")
    assert requests.outcome.to_dict() == {0: "done", 1: "rejected", 2: "done"}
    assert math.isnan(requests.loc[1, "admitted_s"])
    assert result.tables["oom"].empty


def test_preempted_requests_are_recomputed_and_still_finish():
    result = run_scenario(scenario_from_dict({
        "model": SMALL, "seed": 2,
        "topology": {"generator": "full_mesh", "bandwidth": "1 Gbit/s", "latency": "1 ms",
                     "devices": [{"name": "ctl", "device": "apple-m2-mac-mini"},
                                 {"name": "a", "device": "jetson-orin-nano-8gb",
                                  "memory": "0.36 GB"}]},   # the weights and ~2k positions
        "controller": {"device": "ctl"},
        "workload": {"prompt_tokens": 16, "generate_tokens": 8},
        "requests": {"arrivals": "list", "requests": [["0 s", 16, 1500]] * 3},
        "batching": {"max_batch": 3}, "partitioners": ["single_device"]}))
    requests = result.tables["requests"]
    assert (requests.outcome == "done").all()
    assert requests.preemptions.tolist() == [0, 1, 2]     # the latest admitted go first
    assert result.tables["oom"].empty
    tokens = result.tables["tokens"]
    for request in range(3):
        assert list(tokens[tokens.request == request].token) == list(range(1, 1501))
    recomputed = tokens[(tokens.phase == "prefill") & (tokens.token > 1)]
    assert len(recomputed) == 3 and (recomputed.seq_len > 16).all()


# ------------------------------------------------------------------ observation
def test_partitioners_see_the_running_requests_and_the_queue(monkeypatch):
    from testbed.partition.edgeshard import EdgeShard
    seen = []
    original = EdgeShard.decide

    def spy(self, obs):
        seen.append(obs.load)
        return original(self, obs)
    monkeypatch.setattr(EdgeShard, "decide", spy)
    run_scenario(scenario(partitioners=["edgeshard"], requests={
        "arrivals": "list", "requests": [["0 s", 32, 6]] * 5},
        batching={"max_batch": 2}, workload={"prompt_tokens": 32, "generate_tokens": 6,
                                             "decision_interval": 1}))
    assert seen[0].waiting == 3 and len(seen[0].running) == 2
    assert seen[0].batch_starts == (32, 32)
    assert max(load.waiting for load in seen) == 3 and seen[-1].waiting == 0
    assert any(r.generated > 0 for load in seen for r in load.running)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("section, message", [
    ({"arrivals": "poisson", "count": 3}, "requests.rate_per_s"),
    ({"arrivals": "poisson", "rate_per_s": 1, "count": 0}, "requests.count"),
    ({"arrivals": "bursty"}, "requests.arrivals"),
    ({"arrivals": "list", "requests": [["0 s", 16]]}, "requests.requests[0]"),
    ({"arrivals": "list", "requests": [["soon", 16, 4]]}, "requests.requests[0][0]"),
    ({"arrivals": "poisson", "rate_per_s": 1, "count": 2,
      "prompt_tokens": {"dist": "zipf"}}, "requests.prompt_tokens.dist"),
    ({"arrivals": "trace"}, "requests.file"),
])
def test_a_bad_requests_section_names_its_field(section, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        scenario(requests=section)


def test_requests_need_a_cost_preset_with_a_prefill():
    with pytest.raises(ConfigError, match="prefill"):
        scenario(cost="paper", requests={"arrivals": "list", "requests": [["0 s", 8, 2]]})
