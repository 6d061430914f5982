"""Serving metrics by hand: TTFT, TPOT, ITL, e2e, throughput."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from testbed.experiments.serving_metrics import (COLUMNS, inter_token_latencies, per_request,
                                                 serving_summary)


def tokens(ends, start=0.0, **extra):
    ends = list(ends)
    starts = [start] + ends[:-1]
    return pd.DataFrame({"token": range(1, len(ends) + 1), "start_s": starts, "end_s": ends,
                         "latency_s": np.subtract(ends, starts), **extra})


def test_one_request_ttft_apart_from_the_decode_tokens():
    # a 2 s prefill, then tokens every 0.1 s, one slow one of 0.5 s
    t = tokens([2.0, 2.1, 2.2, 2.7, 2.8])
    got = serving_summary(t)
    assert got["ttft_p50_s"] == got["ttft_p99_s"] == pytest.approx(2.0)
    assert got["tpot_p50_s"] == pytest.approx(0.8 / 4)          # (e2e - TTFT) / (n - 1)
    assert got["e2e_p50_s"] == pytest.approx(2.8)
    assert inter_token_latencies(t) == pytest.approx([0.1, 0.1, 0.5, 0.1])
    assert got["itl_p50_s"] == pytest.approx(0.1)
    assert got["itl_p99_s"] == pytest.approx(np.percentile([0.1, 0.1, 0.5, 0.1], 99))
    assert got["throughput_tokens_per_s"] == pytest.approx(5 / 2.8)
    # the all-token mean the summary also keeps mixes the prefill in: above TPOT's p99
    assert t.latency_s.mean() > got["tpot_p99_s"]
    assert set(got) == set(COLUMNS)


def test_several_requests_percentiles_over_requests():
    a = tokens([1.0, 1.5, 2.0], start=0.0, request=0, arrival_s=0.0)
    b = tokens([4.0, 4.2], start=3.0, request=1, arrival_s=2.0)     # waited 1 s to start
    both = pd.concat([a, b], ignore_index=True)
    rows = per_request(both)
    assert rows.ttft_s.tolist() == pytest.approx([1.0, 2.0])       # from arrival
    assert rows.tpot_s.tolist() == pytest.approx([0.5, 0.2])
    got = serving_summary(both)
    assert got["ttft_p50_s"] == pytest.approx(1.5)
    assert got["throughput_tokens_per_s"] == pytest.approx(5 / 4.2)


def test_a_single_token_has_no_tpot():
    got = serving_summary(tokens([0.3]))
    assert got["ttft_p50_s"] == pytest.approx(0.3)
    assert math.isnan(got["tpot_p50_s"]) and math.isnan(got["itl_p99_s"])
    empty = serving_summary(pd.DataFrame(columns=["token", "start_s", "end_s", "latency_s"]))
    assert empty["requests"] == 0 and empty["requests_done"] == 0
    assert all(math.isnan(v) for k, v in empty.items() if not k.startswith("requests"))
