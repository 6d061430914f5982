"""A scenario's ``requests:`` section: serving many users (with its ``batching:`` and
``slo:`` sections, declared on :class:`~testbed.sim.batching.BatchingSpec` and
:class:`~testbed.experiments.serving_metrics.Slo`).

::

    requests:                     # absent: one sequence (workload.prompt/generate_tokens)
      arrivals: poisson           # poisson | trace | list
      rate_per_s: 2.0             # poisson: mean arrivals per second
      count: 50                   # poisson: how many requests
      prompt_tokens: {dist: lognormal, mean: 256, sigma: 0.6, low: 16, high: 1024}
      output_tokens: 64           # a number, or {dist: constant|uniform|lognormal, ...};
                                  # default: workload.prompt_tokens / generate_tokens
      # arrivals: trace  -> file: requests.csv, limit: 100, time_scale: 1.0
      #   (columns arrival_s,prompt_tokens,output_tokens, or the Azure LLM inference
      #    trace's TIMESTAMP,ContextTokens,GeneratedTokens)
      # arrivals: list   -> requests: [["0 s", 128, 64], ["1.5 s", 32, 16]]
    batching: {max_batch: 16, prefill: separate, chunk_tokens: 512}   # or prefill: chunked
    slo: {ttft: "2 s", tpot: "200 ms"}  # a request meets its SLO if both hold

Lengths are drawn from the scenario's seed (stream ``requests``), so the same seed gives
the same requests for every partitioner.
"""

from __future__ import annotations

from pathlib import Path

from testbed import config_schema as cs
from testbed import config_values as cv
from testbed.errors import ConfigError, bad_value
from testbed.experiments.seeding import component_rng
from testbed.model.spec import ModelSpec
from testbed.requests import LengthDist, RequestSpec, poisson_requests, read_request_trace
from testbed.units import parse_time

REQUEST_KEYS = ("arrivals", "rate_per_s", "count", "prompt_tokens", "output_tokens", "file",
                "limit", "time_scale", "requests")
ARRIVALS = ("poisson", "trace", "list")
DIST_KEYS = ("dist", "mean", "value", "sigma", "low", "high")
_count = cs.integer(1)     # (value, source, field) -> an integer >= 1


def parse_requests(value: object, *, default_prompt: int, default_output: int,
                   model: ModelSpec, seed: int, source: str,
                   base_dir: Path) -> tuple[RequestSpec, ...] | None:
    """The requests of a ``requests:`` section (None when absent)."""
    if value is None:
        return None
    field = "requests"
    entry = cv.mapping(value, source=source, field=field,
                       what="{arrivals: poisson|trace|list, ...}")
    cv.check_keys(entry, REQUEST_KEYS, source=source, field=field, required=("arrivals",))
    kind = entry["arrivals"]
    if kind not in ARRIVALS:
        raise bad_value(kind, " or ".join(ARRIVALS), source=source, field=f"{field}.arrivals")
    if kind == "poisson":
        rate = entry.get("rate_per_s")
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
            raise bad_value(rate, "a positive number of arrivals per second", source=source,
                            field=f"{field}.rate_per_s")
        count = _count(entry.get("count"), source, f"{field}.count")
        rng = component_rng(seed, "requests")
        requests = poisson_requests(
            float(rate), count,
            _length(entry.get("prompt_tokens", default_prompt), source,
                    f"{field}.prompt_tokens"),
            _length(entry.get("output_tokens", default_output), source,
                    f"{field}.output_tokens"), rng)
    elif kind == "trace":
        if not isinstance(entry.get("file"), str):
            raise bad_value(entry.get("file"), "a path to a request trace CSV", source=source,
                            field=f"{field}.file")
        path = Path(entry["file"])
        scale = entry.get("time_scale", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
            raise bad_value(scale, "a positive number", source=source,
                            field=f"{field}.time_scale")
        limit = entry.get("limit")
        requests = read_request_trace(
            path if path.is_absolute() else base_dir / path,
            limit=None if limit is None else _count(limit, source, f"{field}.limit"),
            time_scale=float(scale))
    else:
        requests = _listed(entry.get("requests"), source, f"{field}.requests")
    for r in requests:
        if r.prompt_tokens + r.output_tokens > model.max_position:
            raise ConfigError(f"request {r.request} needs {r.prompt_tokens} + "
                              f"{r.output_tokens} positions; expected at most "
                              f"{model.name}'s context of {model.max_position}",
                              source=source, field=field, value=r.request)
    return tuple(requests)


def _listed(value: object, source: str, field: str) -> list[RequestSpec]:
    if not isinstance(value, list) or not value:
        raise bad_value(value, "a list of [arrival, prompt_tokens, output_tokens]",
                        source=source, field=field)
    out = []
    for i, row in enumerate(value):
        if not isinstance(row, list) or len(row) != 3:
            raise bad_value(row, "[arrival, prompt_tokens, output_tokens], e.g. "
                            "[\"0 s\", 128, 64]", source=source, field=f"{field}[{i}]")
        arrival = cv.quantity(parse_time, row[0], source=source, field=f"{field}[{i}][0]",
                              what="time", allow_zero=True)
        out.append(RequestSpec(i, arrival, _count(row[1], source, f"{field}[{i}][1]"),
                               _count(row[2], source, f"{field}[{i}][2]")))
    return out


def _length(value: object, source: str, field: str) -> LengthDist:
    if isinstance(value, int) and not isinstance(value, bool):
        return LengthDist("constant", _count(value, source, field))
    entry = cv.mapping(value, source=source, field=field,
                       what="a token count or {dist: constant|uniform|lognormal, ...}")
    cv.check_keys(entry, DIST_KEYS, source=source, field=field, required=("dist",))
    kind = entry["dist"]
    low = _count(entry.get("low", 1), source, f"{field}.low")
    high = _count(entry.get("high", 1 << 20), source, f"{field}.high")
    if high < low:
        raise bad_value(high, f"an integer >= low ({low})", source=source,
                        field=f"{field}.high")
    if kind == "uniform":
        return LengthDist("uniform", (low + high) / 2, 0.0, low, high)
    if kind not in ("constant", "lognormal"):
        raise bad_value(kind, "constant, uniform or lognormal", source=source,
                        field=f"{field}.dist")
    mean = entry.get("mean", entry.get("value"))
    if isinstance(mean, bool) or not isinstance(mean, (int, float)) or not mean >= 1:
        raise bad_value(mean, "a mean length >= 1 (tokens)", source=source,
                        field=f"{field}.mean")
    sigma = entry.get("sigma", 0.5 if kind == "lognormal" else 0.0)
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or sigma < 0:
        raise bad_value(sigma, "a number >= 0", source=source, field=f"{field}.sigma")
    return LengthDist(kind, float(mean), float(sigma), low, high)
