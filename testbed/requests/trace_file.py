"""Request traces: CSV files of (arrival, prompt tokens, output tokens), one row per request.

Two layouts, told apart by the header:

- ``testbed``: ``arrival_s,prompt_tokens,output_tokens`` (arrival in s from the start);
- ``azure``: the public Azure LLM inference traces (Patel et al., Splitwise, ISCA 2024;
  github.com/Azure/AzurePublicDataset, ``AzureLLMInferenceTrace_{code,conv}.csv``):
  ``TIMESTAMP,ContextTokens,GeneratedTokens``, ``TIMESTAMP`` a date and time such as
  ``2023-11-16 18:15:46.6805900``; arrivals are taken from the first row's time.

Rows must be in arrival order. Every bad row is a one-line error naming the file, the line
and the value.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path

from testbed.errors import ConfigError
from testbed.requests.spec import RequestSpec

FORMATS = {
    "testbed": ("arrival_s", "prompt_tokens", "output_tokens"),
    "azure": ("TIMESTAMP", "ContextTokens", "GeneratedTokens"),
}


def read_request_trace(path: str | Path, *, limit: int | None = None,
                       time_scale: float = 1.0) -> list[RequestSpec]:
    """The requests of a trace file (the first ``limit`` rows; arrival times multiplied
    by ``time_scale``, e.g. 0.5 to replay twice as fast)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as error:
        raise ConfigError(f"cannot read ({error.strerror or error}); expected a request "
                          "trace CSV", source=source) from None
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text; expected a request trace CSV",
                          source=source) from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    columns = tuple(c.strip() for c in header) if header else ()
    layout = next((name for name, cols in FORMATS.items() if columns[:3] == cols), None)
    if layout is None:
        expected = " or ".join(",".join(cols) for cols in FORMATS.values())
        raise ConfigError(f"line 1: got header {','.join(columns)!r}; expected {expected}",
                          source=source, value=columns)
    requests: list[RequestSpec] = []
    first = None
    previous = 0.0
    for number, row in enumerate(reader, start=2):
        if not row or not "".join(row).strip():
            continue
        if limit is not None and len(requests) >= limit:
            break
        if len(row) < 3:
            raise ConfigError(f"line {number}: got {','.join(row)!r}; expected 3 columns "
                              f"({','.join(FORMATS[layout])})", source=source, value=row)
        when, prompt, output = (cell.strip() for cell in row[:3])
        if layout == "azure":
            stamp = _timestamp(when, source, number)
            first = stamp if first is None else first
            arrival = (stamp - first).total_seconds()
        else:
            arrival = _number(when, source, number, "arrival_s", "a time >= 0 in s")
        arrival *= time_scale
        if arrival < previous:
            raise ConfigError(f"line {number}: arrival {when!r} is before the previous "
                              "row's; expected rows in arrival order", source=source,
                              value=when)
        previous = arrival
        requests.append(RequestSpec(
            len(requests), arrival,
            _count(prompt, source, number, FORMATS[layout][1]),
            _count(output, source, number, FORMATS[layout][2])))
    if not requests:
        raise ConfigError("no requests; expected at least one row after the header",
                          source=source)
    return requests


def _timestamp(text: str, source: str, line: int) -> datetime:
    value = text
    if "." in value:      # Azure writes 7 fractional digits; datetime takes at most 6
        head, fraction = value.split(".", 1)
        value = f"{head}.{fraction[:6]}"
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"line {line}: TIMESTAMP {text!r}; expected a date and time such "
                          "as 2023-11-16 18:15:46.6805900", source=source, value=text) from None


def _number(text: str, source: str, line: int, column: str, expected: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0 or value == float("inf"):
        raise ConfigError(f"line {line}: {column} {text!r}; expected {expected}",
                          source=source, value=text)
    return value


def _count(text: str, source: str, line: int, column: str) -> int:
    value = _number(text, source, line, column, "an integer >= 1")
    if value < 1 or value != int(value):
        raise ConfigError(f"line {line}: {column} {text!r}; expected an integer >= 1",
                          source=source, value=text)
    return int(value)
