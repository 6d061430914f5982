"""Sweep figures: against the grid key, every compared setting its own panel or line, and
lines lying on each other named in the legend."""

from __future__ import annotations

import pandas as pd

from testbed.experiments.plots import FACET, _facet, same_as_labels
from testbed.experiments.sweep_plots import grid_keys, numeric_key, plot_against


def summary():
    rows = []
    for n in (3, 10, 25):
        for mode in ("blocking", "live"):
            for name, tpot in (("a", 0.1 * n), ("b", 0.1 * n), ("c", 0.05)):
                rows.append({"partitioner": name, "topology.n": n, "migration.mode": mode,
                             "seed": 1, "run_id": f"{n}{mode}", "tpot_p50_s": tpot,
                             "ttft_p50_s": 1.0, "migrations": 0,
                             "mean_decision_wall_s": 0.01 * (name == "b") + 0.001,
                             "sim_wall_s": 0.5})
    return pd.DataFrame(rows)


def test_the_numeric_grid_key_goes_on_the_x_axis_and_the_others_make_lines(tmp_path):
    frame = summary()
    keys = grid_keys(frame, {"tpot_p50_s", "ttft_p50_s", "migrations",
                             "mean_decision_wall_s", "sim_wall_s"})
    assert keys == ["topology.n", "migration.mode"]
    assert numeric_key(frame, keys) == "topology.n"
    path = plot_against(frame, "topology.n", tmp_path / "grid.png", others=["migration.mode"])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20_000


def test_identical_lines_are_named_whole_or_by_panel():
    means = summary().groupby(["partitioner", "topology.n"]).mean(numeric_only=True)
    columns = ["tpot_p50_s", "ttft_p50_s", "mean_decision_wall_s"]
    assert same_as_labels(means, ["a", "b", "c"], ["tpot_p50_s", "ttft_p50_s"]) == \
        {"a": "a", "b": "b (= a)", "c": "c"}
    short = {"tpot_p50_s": "TPOT", "ttft_p50_s": "TTFT", "mean_decision_wall_s": "decision"}
    # TTFT is the same for everyone: not worth saying; b differs from a in decision time
    assert same_as_labels(means, ["a", "b", "c"], columns, short)["b"] == "b (TPOT = a)"
    assert same_as_labels(means, ["a", "b", "c"], columns, short)["c"] == "c (decision = a)"


def test_lines_within_a_percent_are_named_as_drawn_one_over_the_other():
    index = pd.MultiIndex.from_product([["a", "b", "c"], [1, 2]], names=["p", "x"])
    means = pd.DataFrame({"tpot": [1.0, 2.0, 1.004, 2.006, 1.0, 2.1],
                          "ttft": [5.0, 6.0, 5.0, 6.0, 9.0, 9.0]}, index=index)
    labels = same_as_labels(means, ["a", "b", "c"], ["tpot", "ttft"],
                            {"tpot": "TPOT", "ttft": "TTFT"})
    assert labels == {"a": "a", "b": "b (≈ a)", "c": "c"}    # c's TPOT is 5 % off at x=2
    only = same_as_labels(means.assign(ttft=[5.0, 6.0, 7.0, 8.0, 9.0, 9.0]), ["a", "b", "c"],
                          ["tpot", "ttft"], {"tpot": "TPOT", "ttft": "TTFT"})
    assert only["b"] == "b (TPOT ≈ a)"


def test_every_varying_setting_gets_its_own_panel():
    tokens = pd.DataFrame({"token": [1, 1, 1, 1], "latency_s": [1.0] * 4,
                           "partitioner": ["a"] * 4,
                           "workload.decision_interval": [1, 1, 8, 8],
                           "migration.weights_preloaded": [False, True, False, True]})
    tables = {"tokens": tokens}
    assert _facet(tables) == FACET
    assert list(tables["tokens"][FACET]) == [
        "decision_interval=1, weights_preloaded=False",
        "decision_interval=1, weights_preloaded=True",
        "decision_interval=8, weights_preloaded=False",
        "decision_interval=8, weights_preloaded=True"]
