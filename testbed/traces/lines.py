"""Reading trace files as numbered text lines, and the one-line errors that name them.

Every reader goes through :func:`read_lines`: it accepts LF, CRLF or CR line endings and a
UTF-8 byte-order mark, skips blank lines and full-line comments, and keeps the 1-based
line number of every line it returns so that errors can say ``line N``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from testbed.errors import ConfigError

DETECT_LINES = 50  # how many non-blank lines format detection looks at


@dataclass(frozen=True)
class Line:
    """One non-blank, non-comment line: ``number`` (1-based) and ``text`` (stripped)."""

    number: int
    text: str


def read_text(path: str | Path) -> str:
    """The whole file as text; a missing or unreadable file is a one-line ConfigError."""
    source = str(path)
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError("file not found; expected a bandwidth trace file",
                          source=source) from None
    except IsADirectoryError:
        raise ConfigError("is a folder; expected a bandwidth trace file", source=source) from None
    except UnicodeDecodeError:
        raise ConfigError("cannot read: not UTF-8 text; expected a text trace file",
                          source=source) from None
    except OSError as error:
        raise ConfigError(f"cannot read: {error.strerror or error}", source=source) from None


def read_lines(path: str | Path, *, comments: str = "#") -> list[Line]:
    """The data lines of ``path``: blank lines and lines starting with one of ``comments``
    dropped. An empty result is an error (``line 1``)."""
    lines = []
    for number, raw in enumerate(read_text(path).splitlines(), start=1):
        text = raw.strip()
        if text and text[0] not in comments:
            lines.append(Line(number, text))
    if not lines:
        raise line_error(path, 1, "got no data (empty file, or only blank and comment lines); "
                                  "expected trace samples")
    return lines


def head(path: str | Path, count: int = DETECT_LINES) -> list[str]:
    """The non-blank lines (stripped) up to the ``count``-th that is not a ``#``/``%``
    comment, comments included, for detection."""
    out, data = [], 0
    for raw in read_text(path).splitlines():
        text = raw.strip()
        if text:
            out.append(text)
            data += text[0] not in "#%"
            if data == count:
                break
    return out


def tail_text(path: str | Path, size: int = 2048) -> str:
    """The last ``size`` bytes of ``path`` as text ("" when unreadable)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - size))
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def line_error(path: str | Path, number: int, message: str) -> ConfigError:
    """``<path>: line <number>: <message>`` as a ConfigError."""
    return ConfigError(message, source=str(path), field=f"line {number}")


def number(path: str | Path, line: Line, token: str, what: str) -> float:
    """``token`` as a finite float, else an error saying ``what`` was expected."""
    try:
        value = float(token)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise line_error(path, line.number, f"got {token!r}; expected {what}")
    return value


def two_numbers(path: str | Path, line: Line, first: str, second: str,
                expected: str) -> tuple[float, float]:
    """The two non-negative numbers of a ``first second`` line (e.g. a time and a rate),
    else an error naming the line; ``expected`` describes the line's two columns."""
    tokens = line.text.split()
    if len(tokens) != 2:
        raise line_error(path, line.number, f"got {len(tokens)} column(s) in {line.text!r}; "
                                            f"expected 2: {expected}")
    values = []
    for token, what in zip(tokens, (first, second)):
        value = number(path, line, token, f"{what} >= 0")
        if value < 0:
            raise line_error(path, line.number, f"got negative {what} {token!r}; "
                                                f"expected {what} >= 0")
        values.append(value)
    return values[0], values[1]


def is_number(token: str) -> bool:
    """Whether ``token`` reads as a finite float."""
    try:
        return math.isfinite(float(token))
    except ValueError:
        return False
