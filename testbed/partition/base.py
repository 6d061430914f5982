"""The partitioner interface: ``decide(observation) -> placement``, registered by name.

A partitioner is constructed once per run with its seed and its options, then asked for
a placement at every decision. It must return a complete :class:`Placement` that uses
only ``obs.candidates`` and fits each device's memory whenever that is possible, or raise
:class:`Infeasible` saying why; it must never return a partial placement.

Adding one means writing one file::

    @PARTITIONERS.register("mine")
    class Mine(Partitioner):
        def decide(self, obs):
            ...
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import Iterable

import numpy as np

from testbed.errors import ConfigError
from testbed.model.blocks import ATTN, FFN, PROJ, Block, BlockKind
from testbed.plan.observation import Observation
from testbed.plan.placement import Placement
from testbed.registry import Registry

PARTITIONERS: Registry[type["Partitioner"]] = Registry("partitioner")


class Infeasible(Exception):
    """No placement fits: the message says which block and which resource."""


class Partitioner(abc.ABC):
    """Base class. ``seed`` feeds ``self.rng``; options come as keyword arguments."""

    name: str = ""
    #: A note on the last decision, recorded with it (e.g. "not proven optimal").
    last_note: str = ""
    #: The dataflows whose delay this partitioner's own estimates follow (None: any; it
    #: then estimates with :func:`~testbed.plan.delay.estimate_token_delay`, which follows
    #: the observation's dataflow).
    dataflows: tuple[str, ...] | None = None
    #: False if it places proj and ffn whole only (a model cut into shards is refused).
    places_shards: bool = True

    def __init__(self, seed: int | np.random.SeedSequence | None = None, **options):
        if options:
            accepted = [p for p in inspect.signature(type(self).__init__).parameters
                        if p not in ("self", "seed", "options", "greedy_options")]
            raise ConfigError(f"got unknown option(s) {', '.join(sorted(options))} for "
                              f"partitioner {self.name!r}; expected "
                              f"{', '.join(accepted) if accepted else 'no options'}")
        self.rng = np.random.default_rng(seed)

    @abc.abstractmethod
    def decide(self, obs: Observation) -> Placement:
        """The placement to use from the next token on."""


class MemoryBook:
    """Memory left for blocks on each device during one decision (bytes)."""

    def __init__(self, obs: Observation, devices: Iterable[str] | None = None):
        self.obs = obs
        names = obs.candidates if devices is None else tuple(devices)
        self.free = {name: obs.device(name).block_memory_bytes for name in names}
        self._need: dict[str, float] = {kind: obs.memory_bytes(kind) for kind in BlockKind}

    def need(self, block: Block | str) -> float:
        """Bytes one block (or one block of a kind: ``ATTN`` or ``"attn"``) needs."""
        return self._need[block if isinstance(block, str) else block.kind]

    def fits(self, device: str, block: Block | str, count: int = 1) -> bool:
        return self.free[device] >= count * self.need(block)

    def take(self, device: str, block: Block | str, count: int = 1) -> None:
        self.free[device] -= count * self.need(block)

    def total_need(self) -> float:
        model = self.obs.model
        per_layer = (model.attn_blocks_per_layer * self._need[ATTN]
                     + model.proj_shards * self._need[PROJ]
                     + model.ffn_shards * self._need[FFN])
        return per_layer * model.n_layers


def describe_partitioners() -> list[tuple[str, str, list[tuple[str, object]]]]:
    """Each registered partitioner: (name, first paragraph of its docstring, [(option,
    default)]); an option without a default shows ``required``."""
    import testbed.partition  # noqa: F401  (registers the built-in partitioners)

    out = []
    for name in PARTITIONERS.names():
        cls = PARTITIONERS.get(name)
        doc = [" ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())]
        options = [(p.name, "required" if p.default is inspect.Parameter.empty else p.default)
                   for p in inspect.signature(cls.__init__).parameters.values()
                   if p.name not in ("self", "seed") and
                   p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
        out.append((name, doc[0] if doc else "", options))
    return out


def make_partitioner(spec: str | dict, seed: int | np.random.SeedSequence | None = None,
                     *, source: str | None = None, field: str | None = None) -> Partitioner:
    """Build a partitioner from ``"name"`` or ``{"name": ..., **options}``."""
    import testbed.partition  # noqa: F401  (registers the built-in partitioners)

    if isinstance(spec, str):
        name, options = spec, {}
    elif isinstance(spec, dict) and isinstance(spec.get("name"), str):
        options = {k: v for k, v in spec.items() if k != "name"}
        name = spec["name"]
    else:
        raise ConfigError(f"got {spec!r}; expected a partitioner name or a mapping with 'name'",
                          source=source, field=field, value=spec)
    cls = PARTITIONERS.get(name, source=source, field=field)
    try:
        return cls(seed=seed, **options)
    except ConfigError as error:
        raise error.located(source, field) from None
    except TypeError as error:
        raise ConfigError(f"bad options for partitioner {name!r}: {error}", source=source,
                          field=field, value=options) from None
