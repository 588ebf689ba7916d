"""Batches analysed two at a time, results in order: one batch's Python work overlaps the
other's encoder pass.

The encoder (OpenVINO, ONNX Runtime, torch) releases the GIL while it runs and uses every core
it is given, but about half of an analysis is single-threaded Python (text preparation, theme
rules, pooling, language, severity) during which the second core sits idle. With two batches
in flight, one batch's Python runs while the other's encoder pass runs; the encoder session
serialises its own calls, so the two passes never run at once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def overlapped(
    fn: Callable[[T], R], items: Iterable[T], in_flight: int = 2
) -> Iterator[tuple[T, R]]:
    """(item, fn(item)) for each item, in the order given, with up to `in_flight` calls running
    at once on worker threads (1: every call on the caller's thread, one after the other).

    `items` is read lazily, at most `in_flight` ahead of the results taken: a stream of batches
    never sits in memory. An exception of `fn` is raised when its result is reached; calls
    already started finish first (their results are dropped)."""
    if in_flight <= 1:
        for item in items:
            yield item, fn(item)
        return
    window: deque[tuple[T, Future[R]]] = deque()
    with ThreadPoolExecutor(in_flight, thread_name_prefix="verbatim-analyze") as pool:
        try:
            for item in items:
                window.append((item, pool.submit(fn, item)))
                if len(window) >= in_flight:
                    first, future = window.popleft()
                    yield first, future.result()
            while window:
                first, future = window.popleft()
                yield first, future.result()
        finally:
            for _, future in window:  # a consumer that stops early: queued calls never start
                future.cancel()


def analysis_in_flight(analyzer: object, configured: int) -> int:
    """How many batches to analyse at once: `configured` when the analyzer runs an encoder
    (whose pass releases the GIL), 1 otherwise (the lexicon tier is all Python: two threads
    would only take turns)."""
    return configured if getattr(analyzer, "one_pass", False) else 1
