"""Typed requests and answers of the case flows (they make the service's OpenAPI page)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from features.vocab import EventType, Lang, Stage, Tier

DueState = Literal["done", "due", "overdue", "upcoming", "not_yet"]
#: The longest written reason of a proposal and comment of a decision (characters), in the API and the console.
REASON_MAX = COMMENT_MAX = 4000
_PID = Field(min_length=1, max_length=64, description="the agency's id of the person", examples=["S0001234"])
_OFFICE = Field(min_length=1, max_length=64, description="the office (司法所)", examples=["chengguan"])


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ----------------------------------------------------------------------------- requests
class EventIn(_Strict):
    """A dated event a caseworker records for a person of their office."""

    person_id: str = _PID
    date: dt.date = Field(description="when it happened", examples=["2026-11-20"])
    event_type: EventType = Field(
        description="controlled vocabulary (features.vocab.EventType)", examples=["report_missed"]
    )
    value: float | None = Field(
        None,
        ge=0,
        le=1000,
        allow_inf_nan=False,
        description="hours, points... where the type has one (0 to 1000)",
        examples=[None],
    )
    as_of: dt.date | None = Field(None, description="date of recording (default today): later events are refused")


class ScorePersonIn(_Strict):
    """Score a person from the case store's record."""

    person_id: str = _PID
    stage: Stage = Field(description="intake, midterm or release", examples=["midterm"])
    as_of: dt.date | None = Field(
        None, description="assessment date, not after today; default today (the end of an ended term)"
    )
    lang: Lang = Field("zh", description="zh or en")


class DueIn(_Strict):
    office: str = _OFFICE
    as_of: dt.date = Field(description="the date the list is for", examples=["2024-06-01"])


class ProposeIn(_Strict):
    """A caseworker's proposal to change a person's tier (管理等级调整), referring to an assessment."""

    person_id: str = _PID
    to_tier: Tier = Field(description="strict or ordinary", examples=["strict"])
    reason_code: str = Field(
        description="a code of serving.cases.ReasonCode (risk_assessment, serious_violation, "
        "family_crisis, mental_health, good_conduct, policy_period_ended, other)",
        examples=["serious_violation"],
    )
    reason: str = Field(
        min_length=5,
        max_length=REASON_MAX,
        description="the written reason",
        examples=["Two missed reports and a warning since the last assessment."],
    )
    assessment_id: str = Field(
        min_length=1,
        description="the assessment that prompted the proposal",
        examples=["2f1c7a52-8d0e-4a4b-9b8e-5d7c0f3e9a11"],
    )
    lang: Lang = "zh"


class DecideIn(_Strict):
    """A supervisor's approval or rejection of a proposal."""

    decision_id: str = Field(min_length=1, examples=["0b8f4a1e-3c55-4f0e-9a57-2d1c3e4b5a6f"])
    comment: str = Field(
        min_length=2,
        max_length=COMMENT_MAX,
        description="the supervisor's comment",
        examples=["Agreed: confirmed at the office meeting."],
    )
    lang: Lang = "zh"


class ReviewIn(_Strict):
    office: str = _OFFICE
    as_of: dt.date = Field(examples=["2024-06-01"])
    lang: Lang = "zh"


class ReviewRunQuery(_Strict):
    run_id: str = Field(min_length=1, examples=["6a0d3c2e-1f4b-4c8a-9e7d-5b3a2c1d0e9f"])
    format: Literal["json", "csv", "html"] = Field("json", description="json (the run), csv or printable html")


class ReportIn(_Strict):
    start: dt.date = Field(description="first day of the period", examples=["2026-01-01"])
    end: dt.date = Field(description="last day of the period", examples=["2026-12-31"])
    office: str | None = Field(None, description="one office (auditors: any; supervisors: their own)")


# ----------------------------------------------------------------------------- answers
class EventOut(BaseModel):
    """An event as recorded in the case store."""

    event_id: int
    person_id: str
    date: dt.date
    event_type: str
    value: float | None
    recorded_by: str | None
    recorded_at: str


class StageDue(BaseModel):
    """One stage's assessment for one person: its window and whether it is done, due, overdue or upcoming."""

    stage: str
    state: DueState = Field(description="done, due, overdue, upcoming (opens within the window) or not_yet")
    opens: dt.date
    closes: dt.date
    last_assessment_id: str | None = None
    last_as_of: dt.date | None = None
    last_probability: float | None = None


class DuePerson(BaseModel):
    """One person on the roll: current tier and the three assessments."""

    person_id: str
    current_tier: str
    supervision_start: dt.date
    supervision_end: dt.date
    stages: list[StageDue]


class DueList(BaseModel):
    """An office's roll on a date with what is due (windows: serving/cases/review_policy.yaml)."""

    office: str
    as_of: dt.date
    policy_version: str
    count: int
    counts: dict[str, int] = Field(description="assessments by state")
    persons: list[DuePerson]


class DecisionOut(BaseModel):
    """A tier decision after the step just taken (proposed, approved or rejected)."""

    decision_id: str
    person_id: str
    office: str
    assessment_id: str
    from_tier: str
    to_tier: str
    tier_by_risk: str = Field(description="the tier the model's band gives in the assessment referred to")
    reason_code: str
    reason_label: str
    reason: str
    status: Literal["proposed", "approved", "rejected"]
    proposed_by: str
    proposed_at: str
    decided_by: str | None = None
    decided_at: str | None = None
    comment: str | None = None
    current_tier: str = Field(description="the person's current tier after this step")


class MovedPart(BaseModel):
    """One part of the change in risk since the previous assessment (one model at both dates)."""

    feature: str
    label: str
    before: str = Field(description="the value at the previous assessment, in words")
    now: str
    log_odds: float = Field(description="change of this feature's contribution (parts sum to the change)")
    points: float = Field(description="its share of the change in probability, percentage points")
    text: str


class ReviewRow(BaseModel):
    """One person of the review meeting's list."""

    person_id: str
    stage: str
    assessment_id: str
    probability: float
    band: str
    alert: str
    alert_label: str
    tier_by_risk: str
    effective_tier: str = Field(description="after the mandatory rules")
    rule_id: str | None
    current_tier: str
    mismatch: Literal["raise", "lower", "none"] = Field(
        description="raise: the effective tier (tier by risk after the mandatory rules in force) is strict and "
        "the current tier ordinary; lower: the effective tier is ordinary and the current tier strict (a "
        "person whom a rule keeps strict is never 'lower')"
    )
    previous_assessment_id: str | None
    previous_as_of: dt.date | None
    previous_probability: float | None = Field(description="the previous date's probability by THIS model")
    change_log_odds: float | None
    moved: list[MovedPart]
    summary: str


class ReviewRun(BaseModel):
    """A review meeting's list, sorted by risk, as stored (fetch it again with /cases/review_run)."""

    run_id: str
    office: str | None
    as_of: dt.date
    created_at: str
    actor: str
    lang: str
    policy_version: str
    count: int
    counts: dict[str, Any] = Field(description="people by alert colour and by mismatch")
    rows: list[ReviewRow]
    backdated: bool = Field(
        False, description="dated before the day it was run (created_at): only a supervisor may run one"
    )
    supersedes: list[str] = Field(
        default_factory=list,
        description="earlier runs of the same office and date that this one replaced (they stay readable)",
    )


class ReportRow(BaseModel):
    """Decision counts of one group (office, caseworker or reason code) or of all."""

    key: str
    proposed: int
    approved: int
    rejected: int
    pending: int
    overrides: int = Field(description="approved decisions whose tier differs from the model's tier by risk")
    override_rate: float | None = Field(description="overrides / approved")


class DecisionReport(BaseModel):
    """Tier decisions proposed in a period and the override rate."""

    start: dt.date
    end: dt.date
    office: str | None
    total: ReportRow
    by_office: list[ReportRow]
    by_caseworker: list[ReportRow]
    by_reason: list[ReportRow]
    step_downs_deferred: dict[str, int] = Field(
        default_factory=dict, description="step-downs a supervisor deferred ('not now') in the period, by reason code"
    )
