"""A bounded, thread-safe memo of a pure function of a text.

The lexicon tier reads one text several times: the sentiment scores its clauses, the theme rules
locate their mentions in the same clauses, the learned heads read them again for polarity and
evidence. Each of those objects asks its memo instead of recomputing: the work is done once per
text. The memo keeps the most recently used results up to `max_chars` characters of keys (a
batch of long texts cannot hold gigabytes), so it lives on the object built once that owns the
function, never in a module global.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from cachetools import LRUCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TextMemo(Generic[K, V]):
    """`memo(key)` = `fn(key)`, computed once while it stays among the most recently used
    results. `size(key)` is what a result costs (default: the length of the text)."""

    def __init__(
        self,
        fn: Callable[[K], V],
        max_chars: int = 1_000_000,
        size: Callable[[K], int] = len,  # type: ignore[assignment]
    ) -> None:
        self._fn = fn
        self._size = size
        self.max_chars = max_chars
        # Values are stored with their cost: cachetools sizes an entry by its value.
        self._cache: LRUCache[K, tuple[int, V]] = LRUCache(
            maxsize=max_chars, getsizeof=lambda item: item[0]
        )
        self._lock = threading.Lock()  # cachetools' caches are not thread-safe themselves

    def __call__(self, key: K) -> V:
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit[1]
        value = self._fn(key)  # outside the lock: threads never wait on each other's work
        cost = max(1, self._size(key))
        if cost <= self.max_chars:
            with self._lock:
                self._cache[key] = (cost, value)
        return value

    def __len__(self) -> int:
        return len(self._cache)

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()
