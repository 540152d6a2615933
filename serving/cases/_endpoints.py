"""The case flows' HTTP endpoints, mixed into :class:`serving.service.RiskService`.

=========================  ==========================  ===============================================
route                      role                        what it does
=========================  ==========================  ===============================================
``/cases/event``           caseworker                  record a dated event of a person of the office
``/cases/score``           caseworker                  score a person by id from the case store (stored)
``/cases/due``             caseworker, supervisor      the office's due list at a date
``/cases/propose``         caseworker                  propose a tier change with a reason code
``/cases/approve``         supervisor                  approve a proposal: the current tier changes
``/cases/reject``          supervisor                  reject a proposal: the current tier stays
``/cases/review``          caseworker, supervisor      run the monthly review meeting's list (stored)
``/cases/review_run``      caseworker, supervisor      a stored run as JSON, CSV or printable HTML
``/cases/decision_report`` supervisor, auditor         decisions and override rate for a period
=========================  ==========================  ===============================================

Caseworkers and supervisors act on their own office only (the office on their token).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

import bentoml
from pydantic import BaseModel
from starlette.responses import Response

from features.vocab import Lang
from serving.auth import Permission, Principal
from serving.cases import _decisions as decisions
from serving.cases._due import due_list
from serving.cases._errors import CaseError
from serving.cases._render import review_csv, review_html
from serving.cases._report import decision_report
from serving.cases._review import get_review, index_row, run_review
from serving.cases._schemas import (
    DecideIn,
    DecisionOut,
    DecisionReport,
    DueIn,
    DueList,
    EventIn,
    EventOut,
    ProposeIn,
    ReportIn,
    ReviewIn,
    ReviewRun,
    ReviewRunQuery,
    ScorePersonIn,
)
from serving.http import error_response
from serving.schemas import Assessment

if TYPE_CHECKING:
    from models.tier_policy import TierPolicy
    from serving.audit import AuditStore
    from serving.cases._store import CaseStore
    from serving.scoring import Scorer

log = logging.getLogger(__name__)

CASE_ROUTE_PERMISSIONS: dict[str, Permission] = {
    "/cases/event": Permission.RECORD_EVENT,
    "/cases/score": Permission.SCORE,
    "/cases/due": Permission.READ_CASES,
    "/cases/propose": Permission.PROPOSE,
    "/cases/approve": Permission.DECIDE,
    "/cases/reject": Permission.DECIDE,
    "/cases/review": Permission.REVIEW,
    "/cases/review_run": Permission.READ_CASES,
    "/cases/decision_report": Permission.REPORT_DECISIONS,
}

#: Error statuses of each case route besides 400, 401, 403 and 500 (the OpenAPI page documents them).
CASE_ROUTE_ERRORS: dict[str, tuple[int, ...]] = {
    "/cases/event": (404, 413, 415, 422),
    "/cases/score": (404, 413, 415, 422, 503),
    "/cases/due": (404, 413, 415),
    "/cases/propose": (404, 409, 413, 415, 422),
    "/cases/approve": (404, 409, 413, 415, 422),
    "/cases/reject": (404, 409, 413, 415, 422),
    "/cases/review": (404, 413, 415, 422),
    "/cases/review_run": (404, 413, 415),
    "/cases/decision_report": (404, 413, 415, 422),
}
#: Each case route's request and answer models.
CASE_ROUTE_MODELS: dict[str, tuple[type[BaseModel], type[BaseModel]]] = {
    "/cases/event": (EventIn, EventOut),
    "/cases/score": (ScorePersonIn, Assessment),
    "/cases/due": (DueIn, DueList),
    "/cases/propose": (ProposeIn, DecisionOut),
    "/cases/approve": (DecideIn, DecisionOut),
    "/cases/reject": (DecideIn, DecisionOut),
    "/cases/review": (ReviewIn, ReviewRun),
    "/cases/review_run": (ReviewRunQuery, ReviewRun),
    "/cases/decision_report": (ReportIn, DecisionReport),
}


def _refuse(ctx: bentoml.Context, err: CaseError, lang: str = "en") -> Any:
    ctx.response.status_code = err.status
    return error_response(err.status, err.text(lang), loc=err.loc)


def _principal(ctx: bentoml.Context) -> Principal:
    return ctx.request.state.principal


def _office(principal: Principal, office: str | None = None) -> str:
    """The caller's office; refuses a token without one, or a request for another office."""
    if not principal.office:
        raise CaseError(
            403,
            f"the token of {principal.user!r} names no office: issue one with 'riskctl token --office'",
            loc=["office"],
            zh="令牌未指定司法所",
        )
    if office is not None and office != principal.office:
        raise CaseError(
            403,
            f"office {office!r} is not the caller's office {principal.office!r}",
            loc=["office"],
            zh=f"无权查看其他司法所（{office}）",
        )
    return principal.office


class CaseEndpoints:
    """Endpoints of the case store; the service provides ``cases``, ``scorer``, ``audit``, ``policy``."""

    cases: CaseStore
    scorer: Scorer
    audit: AuditStore
    policy: TierPolicy
    _combined: Any
    _batch_slot: threading.Lock

    @bentoml.api(route="/cases/event", input_spec=EventIn)
    def record_event(self, ctx: bentoml.Context, **body: Any) -> EventOut:
        """Record a dated event for a person of the caller's office (validated as the canonical events)."""
        req, who = EventIn.model_construct(**body), _principal(ctx)
        try:
            office = _office(who)
            decisions.same_office(office, self.cases.person(req.person_id)["office"], req.person_id)
            row = self.cases.record_event(
                req.person_id,
                date=req.date,
                event_type=req.event_type,
                value=req.value,
                actor=who.user,
                as_of=req.as_of,
            )
        except CaseError as err:
            return _refuse(ctx, err)
        return EventOut(**row)

    @bentoml.api(route="/cases/score", input_spec=ScorePersonIn)
    def score_person(self, ctx: bentoml.Context, **body: Any) -> Assessment:
        """Score a person of the caller's office from the case store's record; stored like ``/score``."""
        from serving.scoring import NoModelError

        req = ScorePersonIn.model_construct(**body)
        try:
            text = self.score_by_id(
                _principal(ctx), person_id=req.person_id, stage=req.stage, as_of=req.as_of, lang=req.lang
            )
        except CaseError as err:
            return _refuse(ctx, err, req.lang)
        except NoModelError as err:
            return _refuse(ctx, CaseError(503, str(err), loc=["stage"]))
        return Response(text.encode("utf-8"), media_type="application/json")  # type: ignore[return-value]

    def score_by_id(
        self, principal: Principal, *, person_id: str, stage: str, as_of: Any = None, lang: Lang = "zh"
    ) -> str:
        """Score a person of ``principal``'s office from the case store's record (``/cases/score`` and the
        console): stored in the audit trail and indexed in the case store; returns the answer's JSON text
        as stored. Raises :class:`CaseError` (unknown person, another office) or ``NoModelError``."""
        decisions.same_office(_office(principal), self.cases.person(person_id)["office"], person_id)
        request = self.cases.score_request(person_id, stage=stage, as_of=as_of, lang=lang)
        text: str = self._combined((request, principal.user))
        answer = Assessment.model_validate_json(text)
        self.cases.note_assessments([index_row(answer, actor=principal.user, policy=self.policy)])
        return text

    @bentoml.api(route="/cases/due", input_spec=DueIn)
    def due(self, ctx: bentoml.Context, office: str, as_of: Any) -> DueList:
        """The office's roll on a date: current tier, last assessments, what is due, upcoming or overdue."""
        try:
            return due_list(self.cases, office=_office(_principal(ctx), office), as_of=as_of)
        except CaseError as err:
            return _refuse(ctx, err)

    @bentoml.api(route="/cases/propose", input_spec=ProposeIn)
    def propose(self, ctx: bentoml.Context, **body: Any) -> DecisionOut:
        """A caseworker proposes a tier change (reason code, written reason, the assessment behind it)."""
        req = ProposeIn.model_construct(**body)
        try:
            return decisions.propose(
                self.cases,
                self.audit,
                principal=_principal(ctx),
                person_id=req.person_id,
                to_tier=req.to_tier,
                reason_code=req.reason_code,
                reason=req.reason,
                assessment_id=req.assessment_id,
                policy=self.policy,
                lang=req.lang,
            )
        except CaseError as err:
            return _refuse(ctx, err, req.lang)

    @bentoml.api(route="/cases/approve", input_spec=DecideIn)
    def approve(self, ctx: bentoml.Context, **body: Any) -> DecisionOut:
        """A supervisor approves a proposal of the office: the person's current tier changes."""
        req = DecideIn.model_construct(**body)
        try:
            return decisions.approve(
                self.cases,
                self.audit,
                principal=_principal(ctx),
                decision_id=req.decision_id,
                comment=req.comment,
                lang=req.lang,
            )
        except CaseError as err:
            return _refuse(ctx, err, req.lang)

    @bentoml.api(route="/cases/reject", input_spec=DecideIn)
    def reject(self, ctx: bentoml.Context, **body: Any) -> DecisionOut:
        """A supervisor rejects a proposal of the office: the current tier stays."""
        req = DecideIn.model_construct(**body)
        try:
            return decisions.reject(
                self.cases,
                self.audit,
                principal=_principal(ctx),
                decision_id=req.decision_id,
                comment=req.comment,
                lang=req.lang,
            )
        except CaseError as err:
            return _refuse(ctx, err, req.lang)

    @bentoml.api(route="/cases/review", input_spec=ReviewIn)
    def review(self, ctx: bentoml.Context, office: str, as_of: Any, lang: Lang = "zh") -> ReviewRun:
        """The monthly review meeting: everyone on the office's roll scored and stored, sorted by risk."""
        who = _principal(ctx)
        try:
            with self._batch_slot:
                return run_review(
                    self.cases,
                    self.scorer,
                    self.audit,
                    office=_office(who, office),
                    as_of=as_of,
                    actor=who.user,
                    lang=lang,
                )
        except CaseError as err:
            return _refuse(ctx, err, lang)

    @bentoml.api(route="/cases/review_run", input_spec=ReviewRunQuery)
    def review_run(self, ctx: bentoml.Context, run_id: str, format: str = "json") -> ReviewRun:
        """A stored review run exactly as it was returned, or its CSV or printable HTML."""
        try:
            run = get_review(self.cases, run_id)
            _office(_principal(ctx), run.office)
        except CaseError as err:
            return _refuse(ctx, err)
        if format == "csv":
            return Response(
                review_csv(run),
                media_type="text/csv; charset=utf-8",  # type: ignore[return-value]
                headers={"Content-Disposition": f'attachment; filename="review-{run.as_of}.csv"'},
            )
        if format == "html":
            return Response(review_html(run), media_type="text/html; charset=utf-8")  # type: ignore[return-value]
        return run

    @bentoml.api(route="/cases/decision_report", input_spec=ReportIn)
    def decision_report(self, ctx: bentoml.Context, start: Any, end: Any, office: str | None = None) -> DecisionReport:
        """Tier decisions proposed, approved and rejected, and the override rate, for a period."""
        who = _principal(ctx)
        try:
            if who.can(Permission.READ_ASSESSMENTS):  # an auditor: every office
                if office is not None:
                    self.cases.check_office(office)
            else:
                office = _office(who, office)
            if end < start:
                raise CaseError(422, f"field 'end': {end} is before start {start}", loc=["end"])
            return decision_report(self.cases, start=start, end=end, office=office)
        except CaseError as err:
            return _refuse(ctx, err)
