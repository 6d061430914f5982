"""Serving metrics, named as the field names them (vLLM, Vidur, DistServe):

- **TTFT**, time to first token: from a request's arrival to its first token, prefill
  included (s);
- **TPOT**, time per output token: a request's decode time per token after the first,
  ``(e2e - TTFT) / (output tokens - 1)`` (s);
- **ITL**, inter-token latency: the gap between consecutive tokens of one request (s);
- **e2e** latency: from arrival to the last token (s);
- **throughput**: output tokens per second over the run (from the first arrival to the last
  token);
- **SLO attainment** and **goodput**: the share of requests, and the requests per second,
  that finished meeting both a TTFT and a TPOT objective (:class:`Slo`; DistServe's
  goodput). Requests rejected or unfinished count as missing it.

Percentiles (p50, p90, p99) of TTFT, TPOT and e2e are over requests, of ITL over tokens.
A tokens table with a ``request`` column holds several requests (and ``arrival_s`` their
arrival, default: the start of their first token); without, it is one request arriving
when its first token starts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from testbed import config_schema as cs

PERCENTILES = (50, 90, 99)
COLUMNS = [f"{m}_p{q}_s" for m in ("ttft", "tpot", "itl", "e2e") for q in PERCENTILES] + \
    ["throughput_tokens_per_s", "requests", "requests_done", "slo_attainment",
     "slo_goodput_requests_per_s"]


@dataclass(frozen=True)
class Slo:
    """Service-level objectives (s): a request meets them if its TTFT and its TPOT are
    both at most these. Defaults: 2 s to the first token; 200 ms per token after it, about
    the pace of reading (~250 words/min, ~5 tokens/s). Also a scenario's ``slo``
    section."""

    ttft_s: float = cs.setting("2 s", cs.duration(), "time to first token at most",
                               key="ttft")
    tpot_s: float = cs.setting("200 ms", cs.duration(), "time per output token at most",
                               key="tpot")


def per_request(tokens: pd.DataFrame) -> pd.DataFrame:
    """One row per request: ``request, arrival_s, output_tokens, ttft_s, e2e_s, tpot_s``."""
    if tokens.empty:
        return pd.DataFrame(columns=["request", "arrival_s", "output_tokens", "ttft_s",
                                     "e2e_s", "tpot_s"])
    frame = tokens if "request" in tokens.columns else tokens.assign(request=0)
    rows = []
    for request, part in frame.groupby("request", sort=True):
        part = part.sort_values("token")
        arrival = float(part.arrival_s.iloc[0]) if "arrival_s" in part.columns \
            else float(part.start_s.iloc[0])
        ends = part.end_s.to_numpy(dtype=float)
        ttft, e2e = ends[0] - arrival, ends[-1] - arrival
        n = len(part)
        rows.append({"request": request, "arrival_s": arrival, "output_tokens": n,
                     "ttft_s": ttft, "e2e_s": e2e,
                     "tpot_s": (e2e - ttft) / (n - 1) if n > 1 else np.nan})
    return pd.DataFrame(rows)


def inter_token_latencies(tokens: pd.DataFrame) -> np.ndarray:
    """Every gap between consecutive tokens of one request (s)."""
    frame = tokens if "request" in tokens.columns else tokens.assign(request=0)
    gaps = [np.diff(part.sort_values("token").end_s.to_numpy(dtype=float))
            for _, part in frame.groupby("request", sort=True)]
    return np.concatenate(gaps) if gaps else np.array([])


def serving_summary(tokens: pd.DataFrame, slo: Slo = Slo(),
                    served: pd.DataFrame | None = None) -> dict[str, float]:
    """The columns of :data:`COLUMNS` for one run (NaN where undefined); ``served`` is the
    run's requests table when it served requests (one row per request, ``outcome``)."""
    requests = per_request(tokens)
    out: dict[str, float] = {}
    series = {"ttft": requests.ttft_s.to_numpy(dtype=float),
              "tpot": requests.tpot_s.dropna().to_numpy(dtype=float),
              "itl": inter_token_latencies(tokens),
              "e2e": requests.e2e_s.to_numpy(dtype=float)}
    for name, values in series.items():
        for q in PERCENTILES:
            out[f"{name}_p{q}_s"] = float(np.percentile(values, q)) if len(values) \
                else np.nan
    span = float(tokens.end_s.max() - requests.arrival_s.min()) if len(requests) else 0.0
    out["throughput_tokens_per_s"] = len(tokens) / span if span > 0 else np.nan
    if served is not None and len(served):
        total, done_ids = len(served), set(served.request[served.outcome == "done"])
        done = requests[requests.request.isin(done_ids)]
        span = float(served.end_s.max() - served.arrival_s.min()) if len(done) else 0.0
    else:
        total, done = len(requests), requests
    tpot_ok = done.tpot_s.isna() | (done.tpot_s <= slo.tpot_s + 1e-12)
    meets = int(((done.ttft_s <= slo.ttft_s + 1e-12) & tpot_ok).sum())
    out["requests"] = total
    out["requests_done"] = len(done)
    out["slo_attainment"] = meets / total if total else np.nan
    out["slo_goodput_requests_per_s"] = meets / span if span > 0 else np.nan
    return out


def saturation(summary: pd.DataFrame, requests: pd.DataFrame,
               rate: str = "requests.rate_per_s", keep_up: float = 0.9) -> pd.DataFrame:
    """Where each partitioner saturates, from a sweep over arrival rates: its largest
    throughput (output tokens/s, mean over seeds) and the lowest arrival rate at which
    it delivers less than ``keep_up`` of the offered load (rate x mean output tokens of
    the requests); NaN if it keeps up at every rate swept."""
    offered = requests.groupby([rate, "partitioner"]).output_tokens.mean()
    means = summary.groupby([rate, "partitioner"]).throughput_tokens_per_s.mean()
    rows = []
    for name in dict.fromkeys(summary.partitioner):
        mine = means.xs(name, level="partitioner").sort_index()
        load = offered.xs(name, level="partitioner").reindex(mine.index) * mine.index
        behind = mine.index[(mine < keep_up * load).to_numpy()]
        rows.append({"partitioner": name, "capacity_tokens_per_s": float(mine.max()),
                     "saturates_at_rate_per_s": float(behind.min()) if len(behind)
                     else np.nan})
    return pd.DataFrame(rows)
