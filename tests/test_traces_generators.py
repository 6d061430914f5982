"""Synthetic trace generators (means, seeds), replay options, scenario entries, engine replay."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from testbed.errors import ConfigError
from testbed.traces import TRACE_GENERATORS, Series, replay, trace_duration_s, trace_stats
from testbed.traces.config import trace_from_config

SHARED = Path(__file__).resolve().parents[2] / "shared" / "traces"
M = 1e6


def rng(seed: int = 7) -> np.random.Generator:
    return np.random.default_rng(seed)


def generate(name: str, duration_s: float, step_s: float, seed: int = 7, **params) -> Series:
    return TRACE_GENERATORS.get(name)(duration_s, step_s, rng(seed), **params)


def expected(name: str, duration_s: float, **params) -> float:
    return TRACE_GENERATORS.get(name).expected_mean_bps(duration_s, **params)


# ----- generators: empirical means against analytic ones ----------------------------------------

def test_constant_and_steps_are_exact():
    const = generate("constant", 30.0, 1.0, rate_bps=5 * M)
    assert trace_stats(const)["mean_bps"] == expected("constant", 30.0, rate_bps=5 * M) == 5 * M
    assert trace_duration_s(const) == 30.0
    schedule = [(0.0, 100 * M), (10.0, 0.0), (12.0, 40 * M)]
    steps = generate("steps", 20.0, 1.0, schedule=schedule)
    assert steps.times_s == (0.0, 10.0, 12.0) and trace_duration_s(steps) == 20.0
    mean = (100 * 10 + 0 * 2 + 40 * 8) / 20 * M
    assert trace_stats(steps)["mean_bps"] == pytest.approx(mean, rel=1e-12)
    assert expected("steps", 20.0, schedule=schedule) == pytest.approx(mean, rel=1e-12)
    assert trace_stats(steps)["outage_s"] == 2.0


def test_gilbert_elliott_mean_within_five_standard_errors():
    good, bad, mg, mb, step, n = 50 * M, 1 * M, 2.0, 0.5, 0.1, 200_000
    series = generate("gilbert_elliott", n * step, step, good_bps=good, bad_bps=bad,
                      mean_good_s=mg, mean_bad_s=mb)
    mean = expected("gilbert_elliott", n * step, good_bps=good, bad_bps=bad, mean_good_s=mg,
                    mean_bad_s=mb)
    assert mean == pytest.approx((50 * 2 + 1 * 0.5) / 2.5 * M)
    # Tolerance: the state is a two-state Markov chain with switch probabilities p = step/mg
    # and q = step/mb, second eigenvalue lam = 1 - p - q; the time-average of the "good"
    # indicator over n steps has variance pi_g pi_b (1 + lam) / ((1 - lam) n). Five standard
    # errors of the rate (x |good - bad|): a seeded draw, so a fixed outcome, far from the bound.
    p, q = step / mg, step / mb
    lam, pi_g = 1 - p - q, mg / (mg + mb)
    se = abs(good - bad) * math.sqrt(pi_g * (1 - pi_g) * (1 + lam) / ((1 - lam) * n))
    assert abs(trace_stats(series)["mean_bps"] - mean) < 5 * se
    assert set(series.values) == {good, bad}
    # sojourns: geometric with the configured means
    lengths = np.diff(np.append(series.times_s, trace_duration_s(series)))[:-1]
    in_good = np.asarray(series.values[:-1]) == good
    assert lengths[in_good].mean() == pytest.approx(mg, rel=0.05)
    assert lengths[~in_good].mean() == pytest.approx(mb, rel=0.05)


def test_lognormal_jitter_mean_within_five_standard_errors():
    mean, sigma, n = 20 * M, 0.5, 100_000
    series = generate("lognormal_jitter", n * 0.01, 0.01, mean_bps=mean, sigma=sigma)
    assert len(series.times_s) == n
    # independent samples, std mean*sqrt(exp(sigma^2) - 1): five standard errors of the mean
    se = mean * math.sqrt(math.exp(sigma**2) - 1) / math.sqrt(n)
    assert expected("lognormal_jitter", 1.0, mean_bps=mean, sigma=sigma) == mean
    assert abs(trace_stats(series)["mean_bps"] - mean) < 5 * se
    assert np.median(series.values) == pytest.approx(mean * math.exp(-sigma**2 / 2), rel=0.02)


def test_random_walk_stays_in_bounds_and_its_mean_is_the_middle():
    low, high, sigma, n = 10 * M, 100 * M, 10 * M, 400_000
    series = generate("random_walk", n * 0.1, 0.1, low_bps=low, high_bps=high, sigma_bps=sigma)
    values = np.asarray(series.values)
    assert values.min() >= low and values.max() <= high
    assert expected("random_walk", 1.0, low_bps=low, high_bps=high, sigma_bps=sigma) == 55 * M
    # Tolerance: started from the uniform (stationary) law; the reflected walk relaxes in
    # tau ~ 2 L^2 / (pi^2 sigma^2) steps (L = high - low; ~16 steps here), so the mean over n
    # steps has a standard error of about sqrt(L^2/12 * 2 tau / n) (~0.24 Mbit/s, 0.4 %).
    # Five of them: about 2 %.
    width = high - low
    tau = 2 * width**2 / (math.pi**2 * sigma**2)
    se = math.sqrt(width**2 / 12 * 2 * tau / n)
    assert abs(values.mean() - 55 * M) < 5 * se < 0.03 * 55 * M
    # away from the bounds (no reflection possible within 4 sigma) the steps are N(0, sigma)
    inner = (values[:-1] > low + 4 * sigma) & (values[:-1] < high - 4 * sigma)
    steps = np.abs(np.diff(values))[inner]
    assert np.median(steps) == pytest.approx(sigma * 0.6745, rel=0.05)  # |N(0, sigma)| median


def test_same_seed_same_trace_other_seed_other_trace():
    params = {"good_bps": 30 * M, "bad_bps": 2 * M, "mean_good_s": 8.0, "mean_bad_s": 2.0}
    for name, kwargs in (("gilbert_elliott", params),
                         ("lognormal_jitter", {"mean_bps": 10 * M, "sigma": 0.3}),
                         ("random_walk", {"low_bps": M, "high_bps": 9 * M, "sigma_bps": M})):
        a = generate(name, 120.0, 0.1, seed=3, **kwargs)
        b = generate(name, 120.0, 0.1, seed=3, **kwargs)
        c = generate(name, 120.0, 0.1, seed=4, **kwargs)
        assert a == b and a != c, name


def test_generator_parameter_errors():
    with pytest.raises(ValueError, match="mean_good_s"):
        generate("gilbert_elliott", 10.0, 1.0, good_bps=M, bad_bps=0, mean_good_s=0.5,
                 mean_bad_s=2.0)
    with pytest.raises(ValueError, match="high_bps"):
        generate("random_walk", 10.0, 1.0, low_bps=5 * M, high_bps=M, sigma_bps=M)
    with pytest.raises(ValueError, match="start at time 0"):
        generate("steps", 10.0, 1.0, schedule=[(1.0, M)])


# ----- replay ------------------------------------------------------------------------------------

TRACE = Series((0.0, 1.0, 3.0), (10 * M, 0.0, 40 * M), duration_s=4.0, unit="bit/s",
               provenance="hand")  # mean (10 + 0 + 40) / 4 = 12.5 Mbit/s


def test_offset_cuts_or_rotates():
    cut = replay(TRACE, offset_s=2.0)
    assert cut.times_s == (0.0, 1.0) and cut.values == (0.0, 40 * M)
    assert trace_duration_s(cut) == 2.0 and cut.loop_period_s is None
    rotated = replay(TRACE, offset_s=2.0, loop=True)
    assert rotated.times_s == (0.0, 1.0, 2.0, 3.0)
    assert rotated.values == (0.0, 40 * M, 10 * M, 0.0) and rotated.loop_period_s == 4.0
    assert trace_stats(rotated)["mean_bps"] == pytest.approx(trace_stats(TRACE)["mean_bps"])
    assert replay(TRACE, offset_s=6.0, loop=True).values == rotated.values  # modulo the period
    with pytest.raises(ConfigError, match="past the end"):
        replay(TRACE, offset_s=4.0)


def test_loop_repeats_and_hold_keeps_the_last_value():
    held = replay(TRACE)
    assert held.value_at(100.0) == 40 * M and math.isinf(held.next_change_s(5.0))
    looped = replay(TRACE, loop=True)
    assert looped.value_at(4.5) == 10 * M and looped.value_at(5.5) == 0.0
    assert looped.next_change_s(4.2) == pytest.approx(5.0)
    unlooped = replay(looped, loop=False)
    assert unlooped.loop_period_s is None and unlooped.value_at(9.0) == 40 * M


def test_scale_to_mean_is_exact_with_and_without_a_floor():
    scaled = replay(TRACE, scale_to_mean_bps=50 * M)
    assert trace_stats(scaled)["mean_bps"] == pytest.approx(50 * M, rel=1e-12)
    assert scaled.values == (40 * M, 0.0, 160 * M)  # outage kept
    floored = replay(TRACE, scale_to_mean_bps=50 * M, clip_min_bps=20 * M)
    assert trace_stats(floored)["mean_bps"] == pytest.approx(50 * M, rel=1e-12)
    assert min(floored.values) == 20 * M and trace_stats(floored)["outage_s"] == 0
    # at exactly the floor everything sits at the floor
    flat = replay(TRACE, scale_to_mean_bps=5 * M, clip_min_bps=5 * M)
    assert trace_stats(flat)["mean_bps"] == pytest.approx(5 * M)
    with pytest.raises(ConfigError, match="below clip_min"):
        replay(TRACE, scale_to_mean_bps=M, clip_min_bps=2 * M)
    with pytest.raises(ConfigError, match="at most one"):
        replay(TRACE, scale=2.0, scale_to_mean_bps=M)


def test_scale_and_clip_min():
    doubled = replay(TRACE, scale=2.0)
    assert doubled.values == (20 * M, 0.0, 80 * M)
    floored = replay(TRACE, clip_min_bps=M)
    assert floored.values == (10 * M, M, 40 * M)
    assert replay(TRACE, clip_min_bps=0.0).values == TRACE.values  # outage allowed at 0


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"the shared real traces are not at {SHARED}")
def test_scale_to_mean_on_a_real_trace_with_offset_loop_and_floor():
    from testbed.traces import load_trace
    series = load_trace(SHARED / "lumos5g_mmwave/5g_trace_100_walking")
    replayed = replay(series, offset_s=30.0, scale_to_mean_bps=200 * M, loop=True,
                      clip_min_bps=M)
    stats = trace_stats(replayed)
    assert stats["mean_bps"] == pytest.approx(200 * M, rel=1e-9)
    assert stats["min_bps"] == M and stats["duration_s"] == 800.0
    assert replayed.loop_period_s == 800.0


# ----- scenario entries --------------------------------------------------------------------------

def no_rng() -> np.random.Generator:
    raise AssertionError("a file or deterministic trace must not draw random numbers")


def test_file_entry_resolves_against_the_scenario_folder(tmp_path):
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (tmp_path / "t.csv").write_text("time_s,bandwidth_Mbps\n0,10\n1,0\n2,40\n3,\n")
    entry = {"file": "../t.csv", "offset": "1 s", "scale_to_mean": "30 Mbit/s", "loop": True,
             "clip_min": "1 Mbit/s"}
    series = trace_from_config(entry, source="s.yaml", field="links[0].trace",
                               base_dir=folder, rng_for=no_rng)
    assert series.loop_period_s == 3.0 and series.unit == "bit/s"
    assert trace_stats(series)["mean_bps"] == pytest.approx(30 * M)
    assert series.values[0] == M  # starts at the (floored) outage, 1 s in


def test_file_entry_reader_options(tmp_path):
    path = tmp_path / "m.down"
    path.write_text("0\n0\n600\n1500\n2000\n")
    entry = {"file": str(path), "format": "mahimahi", "window": "500 ms"}
    series = trace_from_config(entry, source="s.yaml", field="trace", base_dir=tmp_path,
                               rng_for=no_rng)
    assert series.times_s == (0.0, 0.5, 1.0, 1.5)
    with pytest.raises(ConfigError) as caught:
        trace_from_config({**entry, "window": "0 ms"}, source="s.yaml", field="links[2].trace",
                          base_dir=tmp_path, rng_for=no_rng)
    assert str(caught.value).startswith("s.yaml: links[2].trace.window: got '0 ms'")
    with pytest.raises(ConfigError) as caught:
        trace_from_config({**entry, "gaps": "hold"}, source="s.yaml", field="links[2].trace",
                          base_dir=tmp_path, rng_for=no_rng)
    assert str(caught.value).startswith("s.yaml: links[2].trace.gaps: got unknown key 'gaps'")


def test_generator_entry_with_units_draws_from_rng_for():
    calls = []

    def rng_for():
        calls.append(1)
        return np.random.default_rng(11)

    entry = {"generator": "gilbert_elliott", "step": "100 ms", "duration": "60 s",
             "good": "50 Mbit/s", "bad": "2 Mbit/s", "mean_good": "5 s", "mean_bad": "1 s",
             "loop": True}
    series = trace_from_config(entry, source="s.yaml", field="links[0].trace",
                               base_dir=Path("."), rng_for=rng_for)
    again = trace_from_config(entry, source="s.yaml", field="links[0].trace",
                              base_dir=Path("."), rng_for=rng_for)
    assert series == again and len(calls) == 2
    assert set(series.values) <= {50 * M, 2 * M} and series.loop_period_s == 60.0
    steps = trace_from_config({"generator": "steps", "duration": "10 s",
                               "schedule": [["0 s", "100 Mbit/s"], ["5 s", "10 Mbit/s"]]},
                              source="s.yaml", field="t", base_dir=Path("."), rng_for=no_rng)
    assert steps.values == (100 * M, 10 * M)


@pytest.mark.parametrize("entry, field, words", [
    ({"file": "t.csv", "offset": 30}, "links[0].trace.offset", "bare number"),
    ({"file": "t.csv", "loop": "yes"}, "links[0].trace.loop", "true or false"),
    ({"file": "t.csv", "scale": 2, "scale_to_mean": "1 Mbit/s"}, "links[0].trace.scale",
     "not both"),
    ({"file": "missing.csv"}, "links[0].trace.file", "not a file"),
    ({"file": "t.csv", "format": "nope"}, "links[0].trace.format", "unknown trace format"),
    ({"file": "t.csv", "offset": "9 s"}, "links[0].trace.offset", "past the end"),
    ({"generator": "nope", "duration": "1 s"}, "links[0].trace.generator", "unknown"),
    ({"generator": "random_walk", "duration": "10 s", "step": "1 s", "low": "1 Mbit/s",
      "high": "5 Mbit/s"}, "links[0].trace.sigma", "required"),
    ({"generator": "random_walk", "duration": "10 s", "low": "1 Mbit/s", "high": "5 Mbit/s",
      "sigma": "1 Mbit/s"}, "links[0].trace.step", "required"),
    ({"generator": "constant", "duration": "10 s", "rate": "5"}, "links[0].trace.rate",
     "bare number"),
    ({"generator": "constant", "duration": "10 s", "rate": "5 Mbit/s", "speed": 1},
     "links[0].trace.speed", "unknown key"),
    ({"file": "t.csv", "generator": "constant"}, "links[0].trace", "exactly one"),
])
def test_bad_entries_name_source_and_field(tmp_path, entry, field, words):
    (tmp_path / "t.csv").write_text("time_s,bw_Mbps\n0,1\n1,2\n")
    with pytest.raises(ConfigError) as caught:
        trace_from_config(entry, source="scenario.yaml", field="links[0].trace",
                          base_dir=tmp_path, rng_for=lambda: np.random.default_rng(0))
    message = str(caught.value)
    assert message.startswith(f"scenario.yaml: {field}: "), message
    assert words in message and "\n" not in message


def test_errors_inside_the_trace_file_name_that_file_and_line(tmp_path):
    (tmp_path / "bad.csv").write_text("time_s,bw_Mbps\n0,1\n1,-2\n")
    with pytest.raises(ConfigError) as caught:
        trace_from_config({"file": "bad.csv"}, source="scenario.yaml", field="links[0].trace",
                          base_dir=tmp_path, rng_for=no_rng)
    assert str(caught.value).startswith(f"{tmp_path / 'bad.csv'}: line 3: got negative rate")


# ----- the engine replays a trace ----------------------------------------------------------------

def test_engine_runs_over_a_replayed_trace_with_outages():
    from testbed.cluster import TOPOLOGY_GENERATORS, make_device
    from testbed.model import get_cost_model, get_model
    from testbed.partition import make_partitioner
    from testbed.sim import SimConfig, Simulation

    devices = [make_device("ctl", "apple-m2-mac-mini"), make_device("a", "jetson-orin-nano-8gb"),
               make_device("b", "jetson-orin-nx-16gb")]
    topology = TOPOLOGY_GENERATORS.get("full_mesh")(devices, 1e9, 1e-3)
    trace = replay(Series((0.0, 0.05, 0.08), (50 * M, 0.0, 200 * M), duration_s=0.1), loop=True)
    for key in list(topology.links):
        topology = topology.with_link_series(*key, trace)
    config = SimConfig(model=get_model("gpt2-small"), cost=get_cost_model("decode"),
                       topology=topology, prompt_tokens=8, generate_tokens=4)
    records = Simulation(config, make_partitioner("round_robin", seed=0)).run()
    assert records.outcome == "ok" and len(records.tokens) == 4
