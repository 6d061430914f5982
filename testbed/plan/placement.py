"""A placement: which device hosts each block of the model.

A :class:`Placement` is immutable. Dataflows read it layer by layer
(:attr:`Placement.layers`): the device of each attention block, proj shard and ffn shard,
and the hosts of each with how many blocks they hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property

from testbed.errors import ConfigError
from testbed.model.blocks import Block, BlockKind, blocks_of
from testbed.model.spec import ModelSpec


class PlacementError(ConfigError):
    """A placement that is incomplete or names a device that does not exist."""


@dataclass(frozen=True)
class LayerPlan:
    """Where one layer runs: ``attn_hosts`` is ((device, n_attention_blocks), ...) in order
    of first appearance; ``proj`` / ``ffn`` the device of the first (or only) shard;
    ``attn_devices`` / ``proj_devices`` / ``ffn_devices`` the device of every attention
    block and shard, in index order."""

    layer: int
    attn_hosts: tuple[tuple[str, int], ...]
    proj: str
    ffn: str
    attn_devices: tuple[str, ...] = ()
    proj_devices: tuple[str, ...] = ()
    ffn_devices: tuple[str, ...] = ()

    @property
    def proj_hosts(self) -> tuple[tuple[str, int], ...]:
        """((device, proj shards), ...) in order of first appearance."""
        return _hosts(self.proj_devices)

    @property
    def ffn_hosts(self) -> tuple[tuple[str, int], ...]:
        """((device, ffn shards), ...) in order of first appearance."""
        return _hosts(self.ffn_devices)

    @property
    def devices(self) -> tuple[str, ...]:
        """Every device hosting a block of the layer, in order of first appearance."""
        return tuple(dict.fromkeys(self.attn_devices + self.proj_devices + self.ffn_devices))


def _hosts(devices: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    hosts: dict[str, int] = {}
    for device in devices:
        hosts[device] = hosts.get(device, 0) + 1
    return tuple(hosts.items())


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
        """device -> {kind: number of blocks (or shards) of that kind}."""
        counts: dict[str, dict[str, int]] = {}
        for block, device in zip(blocks_of(self.model), self._devices):
            per = counts.setdefault(device, dict.fromkeys(BlockKind, 0))
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
        """Per layer: where its attention blocks and proj and ffn shards are."""
        plans = []
        model = self.model
        n_attn, n_proj = model.attn_blocks_per_layer, model.proj_shards
        per_layer = model.blocks_per_layer
        for layer in range(model.n_layers):
            chunk = self._devices[layer * per_layer:(layer + 1) * per_layer]
            attn, proj, ffn = chunk[:n_attn], chunk[n_attn:n_attn + n_proj], \
                chunk[n_attn + n_proj:]
            plans.append(LayerPlan(layer, _hosts(attn), proj[0], ffn[0], attn, proj, ffn))
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
