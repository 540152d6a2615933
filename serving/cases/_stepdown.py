"""The supervisor's step-down list (严管转普管): strict persons who may now be ordinary, and "not now".

A person of the office whose current tier is strict comes up on the list when nothing keeps them
strict any more (no mandatory rule in force, :func:`~serving.cases.tier_floor`) and either

- their time-limited rule has ended (the end of a rule never changes a tier by itself: a decision
  does, design.md "Dates, rules and offices"), or
- their tier by risk was ordinary at the latest ``ordinary_reviews`` review meetings in a row
  (review policy),

and no proposal of theirs waits, and no step-down of theirs was rejected within the "observe" period.

The supervisor decides the step-down at once (:func:`decide_step_down`: a decision proposed and
approved by the supervisor, chained in the trail like any other), or says "not now" with a reason
from a controlled list (:func:`defer_step_down`): recorded, counted in the decision report, and the
person comes back on the list when the reason's period ends.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import TYPE_CHECKING, Literal

import pandas as pd
from pydantic import BaseModel, Field
from sqlalchemy import func, insert, select

from features.vocab import Stage, Tier
from models.tier_policy import TierPolicy
from serving.auth import Principal, Role
from serving.cases import _tables as t
from serving.cases._decisions import ReasonCode, _at_most, _chain, _out, _require, rule_floor, same_office
from serving.cases._errors import CaseError
from serving.cases._policy import DeferReason, ReviewPolicy
from serving.cases._schemas import COMMENT_MAX, DecisionOut
from serving.cases._store import as_date, now_text

if TYPE_CHECKING:
    from serving.audit import AuditStore
    from serving.cases._store import CaseStore

Why = Literal["rule_ended", "ordinary_by_risk"]


class StepDownItem(BaseModel):
    """One strict person who may step down, and why."""

    person_id: str
    why: Why
    rule_id: str | None = Field(None, description="the time-limited rule that ended (rule_ended)")
    rule_ended: dt.date | None = Field(None, description="its last day")
    reviews: list[dt.date] = Field(default_factory=list, description="the reviews at which it was ordinary by risk")
    assessment_id: str = Field(description="the latest assessment, which a decision refers to")
    probability: float


def step_down_list(
    store: CaseStore,
    audit: AuditStore,
    *,
    office: str,
    as_of: dt.date,
    policy: TierPolicy | None = None,
    review_policy: ReviewPolicy | None = None,
) -> list[StepDownItem]:
    """The office's step-down list on ``as_of`` (see the module docstring), longest-waiting first."""
    policy = policy or TierPolicy.load()
    review_policy = review_policy or ReviewPolicy.load()
    n = review_policy.step_down.ordinary_reviews
    roll = store.roll(office, as_of)
    strict = roll[roll["tier"] == Tier.STRICT.value]
    if strict.empty:
        return []
    ids = strict["person_id"].astype(str).tolist()
    done = store.assessments_frame(ids)
    done = done[done["as_of"] <= pd.Timestamp(as_of)]
    latest = {  # oldest first: the latest wins
        str(pid): (str(aid), str(stage), None if rule is None or rule != rule else str(rule), float(p))
        for pid, aid, stage, rule, p in zip(
            done["person_id"], done["assessment_id"], done["stage"], done["rule_id"], done["probability"], strict=True
        )
    }
    with store.read() as conn:
        deferred = set(
            conn.execute(
                select(t.step_down_deferrals.c.person_id).where(
                    t.step_down_deferrals.c.office == office, t.step_down_deferrals.c.until >= as_of
                )
            ).scalars()
        )
        # a step-down the supervisor rejected lately stays off the list for the 'observe' period, as a "not now"
        lately = dt.datetime.combine(
            as_of - dt.timedelta(days=review_policy.step_down.defer_days[DeferReason.OBSERVE]), dt.time(), dt.UTC
        ).isoformat()
        rejected = set(
            conn.execute(
                select(t.decisions.c.person_id).where(
                    t.decisions.c.office == office,
                    t.decisions.c.status == "rejected",
                    t.decisions.c.to_tier == Tier.ORDINARY.value,
                    t.decisions.c.decided_at >= lately,
                )
            ).scalars()
        )
        pending = set(
            conn.execute(
                select(t.decisions.c.person_id).where(
                    t.decisions.c.office == office, t.decisions.c.status == "proposed"
                )
            ).scalars()
        )
        runs = conn.execute(
            select(t.review_runs.c.as_of, t.review_runs.c.payload)
            .where(
                t.review_runs.c.office == office,
                t.review_runs.c.as_of <= as_of,
                t.review_runs.c.superseded_by.is_(None),
            )
            .order_by(t.review_runs.c.as_of.desc(), t.review_runs.c.created_at.desc())
            .limit(n)
        ).all()
    ordinary_at: dict[str, list[dt.date]] = {}
    if len(runs) == n:
        tiers = [
            (day, {r["person_id"]: r for r in json.loads(payload)["rows"]}) for day, payload in runs
        ]  # newest first
        for pid in ids:
            rows = [by_pid.get(pid) for _, by_pid in tiers]
            if all(r is not None and r["tier_by_risk"] == "ordinary" and not r.get("rule_id") for r in rows):
                ordinary_at[pid] = sorted(day for day, _ in tiers)
    starts = dict(zip(strict["person_id"].astype(str), strict["supervision_start"], strict=True))
    out = []
    for pid in ids:
        if pid in deferred or pid in pending or pid in rejected or pid not in latest:
            continue
        assessment_id, stage, rule, probability = latest[pid]
        item: StepDownItem | None = None
        ended = next((r.last_day(as_date(starts[pid])) for r in policy.stage(Stage(stage)).rules if r.id == rule), None)
        if ended is not None and ended < as_of:
            item = StepDownItem(
                person_id=pid,
                why="rule_ended",
                rule_id=rule,
                rule_ended=ended,
                assessment_id=assessment_id,
                probability=probability,
            )
        if item is None and pid in ordinary_at:
            item = StepDownItem(
                person_id=pid,
                why="ordinary_by_risk",
                reviews=ordinary_at[pid],
                assessment_id=assessment_id,
                probability=probability,
            )
        if item is None:
            continue
        with store.read() as conn:
            person = store.person(pid, conn=conn)
            if rule_floor(store, audit, conn, person=person, policy=policy, on=as_of) is not None:
                continue  # a rule in force keeps them strict: no step-down to offer
        out.append(item)
    out.sort(key=lambda i: (i.rule_ended or (i.reviews[0] if i.reviews else as_of), i.person_id))
    return out


def defer_step_down(
    store: CaseStore,
    *,
    principal: Principal,
    person_id: str,
    reason_code: str,
    comment: str,
    as_of: dt.date | None = None,
    review_policy: ReviewPolicy | None = None,
) -> dict[str, object]:
    """A supervisor's "not now": recorded with its reason; the person returns to the list after the reason's
    period (review policy). Refused (nothing written) for another office, an unknown reason, no comment."""
    office = _require(principal, Role.SUPERVISOR, "defer a step-down")
    review_policy = review_policy or ReviewPolicy.load()
    if reason_code not in DeferReason.codes():
        raise CaseError(
            422,
            f"unknown reason_code {reason_code!r}; known: {DeferReason.codes()}",
            loc=["reason_code"],
            zh=f"未知的理由代码 {reason_code!r}",
        )
    if len((comment or "").strip()) < 2:
        raise CaseError(422, "field 'comment': a comment is required", loc=["comment"], zh="字段 comment：须填写说明")
    _at_most(comment, COMMENT_MAX, "comment")
    day = as_of or dt.date.today()
    until = day + dt.timedelta(days=review_policy.step_down.defer_days[DeferReason(reason_code)])
    row = dict(
        deferral_id=str(uuid.uuid4()),
        person_id=person_id,
        office=office,
        reason_code=reason_code,
        until=until,
        comment=comment.strip(),
        actor=principal.user,
        created_at=now_text(),
    )
    with store.write() as conn:
        person = store.person(person_id, conn=conn)
        same_office(office, person["office"], person_id)
        conn.execute(insert(t.step_down_deferrals).values(**row))
    return row


def decide_step_down(
    store: CaseStore,
    audit: AuditStore,
    *,
    principal: Principal,
    person_id: str,
    assessment_id: str,
    comment: str,
    policy: TierPolicy | None = None,
    lang: str = "zh",
) -> DecisionOut:
    """The supervisor's step-down to ordinary, at once: a decision proposed and approved by the supervisor
    (both steps chained in the trail), refused like a proposal (office, pending proposal, a rule in force)."""
    office = _require(principal, Role.SUPERVISOR, "decide a step-down")
    policy = policy or TierPolicy.load()
    if len((comment or "").strip()) < 2:
        raise CaseError(
            422, "field 'comment': a comment is required", loc=["comment"], zh="字段 comment：须填写审批意见"
        )
    _at_most(comment, COMMENT_MAX, "comment")
    with store.write() as conn:
        person = store.person(person_id, conn=conn)
        same_office(office, person["office"], person_id)
        if person["tier"] != Tier.STRICT.value:
            raise CaseError(409, f"person {person_id!r} is not strict: nothing to step down", loc=["person_id"])
        pending = conn.execute(
            select(func.count()).where((t.decisions.c.person_id == person_id) & (t.decisions.c.status == "proposed"))
        ).scalar_one()
        if pending:
            raise CaseError(
                409,
                f"person {person_id!r} has a proposal awaiting decision: decide that one",
                loc=["person_id"],
                zh=f"人员 {person_id!r} 已有待审批的调整申请，请先审批",
            )
        indexed = store.assessment(assessment_id, conn=conn)
        if indexed is None or indexed["person_id"] != person_id:
            raise CaseError(
                404,
                f"assessment_id {assessment_id!r}: no assessment of person {person_id!r}",
                loc=["assessment_id"],
                zh=f"assessment_id {assessment_id!r}：该人员无此评估",
            )
        floor = rule_floor(
            store, audit, conn, person=person, policy=policy, on=dt.date.today(), assessment_ids=(assessment_id,)
        )
        if floor is not None:
            raise floor.refusal(person_id, Tier.ORDINARY)
        now = now_text()
        row = dict(
            decision_id=str(uuid.uuid4()),
            person_id=person_id,
            office=office,
            assessment_id=assessment_id,
            from_tier=Tier.STRICT.value,
            to_tier=Tier.ORDINARY.value,
            tier_by_risk=str(indexed["tier_by_risk"]),
            reason_code=ReasonCode.POLICY_PERIOD_ENDED.value
            if indexed.get("rule_id")
            else ReasonCode.RISK_ASSESSMENT.value,
            reason=comment.strip(),
            status="approved",
            proposed_by=principal.user,
            proposed_at=now,
            decided_by=principal.user,
            decided_at=now,
            comment=comment.strip(),
        )
        conn.execute(insert(t.decisions).values(**row))
        conn.execute(
            t.tiers.update()
            .where(t.tiers.c.person_id == person_id)
            .values(tier=Tier.ORDINARY.value, since=dt.date.today(), decision_id=row["decision_id"], source="decision")
        )
        _chain(audit, row, step="proposed", text=row["reason"], actor=principal.user)
        _chain(audit, row, step="approved", text=row["comment"], actor=principal.user)
    return _out(row, current_tier=Tier.ORDINARY.value, lang=lang)
