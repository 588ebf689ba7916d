"""core.overlap: batches analysed two at a time, results in the order given."""

from __future__ import annotations

import threading
import time

import pytest

from core.overlap import analysis_in_flight, overlapped


def test_results_keep_the_order_of_the_items_whatever_finishes_first() -> None:
    def slow_first(n: int) -> int:
        time.sleep(0.05 if n % 2 == 0 else 0.0)  # even items finish after the next odd one
        return n * n

    got = list(overlapped(slow_first, range(7), in_flight=2))
    assert got == [(n, n * n) for n in range(7)]


def test_two_calls_run_at_once() -> None:
    # Each call waits for another one to be running: one at a time would time out.
    both = threading.Barrier(2, timeout=5)

    def meet(n: int) -> int:
        both.wait()
        return n

    assert [r for _, r in overlapped(meet, range(4), in_flight=2)] == [0, 1, 2, 3]
    with pytest.raises(threading.BrokenBarrierError):
        lonely = threading.Barrier(2, timeout=0.2)
        list(overlapped(lambda n: lonely.wait(), range(2), in_flight=1))


def test_items_are_read_at_most_in_flight_ahead_of_the_results_taken() -> None:
    read: list[int] = []

    def items():
        for n in range(10):
            read.append(n)
            yield n

    stream = overlapped(lambda n: n, items(), in_flight=2)
    assert next(stream) == (0, 0)
    assert len(read) == 2  # the batch returned and the one being analysed: never the stream
    stream.close()


def test_an_error_is_raised_at_its_item_after_the_earlier_results() -> None:
    def fail_on_three(n: int) -> int:
        if n == 3:
            raise ValueError("bad batch")
        return n

    got: list[int] = []
    with pytest.raises(ValueError, match="bad batch"):
        for _, r in overlapped(fail_on_three, range(6), in_flight=2):
            got.append(r)
    assert got == [0, 1, 2]


def test_one_in_flight_runs_on_the_callers_thread() -> None:
    caller = threading.get_ident()
    assert [r for _, r in overlapped(lambda _: threading.get_ident(), range(3), 1)] == [caller] * 3


def test_only_an_encoder_analyzer_gets_more_than_one_batch_at_once() -> None:
    class Encoder:
        one_pass = True

    class Lexicon:
        one_pass = False

    assert analysis_in_flight(Encoder(), 2) == 2
    assert analysis_in_flight(Lexicon(), 2) == 1
    assert analysis_in_flight(object(), 3) == 1
