"""Combine concurrent single-person requests into one scoring pass and one audit transaction.

Scoring one person costs about as much as scoring a handful (the fixed cost of the pipeline and
of two booster calls), and each audit transaction waits for one ``fsync``. When caseworkers'
requests arrive together, a worker thread that finds another group being scored waits for it,
and the next group takes every request that queued meanwhile: the requests share one pass
through :class:`~serving.scoring.Scorer` and one commit. A request that arrives alone is
processed at once, so nothing waits on a timer.

BentoML's own adaptive batching does not fit here: it batches calls of an endpoint that takes a
list, and each request's caller (its ``actor`` in the audit trail) would not travel with it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar, cast

T = TypeVar("T")
R = TypeVar("R")


class _Slot(Generic[R]):
    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = False
        self.result: R | None = None
        self.error: BaseException | None = None


class Combiner(Generic[T, R]):
    """Run ``process`` on groups of the items that threads submit concurrently.

    Parameters
    ----------
    process
        Takes a list of items and returns one result per item, in order. It is only ever run by
        one thread at a time.
    max_group
        The most items one call of ``process`` takes.
    retry_alone
        Errors that may belong to one item of a group (a request the models cannot score): when
        ``process`` raises one of them for a group of several items, each item is processed again
        on its own, so that one failing request cannot fail the requests that happened to share
        its group. Any other error (the audit store down) fails the whole group at once.

    The error of an item reaches the thread that submitted it.
    """

    def __init__(
        self,
        process: Callable[[list[T]], Sequence[R]],
        *,
        max_group: int = 64,
        retry_alone: tuple[type[Exception], ...] = (Exception,),
    ) -> None:
        if max_group < 1:
            raise ValueError(f"max_group must be at least 1, got {max_group}")
        self._process = process
        self._max_group = max_group
        self._retry_alone = retry_alone
        self._cv = threading.Condition()
        self._pending: list[tuple[T, _Slot[R]]] = []
        self._busy = False
        self.groups = 0  # calls of process so far (for tests and metrics)

    @property
    def waiting(self) -> int:
        """Items submitted and not yet taken into a group (for tests and metrics)."""
        with self._cv:
            return len(self._pending)

    def __call__(self, item: T) -> R:
        """Process ``item`` (with whatever else is waiting) and return its result."""
        slot: _Slot[R] = _Slot()
        with self._cv:
            self._pending.append((item, slot))
            while True:
                while self._busy and not slot.done:
                    self._cv.wait()
                if slot.done:
                    break
                self._busy = True  # lead: take the waiting items, own included once it is among them
                group = self._pending[: self._max_group]
                del self._pending[: self._max_group]
                self._cv.release()
                try:
                    self._run(group)
                finally:
                    self._cv.acquire()
                    self._busy = False
                    self._cv.notify_all()
        if slot.error is not None:
            raise slot.error
        return cast(R, slot.result)  # _run set it before marking the slot done, and no error came

    def _run(self, group: list[tuple[T, _Slot[R]]]) -> None:
        outcomes = self._outcomes(group)
        if outcomes is None:  # an error that may be one item's: each item again on its own
            for one in group:
                self._run([one])
            return
        with self._cv:
            for (_, slot), (result, error) in zip(group, outcomes, strict=True):
                slot.result, slot.error, slot.done = result, error, True
            self._cv.notify_all()  # their threads may return before the leader is done

    def _outcomes(self, group: list[tuple[T, _Slot[R]]]) -> list[tuple[R | None, BaseException | None]] | None:
        """(result, error) per item, or None to retry each item alone."""
        self.groups += 1
        try:
            results = list(self._process([item for item, _ in group]))
        except self._retry_alone as exc:
            return None if len(group) > 1 else [(None, exc)]
        except BaseException as exc:
            return _shared_failure(exc, len(group))
        if len(results) != len(group):
            return _shared_failure(
                RuntimeError(f"process returned {len(results)} results for {len(group)} items"), len(group)
            )
        return [(result, None) for result in results]


def _shared_failure(exc: BaseException, n: int) -> list[tuple[R | None, BaseException | None]]:
    """The group's error for its first caller; for the others, their own error caused by it."""
    others: list[tuple[R | None, BaseException | None]] = []
    for _ in range(n - 1):
        error = RuntimeError(f"the group this request was processed in failed: {exc!r}")
        error.__cause__ = exc
        others.append((None, error))
    return [(None, exc), *others]


def score_combiner(process: Callable[[list[T]], Sequence[R]]) -> Combiner[T, R]:
    """The combiner of ``/score`` requests: a group that fails for any reason (a model missing, the
    audit store refusing one record) is retried request by request, so one failing request never
    fails the others that happened to share its group; a failed group stored nothing (one audit
    transaction), so nothing is stored twice."""
    return Combiner(process, retry_alone=(Exception,))
