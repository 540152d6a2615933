"""A caseworker's day on one page: what needs doing for their caseload, most urgent first.

The caseload of a user is the persons of their office assigned to them (the export's optional
``caseworker`` column) and those assigned to nobody; a user with nobody assigned sees the whole
office. Items, in order of urgency: red alerts of the latest review meeting, overdue assessments,
orange alerts, assessments due now, time-limited rules that end this month (the person then
comes up on the supervisor's step-down list), and the user's proposals decided since their last
visit (those of the last 14 days stay listed; the ones since the last visit are marked new).
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import TYPE_CHECKING, Literal

import pandas as pd
from pydantic import BaseModel, Field
from sqlalchemy import select, update

from features.vocab import Stage
from models.tier_policy import TierPolicy
from serving.cases import _tables as t
from serving.cases._due import due_list
from serving.cases._policy import ReviewPolicy
from serving.cases._review import latest_alerts
from serving.cases._schemas import DuePerson
from serving.cases._store import as_date, now_text

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from serving.cases._store import CaseStore

TodayKind = Literal["red_alert", "overdue", "orange_alert", "due", "rule_ends", "decided"]
#: days a decided proposal stays on its proposer's "today" page
DECIDED_DAYS = 14
#: the order of urgency of the kinds of item
URGENCY: tuple[TodayKind, ...] = ("red_alert", "overdue", "orange_alert", "due", "rule_ends", "decided")


class TodayItem(BaseModel):
    """One thing to do (or to know) about one person."""

    kind: TodayKind
    person_id: str
    stage: str | None = Field(None, description="the assessment's stage (overdue, due)")
    date: dt.date | None = Field(
        None, description="closes (overdue, due), the rule's last day (rule_ends), the review's date (alerts)"
    )
    rule_id: str | None = None
    decision_id: str | None = None
    status: str | None = Field(None, description="approved or rejected (decided)")
    to_tier: str | None = None
    new: bool = Field(False, description="decided since the user's previous visit")


class TodayList(BaseModel):
    office: str
    user: str
    as_of: dt.date
    caseload: int = Field(description="persons on the caseload on the roll today")
    assigned: bool = Field(description="False: nobody is assigned to the user, the caseload is the office")
    since: str | None = Field(description="the user's previous visit (decided proposals since then are listed)")
    counts: dict[str, int]
    items: list[TodayItem]


def today_list(
    store: CaseStore,
    *,
    office: str,
    user: str,
    as_of: dt.date,
    policy: TierPolicy | None = None,
    review_policy: ReviewPolicy | None = None,
    record_visit: bool = True,
) -> TodayList:
    """The user's day on ``as_of`` (see the module docstring); records the visit unless told not to."""
    policy = policy or TierPolicy.load()
    roll = store.roll(office, as_of)
    done = store.assessments_frame(roll["person_id"].tolist())
    listing = due_list(store, office=office, as_of=as_of, policy=review_policy, roll=roll, assessments=done)
    with store.read() as conn:
        rows = conn.execute(
            select(t.persons.c.person_id, t.persons.c.caseworker).where(t.persons.c.office == office)
        ).all()
        assigned = {pid: who for pid, who in rows}
        since = conn.execute(
            select(t.page_visits.c.seen_at).where(t.page_visits.c.user == user, t.page_visits.c.page == "today")
        ).scalar()
    mine = {pid for pid, who in assigned.items() if who == user}
    has_own = bool(mine)
    if has_own:
        mine |= {pid for pid, who in assigned.items() if who is None}
    persons = [p for p in listing.persons if not has_own or p.person_id in mine]
    ids = {p.person_id for p in persons}
    items: list[TodayItem] = []
    review_date, alerts = latest_alerts(store, office=office, as_of=as_of)
    for pid, colour in alerts.items():
        if pid in ids and colour in ("red", "orange"):
            kind: TodayKind = "red_alert" if colour == "red" else "orange_alert"
            items.append(TodayItem(kind=kind, person_id=pid, date=review_date))
    for p in persons:
        for s in p.stages:
            if s.state in ("overdue", "due"):
                items.append(TodayItem(kind=s.state, person_id=p.person_id, stage=s.stage, date=s.closes))
    items += _rules_ending(done, persons, as_of=as_of, policy=policy)
    # the user's decided proposals of the last 14 days stay on the page; those since the last visit are new
    cutoff = dt.datetime.combine(as_of - dt.timedelta(days=DECIDED_DAYS), dt.time(), dt.UTC).isoformat()
    with store.read() as conn:
        decided = conn.execute(
            select(t.decisions).where(
                t.decisions.c.office == office,
                t.decisions.c.proposed_by == user,
                t.decisions.c.status != "proposed",
                t.decisions.c.decided_at > cutoff,
            )
        ).mappings()
        items += [
            TodayItem(
                kind="decided",
                person_id=d["person_id"],
                decision_id=d["decision_id"],
                status=d["status"],
                to_tier=d["to_tier"],
                date=dt.date.fromisoformat(str(d["decided_at"])[:10]),
                new=since is None or str(d["decided_at"]) > since,
            )
            for d in decided
        ]
    items.sort(key=lambda i: (URGENCY.index(i.kind), i.date or dt.date.max, i.person_id))
    if record_visit:
        _seen(store, user)
    counts = {kind: sum(i.kind == kind for i in items) for kind in URGENCY}
    return TodayList(
        office=office,
        user=user,
        as_of=as_of,
        caseload=len(persons),
        assigned=has_own,
        since=since,
        counts=counts,
        items=items,
    )


def _rules_ending(
    assessments: pd.DataFrame, persons: list[DuePerson], *, as_of: dt.date, policy: TierPolicy
) -> list[TodayItem]:
    """Persons whose time-limited rule ends between ``as_of`` and the end of its month.

    The rule is the one of the person's latest assessment in the case store; a person not yet assessed is
    under the intake rules that hold for everyone (``always``) and have a time limit.
    """
    month_end = as_of.replace(day=calendar.monthrange(as_of.year, as_of.month)[1])
    done = assessments[assessments["as_of"] <= pd.Timestamp(as_of)]
    latest = {  # oldest first: the latest wins
        str(pid): (str(stage), None if rule is None or rule != rule else str(rule))
        for pid, stage, rule in zip(done["person_id"], done["stage"], done["rule_id"], strict=True)
    }
    everyone = [r for r in policy.stage(Stage.INTAKE).rules if r.time_limit is not None and r.condition.always]
    out = []
    for p in persons:
        row = latest.get(p.person_id)
        if row is not None and row[1] is not None:
            rules = [r for r in policy.stage(row[0]).rules if r.id == row[1] and r.time_limit]
        elif row is None:
            rules = everyone
        else:
            rules = []
        for rule in rules[:1]:
            until = rule.last_day(as_date(p.supervision_start))
            if until is not None and as_of <= until <= month_end:
                out.append(TodayItem(kind="rule_ends", person_id=p.person_id, date=until, rule_id=rule.id))
    return out


def _seen(store: CaseStore, user: str) -> None:
    """Record that ``user`` opened the today page now."""
    now = now_text()
    with store.write() as conn:
        _upsert_visit(conn, user, now)


def _upsert_visit(conn: Connection, user: str, now: str) -> None:
    found = conn.execute(
        select(t.page_visits.c.user).where(t.page_visits.c.user == user, t.page_visits.c.page == "today")
    ).first()
    if found is None:
        conn.execute(t.page_visits.insert().values(user=user, page="today", seen_at=now))
    else:
        conn.execute(
            update(t.page_visits)
            .where(t.page_visits.c.user == user, t.page_visits.c.page == "today")
            .values(seen_at=now)
        )
