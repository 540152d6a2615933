"""The supervisor's step-down list page: decide a step-down at once, or "not now" with a reason.

Everything goes through :func:`serving.cases.step_down_list`, :func:`serving.cases.decide_step_down`
and :func:`serving.cases.defer_step_down`; a supervisor sees and acts on their own office only.
"""

from __future__ import annotations

import datetime as dt

from starlette.responses import Response

from serving.cases import CaseError, DeferReason, decide_step_down, defer_step_down, step_down_list
from serving.console import _views
from serving.console._cases import no_office
from serving.console._i18n import text
from serving.console._web import Ctx, form_str


def step_down(ctx: Ctx, *, status: int = 200, problem: str | None = None) -> Response:
    """Strict persons of the office who may now be ordinary, longest-waiting first."""
    office = ctx.principal.office
    if not office:
        return no_office(ctx)
    backend = ctx.console.backend()
    policy = backend.policy
    items = step_down_list(backend.cases, backend.audit, office=office, as_of=dt.date.today(), policy=policy)
    done = ctx.request.query_params.get("done")
    return ctx.render(
        "step_down.html",
        status=status,
        items=items,
        problem=problem,
        notice=text(f"done_{done}", ctx.lang) if done in ("stepped_down", "deferred") else None,
        reasons=[(r.value, r.label(ctx.lang)) for r in DeferReason],
        rule_text=_views.rule_text(policy, ctx.lang),
        tier_label=_views.tier_label,
    )


def decide(ctx: Ctx) -> Response:
    """Step a person down to ordinary now (a decision proposed and approved by the supervisor)."""
    backend = ctx.console.backend()
    try:
        decide_step_down(
            backend.cases,
            backend.audit,
            principal=ctx.principal,
            person_id=ctx.request.path_params["person_id"],
            assessment_id=form_str(ctx.form, "assessment_id"),
            comment=form_str(ctx.form, "comment"),
            policy=backend.policy,
            lang=ctx.lang,
        )
    except CaseError as err:
        return step_down(ctx, status=err.status, problem=err.text(ctx.lang))
    return ctx.redirect("/step_down?done=stepped_down")


def defer(ctx: Ctx) -> Response:
    """ "Not now", with a reason from the controlled list: the person returns when its period ends."""
    backend = ctx.console.backend()
    try:
        defer_step_down(
            backend.cases,
            principal=ctx.principal,
            person_id=ctx.request.path_params["person_id"],
            reason_code=form_str(ctx.form, "reason_code"),
            comment=form_str(ctx.form, "comment"),
        )
    except CaseError as err:
        return step_down(ctx, status=err.status, problem=err.text(ctx.lang))
    return ctx.redirect("/step_down?done=deferred")
