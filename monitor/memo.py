"""A bounded memory of a pure function's answers. Contains no business logic."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Memo(dict[K, V]):
    """`memo[key]` is `compute(key)`, worked out at first sight and remembered.

    Past `limit` entries everything is forgotten at once: a service that runs for months sees
    an unbounded stream of words, and an occasional cold start costs less than bookkeeping on
    every hit (a hit is a plain dict lookup, in C).
    """

    def __init__(self, compute: Callable[[K], V], limit: int) -> None:
        super().__init__()
        self._compute = compute
        self._limit = limit

    def __missing__(self, key: K) -> V:
        if len(self) >= self._limit:
            self.clear()
        value = self[key] = self._compute(key)
        return value
