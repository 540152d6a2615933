"""The due list: who on an office's roll needs which assessment, by the windows of the review policy."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import TYPE_CHECKING

import pandas as pd

from features.vocab import Stage
from serving.cases._policy import ReviewPolicy, term_midpoint
from serving.cases._schemas import DueList, DuePerson, DueState, StageDue
from serving.cases._store import as_date

if TYPE_CHECKING:
    from serving.cases._store import CaseStore


def due_state(*, as_of: dt.date, opens: dt.date, closes: dt.date, done: bool, upcoming_days: int) -> DueState:
    """done (assessed in or after its window), due, overdue, upcoming (opens within ``upcoming_days``) or not_yet."""
    if done:
        return "done"
    if as_of < opens:
        return "upcoming" if (opens - as_of).days <= upcoming_days else "not_yet"
    return "due" if as_of <= closes else "overdue"


def due_list(
    store: CaseStore,
    *,
    office: str,
    as_of: dt.date,
    policy: ReviewPolicy | None = None,
    roll: pd.DataFrame | None = None,
    assessments: pd.DataFrame | None = None,
) -> DueList:
    """Each person on ``office``'s roll on ``as_of``: current tier, last assessment and state of each stage.

    ``roll`` and ``assessments``: what :meth:`CaseStore.roll` and :meth:`CaseStore.assessments_frame` give,
    when the caller has read them already (the "today" page uses them too). Raises
    :class:`~serving.cases.CaseError` (404) for an office nobody belongs to.
    """
    policy = policy or ReviewPolicy.load()
    store.check_office(office)
    roll = store.roll(office, as_of) if roll is None else roll
    done = store.assessments_frame(roll["person_id"].tolist()) if assessments is None else assessments
    # a review meeting's scores are review assessments, never the stage's formal one
    done = done[(done["as_of"] <= pd.Timestamp(as_of)) & done["run_id"].isna()]
    last = {
        (p, s): row for p, s, row in zip(done["person_id"], done["stage"], done.itertuples(index=False), strict=True)
    }  # oldest first: the last one wins
    people, counts = [], Counter[str]()
    windows = [(stage.value, policy.due.window(stage)) for stage in Stage]
    upcoming = policy.due.upcoming_days
    for person in roll.itertuples(index=False):
        start, end = as_date(person.supervision_start), as_date(person.supervision_end)
        midpoint = term_midpoint(start, end)
        stages = []
        for code, window in windows:
            opens, closes = window.dates(start, end, midpoint)
            prev = last.get((person.person_id, code))
            state = due_state(
                as_of=as_of,
                opens=opens,
                closes=closes,
                upcoming_days=upcoming,
                done=prev is not None and as_date(prev.as_of) >= opens,
            )
            counts[state] += 1
            stages.append(
                StageDue(
                    stage=code,
                    state=state,
                    opens=opens,
                    closes=closes,
                    last_assessment_id=str(prev.assessment_id) if prev else None,
                    last_as_of=as_date(prev.as_of) if prev else None,
                    last_probability=float(prev.probability) if prev else None,  # type: ignore[arg-type]  # a float column
                )
            )
        people.append(
            DuePerson(
                person_id=str(person.person_id),
                current_tier=str(person.tier),
                supervision_start=start,
                supervision_end=end,
                stages=stages,
            )
        )
    return DueList(
        office=office,
        as_of=as_of,
        policy_version=policy.version,
        count=len(people),
        counts=dict(counts),
        persons=people,
    )
