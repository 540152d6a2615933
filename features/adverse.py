"""Adverse facts: the edits of a person's record that must never lower their risk.

design.md, "Face validity": one more adverse fact never lowers a person's risk, at any stage, for
any model kind. This module says what "one more adverse fact" is, as an edit of the canonical
tables (the data contract), so that the check runs the real feature pipeline and nothing is
re-implemented: an adverse event dated some days before the assessment, the same adverse event
more recent, one more prior conviction or supervision, an adverse intake flag.
:func:`evaluation.face_validity` scores every person before and after each edit; the promotion gate
refuses a model that lowers anybody's risk by more than a tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from features.catalog import CATALOG
from features.vocab import INTAKE_FLAGS, EventType

__all__ = ["ADVERSE_EVENT_TYPES", "ADVERSE_FLAGS", "DAYS_BEFORE", "AdverseFact", "adverse_facts", "with_fact"]

#: the adverse events (design.md, "Face validity"): family changes, job loss, missed or late reports,
#: unauthorised absences and overdue returns, monitoring violations, warnings, police penalties, missed
#: education, unqualified grades, positive drug tests, disputes and threats
ADVERSE_EVENT_TYPES: tuple[EventType, ...] = (
    EventType.FAMILY_DIVORCE,
    EventType.FAMILY_DEATH,
    EventType.FAMILY_CONFLICT,
    EventType.JOB_LOSS,
    EventType.REPORT_MISSED,
    EventType.REPORT_LATE,
    EventType.UNAUTHORISED_ABSENCE,
    EventType.OVERDUE_RETURN,
    EventType.EM_BOUNDARY,
    EventType.EM_SEPARATION,
    EventType.WARNING,
    EventType.POLICE_PENALTY,
    EventType.EDUCATION_MISSED,
    EventType.GRADE_UNQUALIFIED,
    EventType.DRUG_TEST_POSITIVE,
    EventType.DISPUTE,
    EventType.THREAT,
)
#: intake flags that raise risk (the catalog's direction); a serious illness is not an adverse fact
ADVERSE_FLAGS: tuple[str, ...] = tuple(flag for flag in INTAKE_FLAGS if CATALOG[flag].direction > 0)
#: how long before the assessment an added event is dated: just inside each count window (30, 90, 180 and 365
#: days), between them, and beyond them all (the property test draws any day)
DAYS_BEFORE: tuple[int, ...] = (1, 29, 45, 89, 179, 364, 1000)

Kind = Literal["event", "more_recent", "one_more", "flag"]


@dataclass(frozen=True)
class AdverseFact:
    """One adverse fact added to every person's record.

    ``event``: an event of ``event_type`` dated ``days_before`` the assessment; ``more_recent``: each
    person's earliest event of ``event_type`` before the assessment moved halfway towards it (persons
    without one are unchanged); ``one_more``: ``column`` (a prior count) plus one, a count not recorded
    becoming 1; ``flag``: the intake flag ``column`` set.
    """

    kind: Kind
    event_type: EventType | None = None
    days_before: int = 0
    column: str = ""

    @property
    def name(self) -> str:
        if self.kind == "event":
            return f"{self.event_type} {self.days_before}d before"
        if self.kind == "more_recent":
            return f"{self.event_type} more recent"
        return f"{self.column} +1" if self.kind == "one_more" else f"{self.column} set"


def adverse_facts(days_before: tuple[int, ...] = DAYS_BEFORE) -> list[AdverseFact]:
    """Every adverse fact of the design, each event at each of ``days_before``."""
    facts = [AdverseFact("event", t, d) for t in ADVERSE_EVENT_TYPES for d in days_before]
    facts += [AdverseFact("more_recent", t) for t in ADVERSE_EVENT_TYPES]
    facts += [AdverseFact("one_more", column=c) for c in ("prior_convictions", "prior_supervisions")]
    facts += [AdverseFact("flag", column=flag) for flag in ADVERSE_FLAGS]
    return facts


def with_fact(
    persons: pd.DataFrame, events: pd.DataFrame, assessments: pd.DataFrame, fact: AdverseFact
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``persons`` and ``events`` with ``fact`` added for every assessed person (the inputs are not changed).

    ``assessments`` holds ``person_id`` and ``as_of``, one row per person.
    """
    if fact.kind in ("one_more", "flag"):
        persons = persons.copy()
        if fact.kind == "one_more":
            persons[fact.column] = persons[fact.column].astype(float).fillna(0.0) + 1.0
        else:
            persons[fact.column] = True
        return persons, events
    assert fact.event_type is not None
    as_of = pd.Series(assessments["as_of"].to_numpy(dtype="datetime64[ns]"), index=assessments["person_id"].astype(str))
    if fact.kind == "event":
        dates = as_of.to_numpy() - np.timedelta64(fact.days_before, "D")
        added = pd.DataFrame(
            {"person_id": as_of.index, "date": dates, "event_type": str(fact.event_type), "value": np.nan}
        )
        return persons, _concat(events, added)
    # more recent: each person's earliest such event before the assessment, moved halfway towards it
    ids = events["person_id"].astype(str)
    their_as_of = ids.map(as_of).to_numpy(dtype="datetime64[ns]")
    dates = events["date"].to_numpy(dtype="datetime64[ns]")
    candidates = (events["event_type"].astype(str) == str(fact.event_type)).to_numpy() & (dates < their_as_of)
    first = pd.Series(dates[candidates], index=events.index[candidates]).groupby(ids[candidates]).idxmin()
    if first.empty:
        return persons, events
    rows = first.to_numpy()
    at = events.index.get_indexer(pd.Index(rows))
    old, target = dates[at], their_as_of[at]
    gap_days = (target - old) // np.timedelta64(1, "D")
    moved = old + (gap_days // 2).astype("timedelta64[D]")
    events = events.copy()
    events.loc[rows, "date"] = moved
    return persons, events


def _concat(events: pd.DataFrame, added: pd.DataFrame) -> pd.DataFrame:
    """``events`` and ``added`` as one table, categorical columns kept categorical (their union)."""
    out = pd.concat([events.astype({c: object for c in ("person_id", "event_type") if c in events}), added])
    return out.reset_index(drop=True)
