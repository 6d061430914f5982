"""Which whitespace-separated numeric format a file is: one rule shared by the detectors.

mahimahi, pensieve, lumos5g, oboe and simgrid files are all lines of one or two numbers,
so a single function decides between them and each detector asks whether the answer is
its own name; two of them can never both claim a file. The rule, on the first lines:

- ``simgrid``: a ``LOOPAFTER`` / ``PERIODICITY`` / ``STOCHASTIC`` line (in the first lines
  or at the end of the file), a ``%`` comment line, or a ``#`` comment naming SimGrid (as
  ``testbed traces convert --to simgrid`` writes);
- ``mahimahi``: one number per line;
- ``oboe``: two numbers per line, in pairs (chunk start, chunk end) that repeat the same
  rate, the rate changing between pairs, chunks longer than the gaps between them (at
  least three complete pairs);
- ``lumos5g``: two numbers per line, times whole seconds 1 s apart that start at 1 (the
  Lumos5G 5G files) or are written as integers (its 4G files);
- ``pensieve``: any other two-number file (FCC and Norway "cooked" traces).

Lumos5G and Pensieve files have the same layout (time in s, rate in Mbit/s) and are read
the same way, so a wrong guess between them changes only the label; ``format:`` forces
either. A first line that is not numeric is taken as a header. A few malformed lines
(at most 20 % non-numeric, a minority of odd widths) do not change the answer, so that the
reader can then name them.
"""

from __future__ import annotations

from pathlib import Path

from testbed.traces.lines import is_number, tail_text

SIMGRID_KEYWORDS = ("LOOPAFTER", "PERIODICITY", "STOCHASTIC")


def _is_comment(line: str) -> bool:
    return line.startswith(("#", "%"))


def _simgrid_marked(first_lines: list[str], path: Path | None) -> bool:
    for line in first_lines:
        if line.startswith("%") or (line.startswith("#") and "simgrid" in line.lower()):
            return True
        if line.split()[0].upper() in SIMGRID_KEYWORDS:
            return True
    if path is not None:
        for line in tail_text(path).splitlines()[1:]:
            words = line.split()
            if words and words[0].upper() in SIMGRID_KEYWORDS:
                return True
    return False


def column_format(first_lines: list[str], path: Path | None = None) -> str | None:
    """``"simgrid"``, ``"mahimahi"``, ``"oboe"``, ``"lumos5g"``, ``"pensieve"`` or None."""
    content = [line for line in first_lines if not _is_comment(line)]
    if not content or any("," in line for line in content):
        return None
    if _simgrid_marked(first_lines, path):
        return "simgrid"
    rows = [line.split() for line in content]
    if not all(is_number(token) for token in rows[0]):
        rows = rows[1:]  # a header line
    numeric = [row for row in rows if all(is_number(token) for token in row)]
    if not numeric or len(numeric) < 0.8 * len(rows):
        return None
    widths = [len(row) for row in numeric]
    if widths.count(1) > 0.5 * len(widths):
        return "mahimahi"
    if widths.count(2) <= 0.5 * len(widths):
        return None
    pairs = [row for row in numeric if len(row) == 2]
    if _looks_like_oboe(pairs):
        return "oboe"
    if _looks_like_lumos(pairs):
        return "lumos5g"
    return "pensieve"


def _looks_like_oboe(rows: list[list[str]]) -> bool:
    """Line pairs that repeat their rate (at least 80 % of them), the rate changing between
    pairs, and chunks longer on average than the gaps between them (which tells a Pensieve
    file whose values happen to repeat in twos from an Oboe file)."""
    values = [float(row[1]) for row in rows]
    times = [float(row[0]) for row in rows]
    complete = len(rows) // 2
    if complete < 3:
        return False
    same = sum(values[2 * k] == values[2 * k + 1] for k in range(complete))
    changes = any(values[2 * k + 1] != values[2 * k + 2] for k in range(complete - 1))
    chunks = sum(times[2 * k + 1] - times[2 * k] for k in range(complete)) / complete
    gaps = sum(times[2 * k + 2] - times[2 * k + 1] for k in range(complete - 1)) / (complete - 1)
    return same >= 0.8 * complete and changes and chunks > 2 * gaps


def _looks_like_lumos(rows: list[list[str]]) -> bool:
    times = [float(row[0]) for row in rows]
    if any(t != int(t) for t in times):
        return False
    if any(b - a != 1 for a, b in zip(times, times[1:])):
        return False
    integer_tokens = all(row[0].lstrip("+-").isdigit() for row in rows)
    return times[0] == 1 or integer_tokens
