"""One registry pattern for stages, models and data sources (timm's `register_model`, generalised).

An unknown name is a `UserError` that lists the known names, so a typo in a recipe is
answered with the valid choices.
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from pipeline.core.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps a name used in recipes to an object (a factory, a stage, a loader)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = item
            return item

        return add

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UserError(f"unknown {self.kind} '{name}'; known: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
