"""Request arrivals: trace files (ours and the Azure LLM inference trace's layout), Poisson
arrivals and seeded length distributions."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from testbed.errors import ConfigError
from testbed.experiments.scenario import scenario_from_dict
from testbed.requests import LengthDist, poisson_requests, read_request_trace

AZURE = """TIMESTAMP,ContextTokens,GeneratedTokens
2023-11-16 18:15:46.6805900,374,44
2023-11-16 18:15:50.9951690,396,109
2023-11-16 18:15:51.0000000,879,31
"""


def test_the_azure_layout_gives_arrivals_from_the_first_row(tmp_path):
    path = tmp_path / "AzureLLMInferenceTrace_conv.csv"
    path.write_text(AZURE)
    requests = read_request_trace(path)
    assert [r.arrival_s for r in requests] == pytest.approx([0.0, 4.314579, 4.31941])
    assert [(r.prompt_tokens, r.output_tokens) for r in requests] == \
        [(374, 44), (396, 109), (879, 31)]
    assert [r.arrival_s for r in read_request_trace(path, limit=2, time_scale=0.5)] == \
        pytest.approx([0.0, 2.1572895])


def test_our_layout_and_a_scenario_that_replays_it(tmp_path):
    (tmp_path / "requests.csv").write_text("arrival_s,prompt_tokens,output_tokens\n"
                                           "0,16,4\n0.05,32,3\n\n0.5,8,2\n")
    (tmp_path / "s.yaml").write_text(
        "model: {name: tinyllama-1.1b, overrides: {n_layers: 2}}\n"
        "topology: {file: home_office.yaml}\n"
        "requests: {arrivals: trace, file: requests.csv}\n"
        "partitioners: [edgeshard]\n")
    proc = subprocess.run([sys.executable, "-m", "testbed.cli", "run", str(tmp_path / "s.yaml"),
                           "--out", str(tmp_path / "out"), "--no-figures"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    import pandas as pd
    requests = pd.read_csv(tmp_path / "out" / "requests.csv")
    assert list(requests.arrival_s) == [0.0, 0.05, 0.5]
    assert (requests.outcome == "done").all()
    assert len(pd.read_csv(tmp_path / "out" / "tokens.csv")) == 9
    config = (tmp_path / "out" / "config.yaml").read_text()
    assert str(tmp_path / "requests.csv") in config     # re-runnable from anywhere


@pytest.mark.parametrize("text, message", [
    ("when,prompt,output\n0,1,1\n", "line 1: got header"),
    ("arrival_s,prompt_tokens,output_tokens\n0,16\n", "line 2: .* expected 3 columns"),
    ("arrival_s,prompt_tokens,output_tokens\n0,16,4\nsoon,16,4\n", "line 3: arrival_s 'soon'"),
    ("arrival_s,prompt_tokens,output_tokens\n0,16.5,4\n", "line 2: prompt_tokens '16.5'"),
    ("arrival_s,prompt_tokens,output_tokens\n1,16,4\n0.5,16,4\n", "line 3: .*arrival order"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,1,1\n", "line 2: TIMESTAMP"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,1,0\n",
     "line 2: GeneratedTokens '0'"),
    ("arrival_s,prompt_tokens,output_tokens\n", "no requests"),
])
def test_a_bad_trace_names_its_file_and_line(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as error:
        read_request_trace(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_a_missing_trace_is_a_one_line_error_and_exit_2(tmp_path):
    (tmp_path / "s.yaml").write_text(
        "model: gpt2-small\ntopology: {file: home_office.yaml}\n"
        "requests: {arrivals: trace, file: nowhere.csv}\n")
    proc = subprocess.run([sys.executable, "-m", "testbed.cli", "run", str(tmp_path / "s.yaml"),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "nowhere.csv" in proc.stderr


@pytest.mark.parametrize("dist", [LengthDist("lognormal", 300.0, 0.8),
                                  LengthDist("uniform", 0, 0, 20, 60),
                                  LengthDist("constant", 77.0)])
def test_length_distributions_have_their_declared_mean(dist):
    values = dist.draw(np.random.default_rng(4), 20_000)
    assert values.min() >= 1 and values.dtype.kind == "i"
    spread = values.std() / np.sqrt(len(values))
    assert abs(values.mean() - dist.mean) <= 4 * spread + 0.5   # 0.5: rounding to tokens


def test_poisson_arrivals_have_the_rate_and_exponential_gaps():
    requests = poisson_requests(4.0, 5000, LengthDist(), LengthDist(),
                                np.random.default_rng(1))
    gaps = np.diff([0.0] + [r.arrival_s for r in requests])
    assert gaps.mean() == pytest.approx(0.25, rel=0.05)
    assert gaps.std() == pytest.approx(0.25, rel=0.05)        # exponential: std = mean


def test_the_seed_decides_the_requests_and_nothing_else_does():
    def requests(seed, partitioners):
        return scenario_from_dict({
            "model": "gpt2-small", "topology": {"file": "home_office.yaml"}, "seed": seed,
            "partitioners": partitioners,
            "requests": {"arrivals": "poisson", "rate_per_s": 2, "count": 20,
                         "prompt_tokens": {"dist": "lognormal", "mean": 100}}}).sim.requests
    assert requests(1, ["greedy"]) == requests(1, ["edgeshard", "greedy"])
    assert requests(1, ["greedy"]) != requests(2, ["greedy"])
