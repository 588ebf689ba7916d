"""A bounded, thread-safe memo of a pure function of a text.

The lexicon tier reads one text several times: the sentiment scores its clauses, the theme rules
locate their mentions in the same clauses, the learned heads read them again for polarity and
evidence. Each of those objects asks its memo instead of recomputing: the work is done once per
text. The memo keeps the most recent results up to `max_chars` characters of keys (a batch of
long texts cannot hold gigabytes) and forgets the oldest first: a text is asked for again within
the batch that first asked, so recency of insertion is all that matters, and a hit is one dict
lookup (no reordering). It lives on the object built once that owns the function, never in a
module global.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TextMemo(Generic[K, V]):
    """`memo(key)` = `fn(key)`, computed once while it stays among the results kept.
    `size(key)` is what a result costs (default: the length of the text)."""

    def __init__(
        self,
        fn: Callable[[K], V],
        max_chars: int = 1_000_000,
        size: Callable[[K], int] = len,  # type: ignore[assignment]
    ) -> None:
        self._fn = fn
        self._size = size
        self.max_chars = max_chars
        # Oldest first. An OrderedDict, not a dict: a dict's `next(iter(...))` walks past the
        # slots of every key evicted before it (until the next resize), which made the eviction
        # of a full memo a twentieth of the fast tier's time.
        self._data: OrderedDict[K, tuple[int, V]] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()  # writers only: a read is one atomic dict lookup

    def __call__(self, key: K) -> V:
        hit = self._data.get(key)
        if hit is not None:
            return hit[1]
        value = self._fn(key)  # outside the lock: threads never wait on each other's work
        cost = max(1, self._size(key))
        if cost <= self.max_chars:
            with self._lock:
                if key not in self._data:
                    self._data[key] = (cost, value)
                    self._chars += cost
                while self._chars > self.max_chars:
                    self._chars -= self._data.popitem(last=False)[1][0]
        return value

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: K) -> bool:
        return key in self._data

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._chars = 0
