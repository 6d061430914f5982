"""The dataflow interface: ``build(placement, controller) -> GraphTemplate``, by name.

A dataflow decides which device sends what to whom, in which order, for one forward pass
of a placement. It sees only the placement (which device holds each attention block, proj
shard and ffn shard) and the controller (where the request starts and the LM head runs);
the numbers come later, when the template is bound to a step's work. Templates are cached
per placement, so a backend asks for one at every step at no cost while the placement
stays.
"""

from __future__ import annotations

import abc
import inspect
from collections import OrderedDict

from testbed.errors import ConfigError
from testbed.plan.graph import GraphTemplate
from testbed.plan.placement import Placement, PlacementError
from testbed.registry import Registry

DATAFLOWS: Registry[type["Dataflow"]] = Registry("dataflow")
DEFAULT_DATAFLOW = "head_level"

_CACHED_TEMPLATES = 8


class Dataflow(abc.ABC):
    """Base class; options come as keyword arguments and are checked by the subclass."""

    name: str = ""

    def __init__(self):
        self._templates: OrderedDict[tuple, GraphTemplate] = OrderedDict()

    @abc.abstractmethod
    def build(self, placement: Placement, controller: str) -> GraphTemplate:
        """The pass of ``placement`` with the request starting on ``controller``; raise
        :class:`PlacementError` if the placement does not fit this dataflow."""

    def template(self, placement: Placement, controller: str) -> GraphTemplate:
        """:meth:`build`, cached for the last few placements."""
        key = (placement, controller)
        template = self._templates.get(key)
        if template is None:
            template = self.build(placement, controller)
            self._templates[key] = template
            if len(self._templates) > _CACHED_TEMPLATES:
                self._templates.popitem(last=False)
        else:
            self._templates.move_to_end(key)
        return template

    def moving_part(self, kind: str) -> str:
        """The component whose memory moves with a block of ``kind`` when it migrates
        (the whole block, unless the dataflow keeps part of it elsewhere)."""
        return kind

    def check(self, placement: Placement, controller: str) -> None:
        """Raise :class:`PlacementError` if ``placement`` cannot run under this dataflow."""
        self.template(placement, controller)

    @property
    def options(self) -> dict:
        """The options this dataflow was built with (for records and the resolved config)."""
        return {}

    def describe(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in self.options.items())
        return f"{self.name}({opts})" if opts else self.name

    def __repr__(self) -> str:
        return f"<dataflow {self.describe()}>"


def make_dataflow(spec: object = None, *, source: str | None = None,
                  field: str | None = None) -> Dataflow:
    """A dataflow from ``"name"``, ``{"name": ..., **options}`` or None (the default);
    anything else (e.g. an unchecked config value) is a ConfigError."""
    import testbed.dataflows  # noqa: F401  (registers the built-in dataflows)

    if isinstance(spec, Dataflow):
        return spec
    options: dict[str, object]
    if spec is None:
        name, options = DEFAULT_DATAFLOW, {}
    elif isinstance(spec, str):
        name, options = spec, {}
    elif isinstance(spec, dict) and isinstance(spec.get("name"), str):
        name, options = spec["name"], {k: v for k, v in spec.items() if k != "name"}
    else:
        raise ConfigError(f"got {spec!r}; expected a dataflow name or a mapping with 'name'",
                          source=source, field=field, value=spec)
    cls = DATAFLOWS.get(name, source=source, field=field)
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(f"got unknown option(s) {', '.join(unknown)} for dataflow {name!r}; "
                          f"expected {', '.join(accepted) if accepted else 'no options'}",
                          source=source, field=field, value=unknown)
    try:
        return cls(**options)
    except ConfigError as error:
        raise error.located(source, field) from None


def require(condition: bool, message: str) -> None:
    """Raise :class:`PlacementError` with ``message`` unless ``condition``."""
    if not condition:
        raise PlacementError(message, field="placement")
