"""Score a posted record (the ``/score`` request as a form) and read one stored answer.

The office's daily work (roster, person, score by id, proposals) is in ``_cases.py``; this page
is for a person not (yet) in the case store. Scoring goes through the service's own
:meth:`~serving.api._service.RiskService.assess` (the code behind ``/score``: one scoring path, every
answer stored before it is shown).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from features.vocab import Stage
from serving.audit import AuditRecord
from serving.cases import CaseError, assessment_office
from serving.console import _forms, _views
from serving.console._i18n import text
from serving.console._web import Ctx
from serving.scoring import NoModelError, answer_tier, answer_tier_by_risk


def score_form(
    ctx: Ctx, *, problems: dict[str, str] | None = None, unavailable: str | None = None, status: int = 200
) -> Response:
    """The scoring form (the API's request, field by field); ``unavailable``: why the stage asked for was not
    scored (no model serves it), shown above the form as the user left it."""
    values = dict(ctx.form or {})
    return ctx.render(
        "score.html",
        status=status,
        unavailable=unavailable,
        fields=_forms.person_fields(ctx.lang),
        stages=_forms.stage_options(ctx.lang, unserved=ctx.console.backend().unserved),
        event_types=_forms.event_types(ctx.lang),
        values=values,
        problems=problems or {},
        field_problem=_forms.field_problem,
    )


def score(ctx: Ctx) -> Response:
    """Validate the form with the API's schema, score through the service, show the stored answer."""
    request, problems = _forms.score_request(ctx.form or {}, lang=ctx.lang)
    if request is None:
        return score_form(ctx, problems=problems, status=400)
    try:
        ctx.console.backend().check_posted(ctx.principal, [request])
        answer = ctx.console.backend().assess(request, actor=ctx.principal.user)
    except CaseError as err:
        said = err.text(ctx.lang)  # shown beside the field: without the field's name in front again
        for prefix in ("person.person_id：", "person.person_id: "):
            said = said.removeprefix(prefix)
        return score_form(ctx, problems={"person.person_id": said}, status=err.status)
    except NoModelError as err:
        return score_form(ctx, unavailable=err.text(ctx.lang), status=err.status)
    return ctx.redirect(f"/result/{answer.assessment_id}")


def result(ctx: Ctx) -> Response:
    """One stored answer as the caseworker reads it, with the reasons chart.

    Office scope: an assessment of a person in the case store is shown to the caseworkers of that person's
    office; one of a posted record (no person in the store) only to the caseworker who scored it.
    """
    backend = ctx.console.backend()
    record = backend.audit.get(ctx.request.path_params["assessment_id"])
    if record is None:
        return ctx.render("error.html", status=404, status_code=404, message=text("not_found", ctx.lang))
    office = assessment_office(backend.cases, record.assessment_id)
    mine = office == ctx.principal.office if office is not None else record.actor == ctx.principal.user
    if not mine:
        return ctx.render("error.html", status=403, status_code=403, message=text("other_office", ctx.lang))
    return ctx.render("result.html", **_answer_values(ctx, record))


def _answer_values(ctx: Ctx, record: AuditRecord) -> dict[str, Any]:
    backend = ctx.console.backend()
    response = _views.shown(backend, record, ctx.lang)
    stage = Stage(record.stage)
    return {
        "record": record,
        "a": response,
        "stage_label": stage.label(ctx.lang),
        "by_risk": _views.tier_label(answer_tier_by_risk(response, backend.policy), ctx.lang),
        "effective": _views.tier_label(answer_tier(record.response), ctx.lang),
        "chart": _views.reasons_chart(response, ctx.lang),
        "returned_json": json.dumps(record.response, ensure_ascii=False, indent=2),  # as returned
    }
