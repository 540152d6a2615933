"""Draw dated events: Poisson processes per type, revocation truncation, monthly points, grades."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.synthetic import _spec as spec
from features.synthetic._persons import People
from features.vocab import EventType

EVENT_CODES = {t: i for i, t in enumerate(EventType)}
WARNING_CODE = EVENT_CODES[EventType.WARNING]


@dataclass
class Events:
    """Column arrays of events; ``kind`` indexes ``list(EventType)``; days since 1970-01-01."""

    person: np.ndarray
    day: np.ndarray
    kind: np.ndarray
    value: np.ndarray

    def select(self, mask: np.ndarray) -> Events:
        return Events(self.person[mask], self.day[mask], self.kind[mask], self.value[mask])

    @staticmethod
    def concat(parts: list[Events]) -> Events:
        return Events(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("person", "day", "kind", "value")))

    def sorted(self) -> Events:
        order = np.lexsort((self.kind, self.day, self.person))
        return self.select(order)


def process_window(people: People, proc: spec.EventProcess) -> tuple[np.ndarray, np.ndarray]:
    """Days [lo, hi) in which a process can produce events for each person."""
    lo = people.start - spec.PRE_WINDOW_DAYS if proc.pre else people.start
    return lo, people.end


def draw_process_events(rng: np.random.Generator, people: People) -> Events:
    """Events of every Poisson process over its window (before any truncation)."""
    n, k = people.n, len(spec.PROCESSES)
    rates = spec.process_rates(people.z, people.flags["flag_drug_use"]) / spec.DAYS_PER_YEAR
    lo = np.empty((n, k), dtype=np.int64)
    span = np.empty((n, k), dtype=np.int64)
    for j, proc in enumerate(spec.PROCESSES):
        lo[:, j], hi = process_window(people, proc)
        span[:, j] = hi - lo[:, j]
    counts = rng.poisson(rates * span).ravel()
    cell = np.repeat(np.arange(n * k), counts)
    offsets = np.floor(rng.random(len(cell)) * span.ravel()[cell]).astype(np.int64)
    codes = np.array([EVENT_CODES[p.event_type] for p in spec.PROCESSES], dtype=np.int16)
    return Events(
        person=cell // k,
        day=lo.ravel()[cell] + offsets,
        kind=codes[cell % k],
        value=np.full(len(cell), np.nan, dtype=np.float32),
    )


def nth_warning_day(people: People, events: Events, nth: int = spec.REVOCATION_WARNINGS) -> np.ndarray:
    """Day of each person's ``nth`` warning (``inf`` if fewer)."""
    warn = events.select(events.kind == WARNING_CODE)
    order = np.lexsort((warn.day, warn.person))
    person, day = warn.person[order], warn.day[order]
    first = np.r_[True, person[1:] != person[:-1]]
    group_start = np.maximum.accumulate(np.where(first, np.arange(len(person)), 0))
    rank = np.arange(len(person)) - group_start
    out = np.full(people.n, np.inf)
    out[person[rank == nth - 1]] = day[rank == nth - 1]
    return out


def truncate(events: Events, stop: np.ndarray) -> Events:
    """Drop events dated after each person's ``stop`` day (revocation or end of follow-up)."""
    return events.select(events.day <= stop[events.person])


def points_and_grades(rng: np.random.Generator, people: People, events: Events, stop: np.ndarray) -> Events:
    """Monthly points for each whole month of the term before ``stop``, quarterly grades from them."""
    months = np.floor((np.minimum(people.end, stop) - people.start) / spec.DAYS_PER_MONTH)
    months = np.clip(months, 0, None).astype(np.int64)
    offset = np.r_[0, np.cumsum(months)[:-1]]
    total = int(months.sum())
    person = np.repeat(np.arange(people.n), months)
    month = np.arange(total) - offset[person]
    deduction = _monthly_deductions(people, events, months, offset, total)
    points = np.clip(np.round(spec.POINTS_BASE - deduction + spec.POINTS_NOISE * rng.standard_normal(total)), 0, 100)
    day = people.start[person] + np.round((month + 1) * spec.DAYS_PER_MONTH).astype(np.int64)
    monthly = Events(
        person, day, np.full(total, EVENT_CODES[EventType.MONTHLY_POINTS], np.int16), points.astype(np.float32)
    )
    return Events.concat([monthly, _quarterly_grades(rng, person, month, day, points)])


def _monthly_deductions(
    people: People, events: Events, months: np.ndarray, offset: np.ndarray, total: int
) -> np.ndarray:
    deduction_of = np.zeros(len(EventType), dtype=float)
    for event_type, points in spec.POINT_DEDUCTIONS.items():
        deduction_of[EVENT_CODES[event_type]] = points
    month = np.floor((events.day - people.start[events.person]) / spec.DAYS_PER_MONTH).astype(np.int64)
    ok = (month >= 0) & (month < months[events.person]) & (deduction_of[events.kind] > 0)
    flat = offset[events.person[ok]] + month[ok]
    return np.bincount(flat, weights=deduction_of[events.kind[ok]], minlength=total)


def _quarterly_grades(
    rng: np.random.Generator, person: np.ndarray, month: np.ndarray, day: np.ndarray, points: np.ndarray
) -> Events:
    """Grade each complete quarter (three monthly scores) on its mean score plus noise."""
    last_of_quarter = (month % 3) == 2
    idx = np.flatnonzero(last_of_quarter)
    mean = (points[idx] + points[idx - 1] + points[idx - 2]) / 3 + spec.GRADE_NOISE * rng.standard_normal(len(idx))
    kind = np.where(
        mean >= spec.GRADE_GOOD_FROM,
        EVENT_CODES[EventType.GRADE_GOOD],
        np.where(
            mean < spec.GRADE_UNQUALIFIED_BELOW,
            EVENT_CODES[EventType.GRADE_UNQUALIFIED],
            EVENT_CODES[EventType.GRADE_QUALIFIED],
        ),
    ).astype(np.int16)
    return Events(person[idx], day[idx], kind, np.full(len(idx), np.nan, dtype=np.float32))
