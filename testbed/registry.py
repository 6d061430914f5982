"""Registries of plugins by name (partitioners, cost presets, topologies, trace formats).

Adding a plugin means writing one file that decorates its class or function with
``@REGISTRY.register("name")``. Registering a name twice is an error; asking for an
unknown name lists the names that exist.
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from testbed.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> plugin mapping for one kind of plugin."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = item
            return item
        return decorator

    def get(self, name: str, *, source: str | None = None, field: str | None = None) -> T:
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise ConfigError(
                f"got unknown {self.kind} {name!r}; expected one of "
                f"{', '.join(sorted(self._items))}",
                source=source, field=field, value=name) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
