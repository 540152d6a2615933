"""The office's pages on the case store: the roster, a person, score now, propose a tier change.

Everything goes through the case flows of ``serving.cases`` (the code behind ``/cases/...``):
the due list, the person's stored record, scoring by person id (the case store builds the
request, :meth:`~serving.api._service.RiskService.assess` scores and stores it, the case store indexes
it, as ``/cases/score`` does) and :func:`serving.cases.propose`. A caseworker or supervisor sees
only their own office (the office on their token); another office's person is refused with 403.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response

from features.vocab import INTAKE_FLAGS, EventType, Lang, Offence, Stage, SupervisionType, Tier
from serving.cases import (
    URGENCY,
    CaseError,
    Colour,
    ReasonCode,
    ReviewPolicy,
    due_list,
    latest_alerts,
    person_decisions,
    propose,
    same_office,
    tier_floor,
    tier_history,
    today_list,
)
from serving.console import _views
from serving.console._forms import stage_options
from serving.console._i18n import text
from serving.console._web import Backend, Ctx, form_str
from serving.monitoring import counted
from serving.scoring import NoModelError, answer_tier, answer_tier_by_risk

STATES = ("due", "overdue", "upcoming", "done", "not_yet")
ROSTER_PAGE = 100  # people on one page of the roster


def office_of(ctx: Ctx) -> str | None:
    """The signed-in user's office, or None (the page then says the token names none)."""
    return ctx.principal.office


def no_office(ctx: Ctx) -> Response:
    return ctx.render("error.html", status=403, status_code=403, message=text("no_office", ctx.lang))


def roster(ctx: Ctx) -> Response:
    """The office's roll on a date: search by id, filter by tier, by the four-colour alert of the latest
    review meeting on or before that date, and by what is due or overdue."""
    office = office_of(ctx)
    if not office:
        return no_office(ctx)
    q = ctx.request.query_params
    problems: dict[str, str] = {}
    try:
        as_of = dt.date.fromisoformat(q.get("as_of") or dt.date.today().isoformat())
    except ValueError:
        problems["as_of"] = text("not_a_date", ctx.lang, value=repr(q.get("as_of")))
        as_of = dt.date.today()
    if as_of > dt.date.today():
        problems["as_of"] = text("future_roll", ctx.lang)
    try:
        listing = due_list(ctx.console.backend().cases, office=office, as_of=as_of)
    except CaseError as err:
        return ctx.render("error.html", status=err.status, status_code=err.status, message=err.text(ctx.lang))
    search, tier, state, alert = q.get("q", "").strip(), q.get("tier", ""), q.get("state", ""), q.get("alert", "")
    review_date, alerts = latest_alerts(ctx.console.backend().cases, office=office, as_of=as_of)
    rows = []
    for person in listing.persons:
        if search and search.lower() not in person.person_id.lower():
            continue
        if tier and person.current_tier != tier:
            continue
        if state and not any(s.state == state for s in person.stages):
            continue
        if alert and alerts.get(person.person_id) != alert:
            continue
        rows.append(person)
    pages = max(1, -(-len(rows) // ROSTER_PAGE))
    try:
        page_no = min(max(int(q.get("page") or 1), 1), pages)
    except ValueError:
        page_no = 1
    first = (page_no - 1) * ROSTER_PAGE
    # the page links keep the filters (and the date, when one was given and valid)
    kept = {"q": search, "tier": tier, "state": state, "alert": alert}
    kept["as_of"] = as_of.isoformat() if q.get("as_of") and "as_of" not in problems else ""
    kept = {k: v for k, v in kept.items() if v}
    # people with at least one assessment in each state, beside the number of assessments in it
    people_in = Counter(st for p in listing.persons for st in {s.state for s in p.stages})
    return ctx.render(
        "roster.html",
        listing=listing,
        rows=rows[first : first + ROSTER_PAGE],
        shown_of=len(rows),
        first=first,
        page=page_no,
        pages=pages,
        page_href=lambda n: "/roster?" + urlencode({**kept, "page": n}),
        people_in=people_in,
        as_of=as_of,
        search=search,
        tier=tier,
        state=state,
        alert=alert,
        alerts=alerts,
        review_date=review_date,
        colours=[(c.value, c.label(ctx.lang)) for c in Colour],
        colour_labels={c.value: c.label(ctx.lang) for c in Colour},
        problems=problems,
        states=STATES,
        tiers=[(t.value, t.label(ctx.lang)) for t in Tier],
        state_labels={s: text(f"state_{s}", ctx.lang) for s in STATES},
        tier_labels={t.value: t.label(ctx.lang) for t in Tier},
        stage_labels={s.value: s.label(ctx.lang) for s in Stage},
        **_views.alert_legend(ReviewPolicy.load(), ctx.console.backend().policy, ctx.lang),
    )


#: items of each kind shown on the "today" page, most urgent first (the counts above them cover all)
TODAY_SHOWN = 100


def _profile(record: dict[str, Any], lang: Lang) -> list[tuple[str, str]]:
    """The person's record as a caseworker reads it: offence, supervision, age, term, history, flags."""
    today = dt.date.today()
    born, start, end = record["birth_date"], record["supervision_start"], record["supervision_end"]
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    flags = [zh if lang == "zh" else en for name, (zh, en) in INTAKE_FLAGS.items() if record.get(name)]
    return [
        (text("p_offence", lang), Offence(record["offence"]).label(lang)),
        (text("p_supervision", lang), SupervisionType(record["supervision_type"]).label(lang)),
        (text("p_age", lang), text("p_age_value", lang, age=age, born=born)),
        (text("p_sentence", lang), text("p_months", lang, n=f"{record['sentence_months']:g}")),
        (text("term", lang), f"{start} – {end}"),
        (
            text("p_priors", lang),
            text("p_priors_value", lang, c=record["prior_convictions"], s=record["prior_supervisions"]),
        ),
        (
            text("p_flags", lang),
            "、".join(flags) if lang == "zh" and flags else ", ".join(flags) or text("p_none", lang),
        ),
        (text("p_caseworker", lang), record.get("caseworker") or text("p_unassigned", lang)),
    ]


def today(ctx: Ctx) -> Response:
    """The caseworker's day: what needs doing for their caseload, most urgent first (serving.cases.today_list)."""
    office = office_of(ctx)
    if not office:
        return no_office(ctx)
    backend = ctx.console.backend()
    day = today_list(
        backend.cases, office=office, user=ctx.principal.user, as_of=dt.date.today(), policy=backend.policy
    )
    # at most TODAY_SHOWN items of each kind, so that a long overdue list never hides an alert or a decision
    seen: dict[str, int] = {}
    items = []
    for item in day.items:
        seen[item.kind] = seen.get(item.kind, 0) + 1
        if seen[item.kind] <= TODAY_SHOWN:
            items.append(item)
    return ctx.render(
        "today.html",
        day=day,
        items=items,
        hidden=len(day.items) - len(items),
        shown=TODAY_SHOWN,
        kinds=URGENCY,
        stage_labels={s.value: s.label(ctx.lang) for s in Stage},
        tier_label=_views.tier_label,
        rule_text=_views.rule_text(backend.policy, ctx.lang),
    )


def person(ctx: Ctx, *, status: int = 200, problem: str | None = None, notice: str | None = None) -> Response:
    """One person of the office: current tier, latest assessment per stage, history, what moved, events."""
    office = office_of(ctx)
    if not office:
        return no_office(ctx)
    backend = ctx.console.backend()
    person_id = ctx.request.path_params["person_id"]
    try:
        record = backend.cases.person(person_id)
    except CaseError as err:
        return ctx.render("error.html", status=err.status, status_code=err.status, message=err.text(ctx.lang))
    if record.get("office") != office:
        return ctx.render("error.html", status=403, status_code=403, message=text("other_office", ctx.lang))
    # the person's assessments made from the case store's record (scored by id or in a review); a record
    # posted to /score under the same id is in the trail for the auditor, not in this person's history
    indexed = set(backend.cases.assessments_frame([person_id])["assessment_id"].astype(str))
    records = [r for r in backend.audit.by_person(person_id) if r.assessment_id in indexed]
    values: dict[str, Any] = {
        "pid": person_id,
        "person": record,
        "records": records,
        "problem": problem,
        "notice": notice or _notice(ctx),
        "tier_now": _views.tier_label(record["tier"], ctx.lang),
    }
    if records:
        current = max(records, key=_views.by_date)
        before = _views.previous_same_stage(records, current)
        values.update(
            latest=[_answer(ctx, backend, r) for r in _views.latest_by_stage(records)],
            chart=_views.history_chart(records, ctx.lang, backend.policy),
            current=current,
            before=before,
            moved=_views.what_moved(before, current, ctx.lang) if before else [],
        )
    events = backend.cases.events_frame([person_id])
    values["events"] = [
        (d.date().isoformat(), EventType(e).label(ctx.lang), v)
        for d, e, v in zip(events["date"], events["event_type"], events["value"], strict=True)
    ][::-1]
    values["profile"] = _profile(record, ctx.lang)
    values["tier_history"] = [
        {
            **step,
            "tier_label": _views.tier_label(step["tier"], ctx.lang),
            "how_label": text(f"tier_how_{step['how']}", ctx.lang),
            "reason_label": ReasonCode(step["reason_code"]).label(ctx.lang) if step["reason_code"] else "",
        }
        for step in tier_history(backend.cases, person_id)
    ]
    values["pending"] = person_decisions(backend.cases, person_id)
    values["stages"] = [(s.value, s.label(ctx.lang)) for s in Stage]
    values["score_stages"] = stage_options(ctx.lang, unserved=backend.unserved)
    floor = tier_floor(backend.cases, backend.audit, person_id, policy=backend.policy)
    values["floor"] = (
        None
        if floor is None
        else text(
            "rule_floor",
            ctx.lang,
            rule=floor.rule.zh if ctx.lang == "zh" else floor.rule.en,
            until=text("floor_until", ctx.lang, day=floor.until) if floor.until else text("rule_while", ctx.lang),
            tier=floor.tier.label(ctx.lang),
        )
    )
    # a rule in force is a floor: the form offers no tier below it (the server refuses one anyway)
    values["tiers"] = [
        (t.value, t.label(ctx.lang)) for t in Tier if t.value != record["tier"] and (floor is None or t is floor.tier)
    ]
    values["reason_codes"] = [(c.value, c.label(ctx.lang)) for c in ReasonCode]
    values["event_types"] = [(e.value, e.label(ctx.lang)) for e in EventType]
    values["today"] = dt.date.today().isoformat()
    # after a refusal the form comes back as the user left it, never empty
    values["typed"] = {k: form_str(ctx.form, k) for k in ctx.form} if problem and ctx.form else {}
    values["problem_form"] = ctx.request.url.path.rsplit("/", 1)[-1] if problem else None
    return ctx.render("case_person.html", status=status, **values)


def score_now(ctx: Ctx) -> Response:
    """Score the person by id from the case store (as ``/cases/score``), then show the person page."""
    office = office_of(ctx)
    if not office:
        return no_office(ctx)
    person_id = ctx.request.path_params["person_id"]
    try:
        stage = form_str(ctx.form, "stage")
        if stage not in Stage.codes():  # a form, not a validated schema: the stage is checked here
            raise CaseError(
                422, f"field 'stage': unknown stage {stage!r}", loc=["stage"], zh=f"未知的评估阶段 {stage!r}"
            )
        ctx.console.backend().score_by_id(ctx.principal, person_id=person_id, stage=stage, lang=ctx.lang)
    except CaseError as err:
        return person(ctx, status=err.status, problem=err.text(ctx.lang))
    except NoModelError as err:
        return person(ctx, status=err.status, problem=err.text(ctx.lang))
    return ctx.redirect(f"/person/{person_id}?done=scored")


def propose_change(ctx: Ctx) -> Response:
    """A caseworker's tier-change proposal (reason code + written reason), through ``serving.cases.propose``."""
    person_id = ctx.request.path_params["person_id"]
    backend = ctx.console.backend()
    to_tier = form_str(ctx.form, "to_tier")
    if to_tier not in Tier.codes():
        return person(ctx, status=422, problem=text("unknown_tier", ctx.lang, value=repr(to_tier)))
    try:
        counted(
            propose(
                backend.cases,
                backend.audit,
                principal=ctx.principal,
                person_id=person_id,
                to_tier=to_tier,
                reason_code=form_str(ctx.form, "reason_code"),
                reason=form_str(ctx.form, "reason"),
                assessment_id=form_str(ctx.form, "assessment_id"),
                policy=backend.policy,
                lang=ctx.lang,
            )
        )
    except CaseError as err:
        return person(ctx, status=err.status, problem=err.text(ctx.lang))
    return ctx.redirect(f"/person/{person_id}?done=proposed")


def record_event(ctx: Ctx) -> Response:
    """A caseworker records a dated event of a person of the office (validated as ``/cases/event``)."""
    office = office_of(ctx)
    if not office:
        return no_office(ctx)
    backend = ctx.console.backend()
    person_id = ctx.request.path_params["person_id"]
    raw_date, raw_value = form_str(ctx.form, "date"), form_str(ctx.form, "value").strip()
    try:
        same_office(office, backend.cases.person(person_id).get("office"), person_id)
        try:
            day = dt.date.fromisoformat(raw_date)
        except ValueError:
            raise CaseError(
                422,
                f"event of {person_id!r}, field 'date': {raw_date!r} is not a date (YYYY-MM-DD)",
                loc=["date"],
                zh=f"{person_id!r} 的事件，字段 date：{raw_date!r} 不是有效日期（YYYY-MM-DD）",
            ) from None
        try:
            value = float(raw_value) if raw_value else None
        except ValueError:
            raise CaseError(
                422,
                f"event of {person_id!r}, field 'value': {raw_value!r} is not a number",
                loc=["value"],
                zh=f"{person_id!r} 的事件，字段 value：{raw_value!r} 不是数字",
            ) from None
        backend.cases.record_event(
            person_id,
            date=day,
            event_type=form_str(ctx.form, "event_type"),
            value=value,
            actor=ctx.principal.user,
            audit=backend.audit,
        )
    except CaseError as err:
        return person(ctx, status=err.status, problem=err.text(ctx.lang))
    return ctx.redirect(f"/person/{person_id}?done=event")


def _notice(ctx: Ctx) -> str | None:
    done = ctx.request.query_params.get("done")
    return text(f"done_{done}", ctx.lang) if done in ("scored", "proposed", "event") else None


def _answer(ctx: Ctx, backend: Backend, record: Any) -> dict[str, Any]:
    response = _views.shown(backend, record, ctx.lang)
    return {
        "record": record,
        "a": response,
        "stage_label": Stage(record.stage).label(ctx.lang),
        "by_risk": _views.tier_label(answer_tier_by_risk(response, backend.policy), ctx.lang),
        "effective": _views.tier_label(answer_tier(record.response), ctx.lang),
        "chart": _views.reasons_chart(response, ctx.lang),
    }
