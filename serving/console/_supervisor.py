"""The supervisor's pages: pending proposals (approve or reject), the monthly review meeting.

Approval and rejection go through :func:`serving.cases.approve` / :func:`serving.cases.reject`
and the review through the service's own review (:meth:`serving.api._core.ServiceCore.review`, as
``/cases/review``); its print view and CSV are :func:`serving.cases.review_html` and
:func:`serving.cases.review_csv` of the stored run, exactly as ``/cases/review_run`` gives them.
Caseworkers may run and read the review of their office too; only supervisors decide.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.responses import Response

from features.vocab import Stage
from serving.cases import (
    CaseError,
    Colour,
    ReasonCode,
    ReviewPolicy,
    approve,
    decided_decisions,
    get_review,
    pending_decisions,
    reject,
    review_csv,
    review_html,
    review_runs,
    review_summary,
)
from serving.console import _views
from serving.console._cases import no_office
from serving.console._i18n import text
from serving.console._web import SECURITY_HEADERS, Backend, Ctx, form_str
from serving.monitoring import counted
from serving.scoring import NoModelError, answer_tier_by_risk

# the print view is serving.cases' own page, with its style sheet inline: allowed for it alone, nothing else
PRINT_HEADERS = {
    **SECURITY_HEADERS,
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
}


def proposals(ctx: Ctx, *, status: int = 200, problem: str | None = None) -> Response:
    """The office's pending proposals, each with the assessment behind it, and the latest decided ones."""
    office = ctx.principal.office
    if not office:
        return no_office(ctx)
    backend = ctx.console.backend()
    pending = pending_decisions(backend.cases, office=office)
    decided = decided_decisions(backend.cases, office=office)
    for row in pending:
        row["behind"] = _behind(ctx, backend, row["assessment_id"])
    return ctx.render(
        "proposals.html",
        status=status,
        pending=pending,
        decided=decided,
        problem=problem,
        notice=_notice(ctx),
        reason_label=lambda c: ReasonCode(c).label(ctx.lang),
    )


def decide(ctx: Ctx) -> Response:
    """Approve or reject one proposal with a comment (the path says which)."""
    backend = ctx.console.backend()
    action = ctx.request.path_params["action"]
    if action not in ("approve", "reject"):  # a mistyped or forged action decides nothing
        return ctx.render("error.html", status=404, status_code=404, message=text("not_found", ctx.lang))
    step = approve if action == "approve" else reject
    try:
        counted(
            step(
                backend.cases,
                backend.audit,
                principal=ctx.principal,
                decision_id=ctx.request.path_params["decision_id"],
                comment=form_str(ctx.form, "comment"),
                lang=ctx.lang,
                policy=backend.policy,
            )
        )
    except CaseError as err:
        return proposals(ctx, status=err.status, problem=err.text(ctx.lang))
    return ctx.redirect(f"/proposals?done={'approved' if action == 'approve' else 'rejected'}")


def review(ctx: Ctx, *, status: int = 200, problem: str | None = None) -> Response:
    """The review meeting page: run it for a date, or open an earlier run of the office."""
    office = ctx.principal.office
    if not office:
        return no_office(ctx)
    runs = review_runs(ctx.console.backend().cases, office=office)
    return ctx.render("review.html", status=status, runs=runs, problem=problem, today=dt.date.today().isoformat())


def run(ctx: Ctx) -> Response:
    """Run the review for the office and the date given (everyone scored and stored), then show it."""
    office = ctx.principal.office
    if not office:
        return no_office(ctx)
    backend = ctx.console.backend()
    try:
        as_of = dt.date.fromisoformat(form_str(ctx.form, "as_of"))
    except ValueError:
        return review(
            ctx, status=422, problem=text("review_not_a_date", ctx.lang, value=repr(form_str(ctx.form, "as_of")))
        )
    try:
        done = backend.review(ctx.principal, office=office, as_of=as_of, lang=ctx.lang)
    except CaseError as err:
        return review(ctx, status=err.status, problem=err.text(ctx.lang))
    except NoModelError as err:  # someone on the roll is at a stage no model serves: no run was stored
        return review(ctx, status=err.status, problem=err.text(ctx.lang))
    return ctx.redirect(f"/review/{done.run_id}")


def review_run(ctx: Ctx) -> Response:
    """One stored run: sorted by risk, four-colour alerts, mismatches, what moved; print view and CSV."""
    found = _run(ctx)
    if isinstance(found, Response):
        return found
    fmt = ctx.request.path_params.get("fmt", "")
    if fmt == "csv":
        name = f"review-{found.office}-{found.as_of}.csv"
        return Response(
            review_csv(found, ctx.lang),
            media_type="text/csv; charset=utf-8",
            headers={**SECURITY_HEADERS, "content-disposition": f'attachment; filename="{name}"'},
        )
    if fmt == "print":
        return Response(review_html(found, lang=ctx.lang), media_type="text/html; charset=utf-8", headers=PRINT_HEADERS)
    q = ctx.request.query_params
    rows = [
        row
        for row in found.rows
        if (not q.get("alert") or row.alert == q.get("alert")) and (not q.get("mismatch") or row.mismatch != "none")
    ]
    policy, tiers = ReviewPolicy.load(), ctx.console.backend().policy
    return ctx.render(
        "review_run.html",
        run=found,
        # why each row has its colour (the condition that gave it), when the run was made under today's policy
        why=lambda r: policy.alert_reason(r, found.policy_version, ctx.lang, tiers),
        **_views.alert_legend(policy, tiers, ctx.lang),
        rows=rows,
        alert=q.get("alert", ""),
        mismatch=bool(q.get("mismatch")),
        stage_labels={s.value: s.label(ctx.lang) for s in Stage},
        tier_label=_views.tier_label,
        colour_labels={c.value: c.label(ctx.lang) for c in Colour},
        # the run is stored as returned, in its own language; the page says it in the viewer's
        summary=lambda r: review_summary(r.probability, r.previous_probability, r.previous_as_of, ctx.lang),
    )


def _run(ctx: Ctx) -> Any:
    try:
        found = get_review(ctx.console.backend().cases, ctx.request.path_params["run_id"])
    except CaseError as err:
        return ctx.render("error.html", status=err.status, status_code=err.status, message=err.text(ctx.lang))
    if found.office != ctx.principal.office:
        return ctx.render("error.html", status=403, status_code=403, message=text("other_office_run", ctx.lang))
    return found


def _behind(ctx: Ctx, backend: Backend, assessment_id: str) -> dict[str, Any] | None:
    record = backend.audit.get(assessment_id)
    if record is None:
        return None
    a = _views.shown(backend, record, ctx.lang)  # in the viewer's language
    return {
        "id": assessment_id,
        "stage": Stage(record.stage).label(ctx.lang),
        "as_of": a["as_of"],
        "probability": a["probability"],
        "band": a["band"]["label"],
        "tier": a["tier"]["tier"]["label"],
        "by_risk": _views.tier_label(answer_tier_by_risk(a, backend.policy), ctx.lang),
        "reasons": [r["text"] for r in a["reasons"][:4]],
    }


def _notice(ctx: Ctx) -> str | None:
    done = ctx.request.query_params.get("done")
    return text(f"done_{done}", ctx.lang) if done in ("approved", "rejected") else None
