"""A one-line progress bar for sweeps (on stderr): runs done, failures, elapsed time, ETA.

The line is redrawn in place with a carriage return; no dependency needed. The ETA is
the mean time per finished run so far (wall-clock, so it already accounts for parallel
workers) times the runs left.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO


def format_duration(seconds: float) -> str:
    """``seconds`` as ``M:SS`` (or ``H:MM:SS`` from an hour on)."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Counts finished runs out of ``total`` and redraws one line on ``stream``."""

    def __init__(self, total: int, *, stream: TextIO | None = None, width: int = 24,
                 clock: Callable[[], float] = time.monotonic):
        self.total = total
        self.done = 0
        self.failed = 0
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.clock = clock
        self.started = clock()
        self._shown = 0   # length of the line on screen, to blank a longer previous one
        if total:
            self._draw()

    def line(self) -> str:
        """The progress line, e.g. ``[######------]  3/8 runs, 1 failed, 0:12 elapsed,
        ETA 0:20``."""
        filled = self.width * self.done // self.total if self.total else self.width
        bar = "#" * filled + "-" * (self.width - filled)
        elapsed = self.clock() - self.started
        eta = (format_duration(elapsed / self.done * (self.total - self.done))
               if self.done else "--")
        digits = len(str(self.total))
        return (f"[{bar}] {self.done:>{digits}}/{self.total} runs, {self.failed} failed, "
                f"{format_duration(elapsed)} elapsed, ETA {eta}")

    def update(self, *, failed: bool = False) -> None:
        """One more run finished (``failed``: it recorded an error or was lost)."""
        self.done += 1
        self.failed += bool(failed)
        self._draw()

    def close(self) -> None:
        """End the line (once something was drawn)."""
        if self._shown:
            print(file=self.stream, flush=True)
            self._shown = 0

    def _draw(self) -> None:
        text = self.line()
        print("\r" + text.ljust(self._shown), end="", file=self.stream, flush=True)
        self._shown = len(text)
