"""One request served by the cluster: when it arrives, how long its prompt and answer are."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestSpec:
    """Request ``request`` arrives at ``arrival_s`` (s) with a prompt of ``prompt_tokens``
    and wants ``output_tokens`` tokens."""

    request: int
    arrival_s: float
    prompt_tokens: int
    output_tokens: int

    def __post_init__(self):
        if not (math.isfinite(self.arrival_s) and self.arrival_s >= 0):
            raise ValueError(f"request {self.request}: arrival {self.arrival_s!r} s; "
                             "expected a finite time >= 0")
        if self.prompt_tokens < 1 or self.output_tokens < 1:
            raise ValueError(f"request {self.request}: prompt and output tokens must be >= 1")
