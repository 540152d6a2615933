"""Combining concurrent requests: each caller gets its own answer, groups form, failures stay apart."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from serving.scoring import Combiner


def until(condition: Callable[[], bool], timeout_s: float = 30) -> None:
    """Wait for ``condition`` to hold (a state to reach, not a time to pass); fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        threading.Event().wait(0.001)


class Recorder:
    """A ``process`` that squares numbers and records the groups it was given.

    With ``hold_for``, its first call waits until that many further items are queued behind it, so
    that the next groups form whatever the machine's speed.
    """

    def __init__(self, *, fail_on: int | None = None, hold_for: int = 0) -> None:
        self.fail_on, self.hold_for = fail_on, hold_for
        self.combiner: Combiner[int, int] | None = None
        self.groups: list[list[int]] = []
        self.running = 0
        self.overlap = False
        self._lock = threading.Lock()

    def __call__(self, items: list[int]) -> list[int]:
        with self._lock:
            self.running += 1
            self.overlap |= self.running > 1
        try:
            self.groups.append(list(items))
            if len(self.groups) == 1 and self.hold_for and self.combiner is not None:
                combiner = self.combiner
                until(lambda: combiner.waiting >= self.hold_for)
            if self.fail_on is not None and self.fail_on in items:
                raise ValueError(f"item {self.fail_on} is bad")
            return [i * i for i in items]
        finally:
            with self._lock:
                self.running -= 1


def submit_all(combiner: Combiner[int, int], items: list[int], threads: int = 16) -> list[object]:
    def one(i: int) -> object:
        try:
            return combiner(i)
        except ValueError as err:
            return err

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, items))


def combined(process: Recorder, *, max_group: int = 64) -> Combiner[int, int]:
    process.combiner = Combiner(process, max_group=max_group)
    return process.combiner


def test_each_caller_gets_its_own_result_and_groups_form() -> None:
    process = Recorder(hold_for=15)
    combiner = combined(process)
    results = submit_all(combiner, list(range(200)))
    assert results == [i * i for i in range(200)]
    assert sorted(i for group in process.groups for i in group) == list(range(200))  # each item once
    assert combiner.groups == len(process.groups)
    assert len(process.groups[1]) >= 15  # every caller that queued behind the first call shared the next one
    assert not process.overlap  # process never runs twice at once


def test_a_lone_request_is_processed_at_once() -> None:
    process = Recorder()
    combiner = combined(process)
    assert combiner(7) == 49
    assert process.groups == [[7]]


def test_a_failing_item_fails_only_its_own_caller() -> None:
    process = Recorder(fail_on=13, hold_for=15)
    combiner = combined(process)
    results = submit_all(combiner, list(range(60)))
    assert isinstance(results[13], ValueError) and "item 13" in str(results[13])
    assert [r for i, r in enumerate(results) if i != 13] == [i * i for i in range(60) if i != 13]
    assert [13] in process.groups  # the failing group was retried item by item


def test_groups_are_capped() -> None:
    process = Recorder(hold_for=10)
    combiner = combined(process, max_group=3)
    assert submit_all(combiner, list(range(40))) == [i * i for i in range(40)]
    assert max(len(g) for g in process.groups) <= 3


def test_a_wrong_number_of_results_is_an_error() -> None:
    combiner: Combiner[int, int] = Combiner(lambda items: [])
    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        combiner(1)
    with pytest.raises(ValueError, match="at least 1"):
        Combiner(lambda items: items, max_group=0)


def test_an_error_not_of_one_item_fails_the_group_without_retries() -> None:
    calls: list[list[int]] = []
    started = threading.Barrier(2, timeout=5)

    def process(items: list[int]) -> list[int]:
        calls.append(list(items))
        if len(calls) == 1:
            started.wait()
            until(lambda: combiner.waiting == 7)  # the first call holds the lead until the others queue
            return list(items)
        raise OSError("audit store unavailable")

    combiner: Combiner[int, int] = Combiner(process, retry_alone=(ValueError,))
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(combiner, 0)
        started.wait()
        rest = [pool.submit(combiner, i) for i in range(1, 8)]
        assert first.result() == 0
        errors = [f.exception() for f in rest]
    assert sorted(i for call in calls[1:] for i in call) == list(range(1, 8))  # each once: no retry alone
    assert sum(isinstance(e, OSError) for e in errors) == len(calls) - 1  # one per failed group
    assert all(isinstance(e, (OSError, RuntimeError)) for e in errors)
    assert all(isinstance(e.__cause__, OSError) for e in errors if isinstance(e, RuntimeError))
