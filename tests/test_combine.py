"""Combining concurrent requests: each caller gets its own answer, groups form, failures stay apart."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from serving.combine import Combiner


class Recorder:
    """A slow ``process`` that squares numbers and records the groups it was given."""

    def __init__(self, delay_s: float = 0.005, fail_on: int | None = None) -> None:
        self.delay_s, self.fail_on = delay_s, fail_on
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
            time.sleep(self.delay_s)
            if self.fail_on is not None and self.fail_on in items:
                raise ValueError(f"item {self.fail_on} is bad")
            return [i * i for i in items]
        finally:
            with self._lock:
                self.running -= 1


def submit_all(combiner: Combiner, items: list[int], threads: int = 16) -> list[object]:
    def one(i: int) -> object:
        try:
            return combiner(i)
        except ValueError as err:
            return err

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, items))


def test_each_caller_gets_its_own_result_and_groups_form():
    process = Recorder()
    combiner = Combiner(process)
    results = submit_all(combiner, list(range(200)))
    assert results == [i * i for i in range(200)]
    assert sorted(i for group in process.groups for i in group) == list(range(200))  # each item once
    assert combiner.groups == len(process.groups) < 100  # concurrent callers shared calls
    assert max(len(g) for g in process.groups) > 1
    assert not process.overlap  # process never runs twice at once


def test_a_lone_request_is_processed_at_once():
    process = Recorder(delay_s=0)
    combiner = Combiner(process)
    assert combiner(7) == 49
    assert process.groups == [[7]]


def test_a_failing_item_fails_only_its_own_caller():
    process = Recorder(fail_on=13)
    combiner = Combiner(process)
    results = submit_all(combiner, list(range(60)))
    assert isinstance(results[13], ValueError) and "item 13" in str(results[13])
    assert [r for i, r in enumerate(results) if i != 13] == [i * i for i in range(60) if i != 13]
    assert [13] in process.groups  # the failing group was retried item by item


def test_groups_are_capped():
    process = Recorder()
    combiner = Combiner(process, max_group=3)
    assert submit_all(combiner, list(range(40))) == [i * i for i in range(40)]
    assert max(len(g) for g in process.groups) <= 3


def test_a_wrong_number_of_results_is_an_error():
    combiner = Combiner(lambda items: [])
    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        combiner(1)
    with pytest.raises(ValueError, match="at least 1"):
        Combiner(lambda items: items, max_group=0)


def test_an_error_not_of_one_item_fails_the_group_without_retries():
    calls: list[list[int]] = []
    started = threading.Barrier(2, timeout=5)

    def process(items: list[int]) -> list[int]:
        calls.append(list(items))
        if len(calls) == 1:
            started.wait()  # the first call holds the lead until the others queue behind it
            time.sleep(0.2)
            return list(items)
        raise OSError("audit store unavailable")

    combiner = Combiner(process, retry_alone=(ValueError,))
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
