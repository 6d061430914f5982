"""``testbed traces show | plot | convert``: what each subcommand does.

Bad input raises ConfigError; the CLI prints it on one line and exits with status 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TextIO

from testbed.errors import ConfigError
from testbed.traces.export import CSV_UNITS, WRITERS
from testbed.traces.formats import TRACE_FORMATS, TraceOptionError
from testbed.traces.load import detect_format
from testbed.traces.series import Series
from testbed.traces.stats import trace_stats
from testbed.units import format_bitrate, format_time


def parse_options(pairs: list[str] | None) -> dict[str, str]:
    """``["window=100 ms", ...]`` -> ``{"window": "100 ms"}``."""
    options = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"got {pair!r}; expected KEY=VALUE such as 'window=100 ms'",
                              field="--option")
        options[key.strip()] = value.strip()
    return options


def load(path: str, format: str | None, options: dict) -> tuple[str, Series]:
    """(format name, series) of one file."""
    name = format or detect_format(path)
    reader = TRACE_FORMATS.get(name, source=str(path), field="--format")
    try:
        return name, reader.load(path, **options)
    except TraceOptionError as error:
        raise ConfigError(error.message, source=str(path),
                          field=f"--option {error.field}") from None


def summary(path: str, name: str, series: Series) -> dict:
    """The JSON record of one trace."""
    return {"file": str(path), "format": name, **trace_stats(series),
            "loops": series.loop_period_s is not None}


def _table(record: dict) -> str:
    share = record["outage_s"] / record["duration_s"] if record["duration_s"] else 0.0
    rows = [
        ("format", f"{record['format']} ({record['samples']} sample"
                   f"{'' if record['samples'] == 1 else 's'}"
                   f"{', loops' if record['loops'] else ''})"),
        ("duration", format_time(record["duration_s"])),
        ("mean", f"{format_bitrate(record['mean_bps'])} time-weighted "
                 f"(plain mean of samples {format_bitrate(record['plain_mean_bps'])})"),
        ("p5 / p50 / p95", " / ".join(format_bitrate(record[f"p{p}_bps"]) for p in (5, 50, 95))),
        ("min / max", f"{format_bitrate(record['min_bps'])} / "
                      f"{format_bitrate(record['max_bps'])}"),
        ("outage (0 bit/s)", f"{format_time(record['outage_s'])} ({share:.1%})"),
    ]
    width = max(len(key) for key, _ in rows)
    return "\n".join([record["file"]] + [f"  {key:<{width}}  {value}" for key, value in rows])


def show(files: list[str], *, format: str | None = None, as_json: bool = False,
         options: dict | None = None, out: TextIO | None = None) -> int:
    """A table (or one JSON object per line) of statistics per file."""
    out = out or sys.stdout
    for k, path in enumerate(files):
        name, series = load(path, format, options or {})
        record = summary(path, name, series)
        if as_json:
            out.write(json.dumps(record) + "\n")
        else:
            out.write(("\n" if k else "") + _table(record) + "\n")
    return 0


def plot(files: list[str], *, output: str, format: str | None = None,
         options: dict | None = None) -> int:
    """Capacity over time, one panel per file, into ``output`` (.png or .pdf)."""
    from testbed.traces.plot import plot_traces
    traces = []
    for path in files:
        name, series = load(path, format, options or {})
        traces.append((f"{Path(path).name} ({name})", series))
    written = plot_traces(traces, output)
    print(f"wrote {written}")
    return 0


def convert(path: str, *, to: str, output: str | None = None, format: str | None = None,
            options: dict | None = None, unit: str = "bps") -> int:
    """Write the trace in ``path`` as ``to`` (csv or simgrid) to ``output`` or stdout."""
    if unit not in CSV_UNITS:
        raise ConfigError(f"got {unit!r}; expected one of {', '.join(CSV_UNITS)}", field="--unit")
    name, series = load(path, format, options or {})
    writer = WRITERS[to]
    kwargs = {"unit": unit} if to == "csv" else {}
    if output is None:
        writer(series, sys.stdout, **kwargs)
        return 0
    try:
        with open(output, "w", encoding="utf-8", newline="\n") as handle:
            writer(series, handle, **kwargs)
    except OSError as error:
        raise ConfigError(f"cannot write: {error.strerror or error}", source=output,
                          field="-o") from None
    print(f"wrote {output} ({to}, {len(series.times_s)} samples from {path}, {name})")
    return 0
