"""Write the shipped synthetic bandwidth traces as CSV (``time_s,bandwidth_Mbps``).

Run ``python traces/make_traces.py``; it overwrites the files next to it with the same
content every time (fixed seed, one random stream per trace, so changing one trace does not
change the others). Rates are rounded to 1 kbit/s before writing; the written values are
the ones every run uses.

- ``ethernet_constant.csv``: Gigabit Ethernet goodput, 940 Mbit/s, 60 s.
- ``wifi_fading.csv``: Wi-Fi with slow fading: a random walk reflected into 20-300 Mbit/s,
  steps of 15 Mbit/s std every 100 ms, 120 s (stationary mean 160 Mbit/s).
- ``wifi_jitter.csv``: Wi-Fi with fast jitter: log-normal around 100 Mbit/s (sigma 0.3)
  every 100 ms, 60 s.
- ``lte_gilbert_elliott.csv``: LTE good/bad: 30 Mbit/s for 8 s on average, 2 Mbit/s for 2 s
  on average, stepped every 100 ms, 300 s (stationary mean 24.4 Mbit/s).
- ``handover_steps.csv``: a 5G handover: 400 Mbit/s, a 2 s outage at 20 s, 80 Mbit/s on the
  new cell, back to 400 Mbit/s at 40 s; 60 s.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from testbed.traces.export import write_csv
from testbed.traces.generators import TRACE_GENERATORS
from testbed.traces.series import Series

SEED = 20250502  # fixed: the files are reproducible byte for byte
OUT_DIR = Path(__file__).resolve().parent
M = 1e6

TRACES = {  # file stem -> (generator, duration s, step s, parameters in SI units)
    "ethernet_constant": ("constant", 60.0, 1.0, {"rate_bps": 940 * M}),
    "wifi_fading": ("random_walk", 120.0, 0.1,
                    {"low_bps": 20 * M, "high_bps": 300 * M, "sigma_bps": 15 * M}),
    "wifi_jitter": ("lognormal_jitter", 60.0, 0.1, {"mean_bps": 100 * M, "sigma": 0.3}),
    "lte_gilbert_elliott": ("gilbert_elliott", 300.0, 0.1,
                            {"good_bps": 30 * M, "bad_bps": 2 * M, "mean_good_s": 8.0,
                             "mean_bad_s": 2.0}),
    "handover_steps": ("steps", 60.0, 1.0,
                       {"schedule": [(0.0, 400 * M), (20.0, 0.0), (22.0, 80 * M),
                                     (40.0, 400 * M)]}),
}


def main() -> None:
    streams = np.random.SeedSequence(SEED).spawn(len(TRACES))
    for (stem, (name, duration, step, params)), stream in zip(TRACES.items(), streams):
        series = TRACE_GENERATORS.get(name)(duration, step, np.random.default_rng(stream),
                                            **params)
        rounded = Series(series.times_s, [round(v / 1e3) * 1e3 for v in series.values],
                         None, "bit/s", f"traces/make_traces.py: {name} (seed {SEED})",
                         series.duration_s)
        path = OUT_DIR / f"{stem}.csv"
        with open(path, "w", encoding="utf-8", newline="\n") as handle:
            write_csv(rounded, handle, unit="Mbps")
        print(f"wrote {path.name}: {len(series.times_s)} samples, {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
