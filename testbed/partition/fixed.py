"""``fixed``: a placement written in the scenario, never changed.

Rules map block patterns to devices, applied in order, later rules overriding earlier
ones: ``{"*": "laptop", "L0-15": "jetson", "L3.attn2": "phone", "L4-7.ffn": "nuc"}``.
A pattern is ``*`` (every block), ``L<a>`` or ``L<a>-<b>`` (whole layers), optionally
followed by ``.attn``, ``.proj``, ``.ffn``, ``.attn<i>`` or, for a model cut into shards,
``.proj<i>`` / ``.ffn<i>``.

The placement never changes: if one of its devices cannot host blocks now (down, or at
100 % background load), the decision is :class:`Infeasible`. Memory is not checked: a
placement that overflows runs, and the engine records the out-of-memory events.
"""

from __future__ import annotations

import re

from testbed.errors import ConfigError
from testbed.model.blocks import Block
from testbed.partition.base import PARTITIONERS, Infeasible, Partitioner
from testbed.plan.observation import Observation
from testbed.plan.placement import Placement

_PATTERN = re.compile(r"L(\d+)(?:-(\d+))?(?:\.(attn|proj|ffn)(\d+)?)?")
_EXPECTED = ("'*', 'L<a>', 'L<a>-<b>', optionally with '.attn', '.attn<i>', '.proj', "
             "'.proj<i>', '.ffn' or '.ffn<i>'")


def _matcher(pattern: str):
    if pattern == "*":
        return lambda block: True
    match = _PATTERN.fullmatch(pattern) if isinstance(pattern, str) else None
    if match is None:
        raise ConfigError(f"got block pattern {pattern!r}; expected {_EXPECTED}",
                          field="placement", value=pattern)
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) is not None else first
    kind, index = match.group(3), match.group(4)

    def matches(block: Block) -> bool:
        return (first <= block.layer <= last and (kind is None or block.kind == kind)
                and (index is None or block.index == int(index)))
    return matches


@PARTITIONERS.register("fixed")
class Fixed(Partitioner):
    """The placement given by ``placement`` rules (pattern -> device)."""

    name = "fixed"

    def __init__(self, seed=None, placement: dict[str, str] | None = None):
        super().__init__(seed)
        if not isinstance(placement, dict) or not placement:
            raise ConfigError("the fixed partitioner needs 'placement': a mapping of block "
                              "patterns to devices", field="placement", value=placement)
        self.rules = [(_matcher(p), p, d) for p, d in placement.items()]

    def decide(self, obs: Observation) -> Placement:
        placement = obs.placement if obs.placement is not None else self._placement(obs)
        unusable = sorted(set(placement.devices) - set(obs.candidates))
        if unusable:
            raise Infeasible(f"the fixed placement uses {', '.join(unusable)}, which cannot "
                             "host blocks now (down, at 100 % background load, or the "
                             "controller)")
        return placement

    def _placement(self, obs: Observation) -> Placement:
        known = {d.name for d in obs.devices}
        assignment: dict[Block, str] = {}
        for matches, pattern, device in self.rules:
            if device not in known:
                raise ConfigError(f"got device {device!r} for {pattern!r}; expected one of "
                                  f"{', '.join(sorted(known))}", field=f"placement.{pattern}",
                                  value=device)
            hit = [block for block in obs.blocks if matches(block)]
            if not hit:
                raise ConfigError(f"got block pattern {pattern!r}, which matches no block of "
                                  f"{obs.model.name} ({obs.model.n_layers} layers, "
                                  f"{obs.model.attn_blocks_per_layer} attention blocks each)",
                                  field=f"placement.{pattern}", value=pattern)
            for block in hit:
                assignment[block] = device
        return Placement(obs.model, assignment)
