"""Every benchmark figure with its target, one line each::

    <name>=<value> target=<target> ok|MISS

- ``sim_tokens_per_s``: Llama-3-8B over 8 devices, constant links, each layer's K/V
  groups over 4 devices (:mod:`sim_speed`'s ``heads-4`` placement), simulated tokens per
  wall-clock second (the best of 3 runs, as the next two);
- ``sim_contended_tokens_per_s``: the same over all 8 devices (``heads-8``), whose flows
  share links, so every pass runs event by event;
- ``sim_traced_tokens_per_s``: the same 8 devices with a bandwidth trace on every link
  (real ones when ``../shared/traces`` is present) and ``resource_aware`` deciding before
  every token (:mod:`traced_speed`);
- ``resource_aware_ms``, ``resource_aware_plus_ms``, ``exact_5x8_s``, ``exact_8x32_s``:
  decision times (:mod:`decision_time`);
- ``peak_rss_mb``, ``peak_rss_llama_mb``: peak resident set size (MB) of a 25-device,
  1000-token run of E2 with 7 partitioners, written as ``testbed run`` writes it (the
  paper's LARGE model; Llama-3.2-3B, whose head-level runs leave 1.3 million flows) in a
  child process of its own (:mod:`peak_memory`, ``getrusage(RUSAGE_SELF)``);
- ``serving_tokens_per_s``: 100 requests x 200 output tokens served with continuous
  batching by Llama-3-8B over eight 8 GB edge devices, ``resource_aware_plus`` deciding
  before every pass, simulated output tokens per wall-clock second (:mod:`serving_speed`);
- ``large_run_s``: wall time of a 48-device, 500-step run with the paper preset
  (:mod:`large_run`).

Exits 0 whatever the figures are (a figure that could not be measured prints ``nan``
and MISS, with the reason on stderr).

    python benchmarks/run_all.py
"""

from __future__ import annotations

import math
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
REPEATS = 3   # speed figures: the best of 3 runs, the one least slowed by other processes


def _child_peak_mb(case: int) -> float:
    """Peak RSS (MB) of :mod:`peak_memory` in a child process of its own, as the child
    reads it (``getrusage(RUSAGE_SELF)``) and prints it last."""
    proc = subprocess.run([sys.executable, str(HERE / "peak_memory.py"), "--case", str(case)],
                          check=True, capture_output=True, text=True, cwd=HERE.parent)
    return float(proc.stdout.strip().splitlines()[-1].split("=")[1])


def peak_rss_mb() -> float:
    return _child_peak_mb(0)


def peak_rss_llama_mb() -> float:
    return _child_peak_mb(1)


def constant_links() -> float:
    import sim_speed
    return max(sim_speed.measure(4, 500)[0] for _ in range(REPEATS))


def contended_links() -> float:
    import sim_speed
    return max(sim_speed.measure(8, 200)[0] for _ in range(REPEATS))


def traced_links() -> float:
    import traced_speed
    rates, kind = zip(*(traced_speed.measure(100, "resource_aware") for _ in range(REPEATS)))
    print(f"# sim_traced_tokens_per_s: {kind[0]} traces", file=sys.stderr)
    return max(rates)


def serving() -> float:
    import serving_speed
    return max(serving_speed.measure(100, 200)[0] for _ in range(REPEATS))


def decision_times() -> dict[str, float]:
    import decision_time
    return decision_time.measure_all(10)


def large_run() -> float:
    import large_run as module
    return module.measure(500)


# name -> (how to measure it (a figure, or a dict of figures), ">=" or "<=", target)
FIGURES: list[tuple[str, Callable[[], object], str, float]] = [
    ("peak_rss_mb", peak_rss_mb, "<=", 300.0),
    ("peak_rss_llama_mb", peak_rss_llama_mb, "<=", 300.0),
    ("sim_tokens_per_s", constant_links, ">=", 1000.0),
    ("sim_contended_tokens_per_s", contended_links, ">=", 180.0),
    ("sim_traced_tokens_per_s", traced_links, ">=", 100.0),
    ("serving_tokens_per_s", serving, ">=", 1000.0),
    ("resource_aware_ms", decision_times, "<=", 50.0),
    ("resource_aware_plus_ms", decision_times, "<=", 50.0),
    ("exact_5x8_s", decision_times, "<=", 1.0),
    ("exact_8x32_s", decision_times, "<=", 10.0),
    ("large_run_s", large_run, "<=", 60.0),
]
ORDER = ["sim_tokens_per_s", "sim_contended_tokens_per_s", "sim_traced_tokens_per_s",
         "serving_tokens_per_s", "resource_aware_ms",
         "resource_aware_plus_ms", "exact_5x8_s", "exact_8x32_s", "peak_rss_mb",
         "peak_rss_llama_mb",
         "large_run_s"]


def line(name: str, value: float, sense: str, target: float) -> str:
    met = math.isfinite(value) and (value >= target if sense == ">=" else value <= target)
    return f"{name}={value:.3f} target={sense}{target:g} {'ok' if met else 'MISS'}"


def main() -> int:
    measured: dict[Callable, object] = {}
    values: dict[str, float] = {}
    for name, how, _, _ in FIGURES:
        if how not in measured:
            try:
                measured[how] = how()
            except Exception:
                print(f"# {name}: could not measure:\n{traceback.format_exc()}",
                      file=sys.stderr)
                measured[how] = math.nan
        result = measured[how]
        values[name] = float(result.get(name, math.nan) if isinstance(result, dict)
                             else result)
    specs = {name: (sense, target) for name, _, sense, target in FIGURES}
    for name in ORDER:
        print(line(name, values[name], *specs[name]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
