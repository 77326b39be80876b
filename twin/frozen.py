"""An immutable, picklable mapping used inside the twin's frozen state objects."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NoReturn, TypeVar

__all__ = ["FrozenDict"]

K = TypeVar("K")
V = TypeVar("V")


class FrozenDict(dict[K, V]):
    """A ``dict`` that refuses mutation; update by copying with :meth:`set` or :meth:`merge`.

    It stays a real ``dict`` (fast lookups, JSON- and pickle-friendly), so snapshots can be
    shipped to simulation worker processes cheaply.

    >>> d = FrozenDict({"a": 1})
    >>> d.set("b", 2)
    {'a': 1, 'b': 2}
    >>> d["c"] = 3
    Traceback (most recent call last):
    ...
    TypeError: FrozenDict is immutable
    """

    __slots__ = ()

    def _readonly(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("FrozenDict is immutable")

    __setitem__ = _readonly
    __delitem__ = _readonly
    clear = _readonly
    pop = _readonly
    popitem = _readonly
    setdefault = _readonly
    update = _readonly
    __ior__ = _readonly

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))

    def __repr__(self) -> str:
        return dict.__repr__(self)

    def set(self, key: K, value: V) -> FrozenDict[K, V]:
        """Return a copy with ``key`` set to ``value``."""
        new = dict(self)
        new[key] = value
        return FrozenDict(new)

    def merge(self, other: Mapping[K, V] | Iterable[tuple[K, V]]) -> FrozenDict[K, V]:
        """Return a copy updated with ``other``."""
        new = dict(self)
        new.update(other)
        return FrozenDict(new)
