"""The auditor's pages: the assessment log with filters, one assessment in full, decisions, verify.

Everything is read from the audit store (``serving.audit``) through the same methods as the
API's ``/assessment`` and ``/verify``. The log pages by ``seq`` (newest first): filters on stored
columns are applied in SQL; "effective tier differs from tier by risk" needs the stored answer
and is applied while reading, a batch at a time, until the page is full.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response

from features.catalog import CATALOG
from features.vocab import EventType, Stage
from models.cutoffs import BandCutoffs, ResolvedCutoff, percent, stated_words
from models.tier_policy import Band, TierPolicy
from serving.audit import AuditRecord, DecisionStepRecord
from serving.auth import Permission
from serving.cases import CaseError, ReasonCode, decision_report
from serving.console import _views
from serving.console._i18n import Lang, keys, text
from serving.console._web import Ctx
from serving.scoring import answer_tier, answer_tier_by_risk

PAGE = 50
SCAN = 500


@dataclass(frozen=True)
class LogFilter:
    """The log's filters as given in the query string (invalid values are reported, not guessed)."""

    since: str = ""
    until: str = ""
    stage: str = ""
    actor: str = ""
    decided: str = ""  # "", "yes", "no"
    differs: bool = False
    before: int | None = None

    @classmethod
    def parse(cls, query: dict[str, str], lang: Lang) -> tuple[LogFilter, dict[str, str]]:
        problems = {}
        since, until = query.get("since", "").strip(), query.get("until", "").strip()
        for name, value in (("since", since), ("until", until)):
            if value:
                try:
                    date.fromisoformat(value)
                except ValueError:
                    problems[name] = text("not_a_date", lang, value=repr(value))
        stage = query.get("stage", "")
        if stage and stage not in Stage.codes():
            problems["stage"] = text("unknown_stage", lang, value=repr(stage))
        before = query.get("before", "")
        return cls(
            since=since if "since" not in problems else "",
            until=until if "until" not in problems else "",
            stage=stage if "stage" not in problems else "",
            actor=query.get("actor", "").strip(),
            decided=query.get("decided", "") if query.get("decided") in ("yes", "no") else "",
            differs=query.get("differs") == "on",
            before=int(before) if before.isdigit() else None,
        ), problems


def log_page(ctx: Ctx) -> Response:
    """The assessment log, newest first, one page at a time."""
    flt, problems = LogFilter.parse(dict(ctx.request.query_params), ctx.lang)
    backend = ctx.console.backend()
    until = (date.fromisoformat(flt.until) + timedelta(days=1)).isoformat() if flt.until else None
    rows: list[AuditRecord] = []
    cursor, exhausted = flt.before, False
    while len(rows) < PAGE + 1 and not exhausted:
        batch = backend.audit.recent(
            before_seq=cursor,
            limit=SCAN if flt.differs else PAGE + 1,
            since=flt.since or None,
            until=until,
            stage=flt.stage or None,
            actor=flt.actor or None,
            decided={"yes": True, "no": False}.get(flt.decided),
        )
        exhausted = len(batch) < (SCAN if flt.differs else PAGE + 1)
        if batch:
            cursor = batch[-1].seq
        for rec in batch:
            if not flt.differs or _differs(rec, backend.policy):
                rows.append(rec)
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    steps = backend.audit.steps_beside([r.assessment_id for r in rows])
    query = {k: v for k, v in ctx.request.query_params.items() if k != "before"}
    stages = [(s.value, s.label(ctx.lang)) for s in Stage]
    return ctx.render(
        "audit_log.html",
        flt=flt,
        problems=problems,
        stages=stages,
        rows=[_row(r, ctx, backend.policy, steps.get(r.assessment_id, [])) for r in rows],
        next_url=("?" + urlencode({**query, "before": rows[-1].seq}) if more and rows else None),
    )


def case_records_page(ctx: Ctx) -> Response:
    """What users wrote into the case store, as chained in the trail, newest first: each event recorded (who,
    for which person key, what and when) and each import (files' SHA-256 and counts); 100 a page."""
    raw = ctx.request.query_params.get("before", "")
    before = int(raw) if raw.isdigit() else None
    found = ctx.console.backend().audit.case_events(before_seq=before, limit=PAGE + 1)
    rows: list[dict[str, Any]] = []
    for rec in found[:PAGE]:
        detail = rec.detail
        if rec.kind == "event_recorded":
            try:
                what = EventType(str(detail.get("event_type"))).label(ctx.lang)
            except ValueError:
                what = str(detail.get("event_type"))
            value = detail.get("value")
            summary = f"{detail.get('date')} {what}" + (f" ({value})" if value is not None else "")
        else:
            counts = detail.get("counts", {})
            files = ", ".join(f"{name} {digest[:12]}…" for name, digest in sorted(detail.get("files", {}).items()))
            summary = text(
                "import_summary",
                ctx.lang,
                source=detail.get("source") or "-",
                persons=counts.get("persons_added", 0) + counts.get("persons_updated", 0),
                events=counts.get("events_added", 0),
                files=files or "-",
            )
        if detail.get("late"):
            summary += text("chained_late", ctx.lang)
        rows.append({"rec": rec, "kind": text(f"case_event_{rec.kind}", ctx.lang), "summary": summary})
    more = len(found) > PAGE
    return ctx.render(
        "case_records.html", rows=rows, next_url=f"?before={rows[-1]['rec'].seq}" if more and rows else None
    )


def _differs(rec: AuditRecord, policy: TierPolicy) -> bool:
    return answer_tier(rec.response) != answer_tier_by_risk(rec.response, policy)


def _row(rec: AuditRecord, ctx: Ctx, policy: TierPolicy, steps: list[DecisionStepRecord]) -> dict[str, Any]:
    resp = rec.response
    return {
        "rec": rec,
        "stage": Stage(rec.stage).label(ctx.lang),
        "probability": resp["probability"],
        "band": Band(resp["band"]["code"]).label(ctx.lang),
        "by_risk": _views.tier_label(answer_tier_by_risk(resp, policy), ctx.lang),
        "effective": _views.tier_label(answer_tier(rec.response), ctx.lang),
        "decisions": len(rec.overrides) + len(steps),
    }


def assessment_page(ctx: Ctx) -> Response:
    """One stored assessment: exactly what was returned, the full explanation, the decisions on it."""
    backend = ctx.console.backend()
    rec = backend.audit.get(ctx.request.path_params["assessment_id"])
    if rec is None:
        return ctx.render("error.html", status=404, status_code=404, message=text("not_found", ctx.lang))
    expl = rec.explanation
    contributions = expl.get("contributions", {})
    features = expl.get("features", {})
    rows = []
    for name in sorted(contributions, key=lambda n: -abs(float(contributions[n]))):
        spec = CATALOG.get(name)
        rows.append(
            {
                "name": name,
                "label": spec.label(ctx.lang) if spec else name,
                "value": spec.value_text(features.get(name), ctx.lang) if spec else str(features.get(name)),
                "contribution": float(contributions[name]),
            }
        )
    steps = backend.audit.steps_beside([rec.assessment_id]).get(rec.assessment_id, [])
    return ctx.render(
        "audit_assessment.html",
        rec=rec,
        row=_row(rec, ctx, backend.policy, steps),
        band_why=band_why(rec.response, ctx.lang),
        features=rows,
        expl=expl,
        steps=steps,
        reason_label=lambda c: ReasonCode(c).label(ctx.lang) if c in ReasonCode.codes() else c,
        returned=rec.response_json,
        returned_pretty=json.dumps(rec.response, ensure_ascii=False, indent=2),
        request_pretty=json.dumps(rec.request, ensure_ascii=False, indent=2)[:200_000],
    )


def band_why(response: dict[str, Any], lang: Lang) -> str | None:
    """The band an answer gave and the cut-offs it came from, as it stored them: "高（中 ≥ 8.18%，风险最高的30%；
    高 ≥ 17.42%，风险最高的10%）". None for an answer stored before it gave its cut-offs."""
    stored = response.get("band_cutoffs")
    if not isinstance(stored, dict):
        return None
    cutoffs = BandCutoffs.from_record(stored)

    def edge(band: Band, cutoff: ResolvedCutoff) -> str:
        at = f"{band.label(lang)} ≥ {percent(cutoff.probability)}"
        if cutoff.form == "probability":
            return at
        return f"{at}{'，' if lang == 'zh' else ', '}{stated_words(cutoff.form, cutoff.stated, lang)}"

    edges = ("；" if lang == "zh" else "; ").join(
        [edge(Band.MEDIUM, cutoffs.medium_from), edge(Band.HIGH, cutoffs.high_from)]
    )
    band = Band(response["band"]["code"]).label(lang)
    return f"{band}（{edges}）" if lang == "zh" else f"{band} ({edges})"


def verify_page(ctx: Ctx) -> Response:
    """The verify action: GET shows the button, POST walks every chain and shows the result."""
    backend = ctx.console.backend()
    values: dict[str, Any] = {
        "result": None,
        "chain_keys": {k for k in keys() if k.startswith("chain_")},
        "trail": backend.trail_status(),
    }
    if ctx.request.method == "POST":
        result = backend.verify_trail()
        values["trail"] = backend.trail_status()
        values["newer"] = sum(result.newer.values())
        sep = "，" if ctx.lang == "zh" else ", "
        values["newer_each"] = sep.join(f"{text('chain_' + c, ctx.lang)} {n}" for c, n in result.newer.items() if n)
        values["result"] = result
        values["head"] = {chain: (h["length"], h["last_hash"]) for chain, h in result.head.items()}
        values["checkpoint"] = result.checkpoint
    return ctx.render("verify.html", **values)


def decisions_page(ctx: Ctx) -> Response:
    """Tier decisions for a period: proposed, approved, rejected, pending and the override rate, by office,
    caseworker and reason code (:func:`serving.cases.decision_report`; an auditor sees every office, a
    supervisor their own)."""
    q = ctx.request.query_params
    today = date.today()
    problems: dict[str, str] = {}
    period = {}
    for name, default in (("start", today.replace(month=1, day=1)), ("end", today)):
        try:
            period[name] = date.fromisoformat(q.get(name) or default.isoformat())
        except ValueError:
            problems[name] = text("not_a_date", ctx.lang, value=repr(q.get(name)))
            period[name] = default
    every_office = ctx.principal.can(Permission.READ_ASSESSMENTS)
    office = (q.get("office") or None) if every_office else ctx.principal.office
    if not every_office and not office:
        return ctx.render("error.html", status=403, status_code=403, message=text("no_office", ctx.lang))
    report = None
    if period["end"] < period["start"]:
        problems["end"] = text("end_before_start", ctx.lang, end=period["end"], start=period["start"])
    else:
        try:
            report = decision_report(
                ctx.console.backend().cases, start=period["start"], end=period["end"], office=office
            )
        except CaseError as err:
            problems["office"] = err.text(ctx.lang)
    return ctx.render(
        "decisions.html",
        report=report,
        problems=problems,
        start=period["start"],
        end=period["end"],
        office=office or "",
        every_office=every_office,
        reason_label=lambda c: ReasonCode(c).label(ctx.lang) if c in ReasonCode.codes() else c,
    )


#: the revalidation report's sections, in the order shown (the record's key and the title's text key)
REVALIDATION_SECTIONS = (
    ("counts", "reval_counts"),
    ("performance", "reval_performance"),
    ("bands", "reval_bands"),
    ("groups", "reval_groups"),
    ("change", "reval_change"),
    ("overrides", "reval_overrides"),
    ("override_reasons", "reval_override_reasons"),
    ("review", "reval_review"),
)


def revalidation_page(ctx: Ctx) -> Response:
    """The revalidation reports ``riskctl revalidate`` wrote (newest first), one shown in full: how the models in
    service did on matured outcomes, by group, and how the approved decisions that departed from them did."""
    from serving.monitoring import revalidation_dates, stored_revalidation

    settings = ctx.console.settings
    dates = revalidation_dates(settings)
    asked = ctx.request.query_params.get("as_of", "")
    problems: dict[str, str] = {}
    chosen = dates[0] if dates else None
    if asked:
        try:
            chosen = date.fromisoformat(asked)
        except ValueError:
            problems["as_of"] = text("not_a_date", ctx.lang, value=repr(asked))
    record = stored_revalidation(settings, chosen) if chosen is not None and not problems else None
    if asked and not problems and record is None:
        return ctx.render("error.html", status=404, status_code=404, message=text("not_found", ctx.lang))
    sections = []
    if record is not None:
        for key, title in REVALIDATION_SECTIONS:
            rows = record.get(key) or []
            columns = list(rows[0]) if rows else []
            sections.append(
                {"title": title, "columns": columns, "rows": [[_shown(r[c]) for c in columns] for r in rows]}
            )
    return ctx.render(
        "revalidation.html", dates=dates, chosen=chosen, record=record, sections=sections, problems=problems
    )


def _shown(value: Any) -> str:
    """A report cell: a ratio or rate to 3 decimals, a count whole, nothing as a dash."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() and abs(value) >= 1 else f"{value:.3f}"
    return str(value)
