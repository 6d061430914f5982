"""A placement: which device hosts each block of the model.

A :class:`Placement` is immutable. Backends execute its compiled form, one
:class:`LayerPlan` per layer: the devices hosting the layer's attention blocks (with how
many blocks each), the proj device and the ffn device.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property

from testbed.errors import ConfigError
from testbed.model.blocks import Block, blocks_of
from testbed.model.spec import ModelSpec


class PlacementError(ConfigError):
    """A placement that is incomplete or names a device that does not exist."""


@dataclass(frozen=True)
class LayerPlan:
    """Where one layer runs: ``attn_hosts`` is ((device, n_attention_blocks), ...)."""

    layer: int
    attn_hosts: tuple[tuple[str, int], ...]
    proj: str
    ffn: str


class Placement(Mapping[Block, str]):
    """Block -> device name, for every block of one model."""

    __slots__ = ("model", "_devices", "__dict__")

    def __init__(self, model: ModelSpec, assignment: Mapping[Block, str] | Iterable[str]):
        blocks = blocks_of(model)
        if isinstance(assignment, Mapping):
            missing = [b.id for b in blocks if b not in assignment]
            if missing:
                shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
                raise PlacementError(f"{len(missing)} block(s) have no device: {shown}",
                                     field="placement")
            known = set(blocks)
            extra = [str(b) for b in assignment if b not in known]
            if extra:
                raise PlacementError(f"got blocks that {model.name} does not have: "
                                     f"{', '.join(extra[:5])}", field="placement")
            devices = tuple(assignment[b] for b in blocks)
        else:
            devices = tuple(assignment)
            if len(devices) != len(blocks):
                raise PlacementError(f"got {len(devices)} devices for {len(blocks)} blocks",
                                     field="placement")
        self.model = model
        self._devices = devices

    # Mapping interface -------------------------------------------------------------
    def __getitem__(self, block: Block) -> str:
        return self._index[block]

    def __iter__(self) -> Iterator[Block]:
        return iter(blocks_of(self.model))

    def __len__(self) -> int:
        return len(self._devices)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Placement):
            return NotImplemented
        return self.model == other.model and self._devices == other._devices

    def __hash__(self) -> int:
        return hash((self.model, self._devices))

    def __repr__(self) -> str:
        counts = ", ".join(f"{d}: {n}" for d, n in self.block_counts().items())
        return f"Placement({self.model.name}; {counts})"

    # Views ----------------------------------------------------------------------------
    @property
    def devices(self) -> tuple[str, ...]:
        """Device of every block, in the order of :func:`blocks_of`."""
        return self._devices

    @cached_property
    def _index(self) -> dict[Block, str]:
        return dict(zip(blocks_of(self.model), self._devices))

    def device_of(self, block: Block) -> str:
        return self._index[block]

    def blocks_on(self, device: str) -> list[Block]:
        return [b for b, d in zip(blocks_of(self.model), self._devices) if d == device]

    def block_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for d in self._devices:
            counts[d] = counts.get(d, 0) + 1
        return counts

    def kind_counts(self) -> dict[str, dict[str, int]]:
        """device -> {kind: number of blocks of that kind}."""
        counts: dict[str, dict[str, int]] = {}
        for block, device in zip(blocks_of(self.model), self._devices):
            per = counts.setdefault(device, {"attn": 0, "proj": 0, "ffn": 0})
            per[block.kind] += 1
        return counts

    def moved(self, previous: "Placement | None") -> list[tuple[Block, str, str]]:
        """(block, old device, new device) for every block whose device changed."""
        if previous is None:
            return []
        return [(b, old, new) for b, old, new in
                zip(blocks_of(self.model), previous._devices, self._devices) if old != new]

    def with_moves(self, moves: Mapping[Block, str]) -> "Placement":
        return Placement(self.model, {**self._index, **moves})

    def as_ids(self) -> dict[str, str]:
        return {b.id: d for b, d in zip(blocks_of(self.model), self._devices)}

    @cached_property
    def layers(self) -> tuple[LayerPlan, ...]:
        """The compiled per-layer plan that backends execute."""
        plans = []
        per_layer = self.model.attn_blocks_per_layer + 2
        for layer in range(self.model.n_layers):
            chunk = self._devices[layer * per_layer:(layer + 1) * per_layer]
            hosts: dict[str, int] = {}
            for device in chunk[:-2]:
                hosts[device] = hosts.get(device, 0) + 1
            plans.append(LayerPlan(layer, tuple(hosts.items()), chunk[-2], chunk[-1]))
        return tuple(plans)

    def check_devices(self, allowed: Iterable[str], *, source: str | None = None) -> None:
        """Raise :class:`PlacementError` if any block sits on a device not in ``allowed``."""
        allowed = set(allowed)
        for block, device in zip(blocks_of(self.model), self._devices):
            if device not in allowed:
                raise PlacementError(
                    f"got device {device!r} for block {block.id}; expected one of "
                    f"{', '.join(sorted(allowed))}", source=source, field="placement",
                    value=device)
