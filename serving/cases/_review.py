"""The monthly review meeting (风险研判分析会): everyone on the roll scored, sorted by risk.

Each person is scored at the meeting's date with the model of the stage they are in (the release
model in the term's last window, the mid-term model before; review policy), and the assessment is
stored in the audit trail as any other. What moved since the person's previous assessment is
computed with that ONE model at both dates: TreeSHAP contributions add up to the raw score
(log-odds) at each date, so the contributions' differences add up to the change in log-odds
exactly. Features whose value changed are parts of their own; contributions that moved only
through interactions (the feature's value is the same) form one part "other factors".
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from sqlalchemy import insert, select, update

from features.catalog import CATALOG
from features.schema import PERSON_COLUMNS
from features.vocab import EventType, Lang, Stage
from models.tier_policy import Band, TierPolicy
from serving.cases import _tables as t
from serving.cases._errors import CaseError
from serving.cases._policy import Colour, ReviewPolicy
from serving.cases._schemas import MovedPart, ReviewRow, ReviewRun
from serving.cases._store import as_date, now_text
from serving.scoring import answer_tier_by_risk
from serving.scoring.schemas import Assessment, EventRecord, PersonRecord, ScoreRequest

if TYPE_CHECKING:
    from serving.audit import AuditStore
    from serving.cases._store import CaseStore
    from serving.scoring import Scored, Scorer

CHUNK = 5000  # people scored per pass
OTHER = "_interactions"


def requests_at(
    persons: pd.DataFrame, events: pd.DataFrame, *, as_of: Sequence[dt.date], stage: Sequence[Stage], lang: Lang
) -> list[ScoreRequest]:
    """Score requests of ``persons`` (rows in order) at each one's date, with the events dated up to it.

    Each person's record is validated (:class:`~serving.scoring.schemas.PersonRecord`); the events are built
    without validating each again: the case store validated them when they were imported or recorded
    (for thousands of people, pydantic's per-event validation was the largest cost of a review), and
    only those dated up to the request's date are included.
    """
    by_person: dict[str, list[EventRecord]] = {}
    kinds = {code: EventType(code) for code in EventType.codes()}
    days = events["date"].to_numpy(dtype="datetime64[D]").astype(np.int64) + _EPOCH
    values = events["value"].to_numpy(dtype=float).tolist()
    for pid, ordinal, kind, value in zip(
        events["person_id"].to_numpy(dtype=object).tolist(),
        days.tolist(),
        events["event_type"].to_numpy(dtype=object).tolist(),
        values,
        strict=True,
    ):
        by_person.setdefault(pid, []).append(
            EventRecord.model_construct(
                date=dt.date.fromordinal(ordinal), event_type=kinds[kind], value=None if value != value else value
            )
        )
    out = []
    records = persons[PERSON_COLUMNS].to_dict("records")
    for rec, day, st in zip(records, as_of, stage, strict=True):
        person = PersonRecord.model_validate(
            {
                k: (v.date() if isinstance(v, pd.Timestamp) else v.item() if isinstance(v, np.generic) else v)
                for k, v in rec.items()
            }
        )
        evs = [e for e in by_person.get(person.person_id, []) if e.date <= day]
        out.append(ScoreRequest.model_construct(person=person, events=evs, stage=st, as_of=day, lang=lang))
    return out


_EPOCH = dt.date(1970, 1, 1).toordinal()


def _score(scorer: Scorer, requests: list[ScoreRequest]) -> list[Scored]:
    out: list[Scored] = []
    for i in range(0, len(requests), CHUNK):
        out += scorer.score(requests[i : i + CHUNK])
    return out


def _moved(now: Scored, prev: Scored, lang: Lang) -> tuple[float, list[MovedPart]]:
    """The change in log-odds and its parts (they add up to it)."""
    a, b = now.explanation, prev.explanation
    change = a["raw_score"] - b["raw_score"]
    dp = a["probability"] - b["probability"]
    parts: list[tuple[str, float, Any, Any]] = []
    rest = 0.0
    for name, c_now in a["contributions"].items():
        d = c_now - b["contributions"][name]
        if d == 0.0:
            continue
        if a["features"][name] == b["features"][name]:
            rest += d
        else:
            parts.append((name, d, b["features"][name], a["features"][name]))
    out = []
    for name, d, before, after in parts:
        spec = CATALOG[name]
        pts = 100 * dp * d / change if change else 0.0
        label, v0, v1 = spec.label(lang), spec.value_text(before, lang), spec.value_text(after, lang)
        out.append(
            MovedPart(
                feature=name,
                label=label,
                before=v0,
                now=v1,
                log_odds=d,
                points=pts,
                text=_sentence(label, v0, v1, pts, lang),
            )
        )
    if rest:
        pts = 100 * dp * rest / change if change else 0.0
        label = "其他因素（相互作用）" if lang == "zh" else "other factors (interactions)"
        out.append(
            MovedPart(
                feature=OTHER,
                label=label,
                before="",
                now="",
                log_odds=rest,
                points=pts,
                text=_sentence(label, None, None, pts, lang),
            )
        )
    out.sort(key=lambda p: -abs(p.log_odds))
    return change, out


def _sentence(label: str, before: str | None, now: str | None, points: float, lang: str) -> str:
    if lang == "zh":
        change = f"由{before}变为{now}，" if before is not None else ""
        return f"{label}：{change}风险{'升高' if points >= 0 else '降低'}{abs(points):.1f}个百分点"
    change = f" from {before} to {now}," if before is not None else ""
    return f"{label}{change} risk {'up' if points >= 0 else 'down'} {abs(points):.1f} points"


def _summary(now: Scored, prev: Scored | None, prev_as_of: dt.date | None, lang: Lang) -> str:
    return review_summary(
        now.assessment.probability, None if prev is None else prev.assessment.probability, prev_as_of, lang
    )


def review_summary(p: float, q: float | None, prev_as_of: dt.date | None, lang: Lang) -> str:
    """A review row's one-line summary in ``lang``: the risk now (``p``) and its change since ``prev_as_of``
    (``q``: the previous date's probability by the same model); the console renders it in the viewer's
    language from the row's numbers."""
    if q is None:
        return f"首次评估：风险{p:.1%}" if lang == "zh" else f"first assessment: risk {p:.1%}"
    if lang == "zh":
        return f"自{prev_as_of}以来风险由{q:.1%}变为{p:.1%}（{100 * (p - q):+.1f}个百分点）"
    return f"risk {q:.1%} -> {p:.1%} ({100 * (p - q):+.1f} points) since {prev_as_of}"


def _previous(store: CaseStore, ids: list[str], as_of: dt.date) -> dict[str, Any]:
    """Each person's latest assessment in the case store dated before ``as_of``."""
    done = store.assessments_frame(ids)
    done = done[done["as_of"] < pd.Timestamp(as_of)]
    return {str(row.person_id): row for row in done.itertuples(index=False)}  # oldest first: the latest wins


def run_review(
    store: CaseStore,
    scorer: Scorer,
    audit: AuditStore,
    *,
    office: str | None,
    as_of: dt.date,
    actor: str,
    lang: Lang = "zh",
    policy: ReviewPolicy | None = None,
    today: dt.date | None = None,
) -> ReviewRun:
    """Score the roll of ``office`` (None: every office) on ``as_of``, store each assessment and the run.

    The scores are review assessments (indexed with the run's id): they never count as a stage's formal
    assessment in the due list. One run per office and date: a rerun supersedes the earlier ones, which
    stay readable (``superseded_by``). A date after ``today`` is refused; one before it is a backdated
    run and says so (the caller checks who may run one).
    """
    policy = policy or ReviewPolicy.load()
    today = today or dt.date.today()
    if as_of > today:
        raise CaseError(
            422,
            f"field 'as_of': {as_of} is after today ({today}): a review is dated on or before the day it is run",
            loc=["as_of"],
            zh=f"字段 as_of：{as_of} 晚于今天（{today}），研判日期不能晚于当天",
        )
    if office is not None:
        store.check_office(office)
    roll = store.roll(office, as_of)
    if roll.empty:
        raise CaseError(
            404, f"nobody is on the roll of {office!r} on {as_of}", loc=["as_of"], zh=f"{as_of} {office} 无在册人员"
        )
    ids = roll["person_id"].tolist()
    stages = [policy.review_stage(as_date(end), as_of) for end in roll["supervision_end"]]
    events = store.events_frame(ids)
    now = _score(scorer, requests_at(roll, events, as_of=[as_of] * len(ids), stage=stages, lang=lang))
    previous = _previous(store, ids, as_of)
    with_prev = [i for i, pid in enumerate(ids) if pid in previous]
    prev_scored = _score(
        scorer,
        requests_at(
            roll.iloc[with_prev],
            events,
            as_of=[as_date(previous[ids[i]].as_of) for i in with_prev],
            stage=[stages[i] for i in with_prev],
            lang=lang,
        ),
    )
    prev_of = dict(zip(with_prev, prev_scored, strict=True))
    run_id, created = str(uuid.uuid4()), now_text()
    tiers = roll["tier"].astype(str).tolist()
    rows = [
        _row(s, prev_of.get(i), previous.get(ids[i]), current=tiers[i], scorer=scorer, policy=policy, lang=lang)
        for i, s in enumerate(now)
    ]
    rows.sort(key=lambda r: (-r.probability, r.person_id))
    counts: dict[str, Any] = {
        "alert": dict(Counter(r.alert for r in rows)),
        "mismatch": dict(Counter(r.mismatch for r in rows)),
    }
    same_day = (t.review_runs.c.office == office) if office is not None else t.review_runs.c.office.is_(None)
    same_day = same_day & (t.review_runs.c.as_of == as_of) & t.review_runs.c.superseded_by.is_(None)
    with store.read() as conn:
        earlier = list(conn.execute(select(t.review_runs.c.run_id).where(same_day)).scalars())
    run = ReviewRun(
        run_id=run_id,
        office=office,
        as_of=as_of,
        created_at=created,
        actor=actor,
        lang=lang,
        policy_version=policy.version,
        count=len(rows),
        counts=counts,
        rows=rows,
        backdated=as_of < today,
        supersedes=earlier,
    )
    audit.append_many([s.audit_fields(actor) for s in now])
    index = [
        index_row(s.assessment, actor=actor, policy=scorer.policy, run_id=run_id, person_id=pid)
        for s, pid in zip(now, ids, strict=True)
    ]
    with store.write() as conn:
        store.note_assessments(index, conn=conn)
        conn.execute(
            insert(t.review_runs).values(
                run_id=run_id,
                office=office,
                as_of=as_of,
                created_at=created,
                actor=actor,
                lang=lang,
                count=len(rows),
                payload=run.model_dump_json(),
                backdated=run.backdated,
            )
        )
        # the earlier runs of the day, including one stored while this one was being scored
        conn.execute(
            update(t.review_runs).where(same_day, t.review_runs.c.run_id != run_id).values(superseded_by=run_id)
        )
    return run


def _row(
    now: Scored, prev: Scored | None, prev_index: Any, *, current: str, scorer: Scorer, policy: ReviewPolicy, lang: Lang
) -> ReviewRow:
    a = now.assessment
    by_risk = answer_tier_by_risk(a, scorer.policy)
    rule_id = a.tier.rule_id if a.tier.basis == "rule" else None
    rise = a.probability - prev.assessment.probability if prev is not None else None
    colour = policy.alert(band=Band(a.band.code), rule_id=rule_id, rise=rise)
    change, moved = _moved(now, prev, lang) if prev is not None else (None, [])
    # the tier the policy asks for is the effective one: a mandatory rule in force is a floor, so a
    # person whom a rule keeps strict is never suggested for the ordinary tier, and one below a rule is
    effective = a.tier.tier.code
    mismatch: Literal["raise", "lower", "none"] = (
        "none" if effective == current else "raise" if effective == "strict" else "lower"
    )
    prev_as_of = as_date(prev_index.as_of) if prev_index is not None else None
    return ReviewRow(
        person_id=a.person_id,
        stage=a.stage.code,
        assessment_id=a.assessment_id,
        probability=a.probability,
        band=a.band.code,
        alert=colour.value,
        alert_label=Colour(colour).label(lang),
        tier_by_risk=by_risk,
        effective_tier=a.tier.tier.code,
        rule_id=rule_id,
        current_tier=current,
        mismatch=mismatch,
        previous_assessment_id=prev_index.assessment_id if prev_index is not None else None,
        previous_as_of=prev_as_of,
        previous_probability=prev.assessment.probability if prev is not None else None,
        change_log_odds=change,
        moved=moved,
        summary=_summary(now, prev, prev_as_of, lang),
    )


def index_row(
    a: Assessment, *, actor: str, policy: TierPolicy, run_id: str | None = None, person_id: str | None = None
) -> dict[str, Any]:
    """The case store's index row of an assessment made from the case store (by person id or a review)."""
    return dict(
        assessment_id=a.assessment_id,
        person_id=person_id or a.person_id,
        stage=a.stage.code,
        as_of=a.as_of,
        probability=a.probability,
        band=a.band.code,
        tier_by_risk=answer_tier_by_risk(a, policy),
        tier=a.tier.tier.code,
        rule_id=a.tier.rule_id,
        model=f"{a.model.name}:{a.model.version}",
        actor=actor,
        created_at=now_text(),
        run_id=run_id,
    )


def get_review(store: CaseStore, run_id: str) -> ReviewRun:
    """A stored review run, exactly as it was returned."""
    with store.read() as conn:
        payload = conn.execute(select(t.review_runs.c.payload).where(t.review_runs.c.run_id == run_id)).scalar()
    if payload is None:
        raise CaseError(404, f"unknown run_id {run_id!r}", loc=["run_id"], zh=f"未知的研判记录 {run_id!r}")
    return ReviewRun.model_validate(json.loads(payload))


def latest_alerts(store: CaseStore, *, office: str, as_of: dt.date) -> tuple[dt.date | None, dict[str, str]]:
    """The four-colour alert of each person in the office's latest review run on or before ``as_of``.

    Returns the run's date (None if the office has had no review yet) and person id -> colour code.
    """
    with store.read() as conn:
        row = conn.execute(
            select(t.review_runs.c.as_of, t.review_runs.c.payload)
            .where(
                t.review_runs.c.office == office,
                t.review_runs.c.as_of <= as_of,
                t.review_runs.c.superseded_by.is_(None),
            )
            .order_by(t.review_runs.c.as_of.desc(), t.review_runs.c.created_at.desc())
            .limit(1)
        ).first()
    if row is None:
        return None, {}
    rows = json.loads(row.payload).get("rows", [])
    return row.as_of, {r["person_id"]: r["alert"] for r in rows}
