"""The BentoML scoring service (design.md, "The job", "Interfaces"): the routes of :mod:`serving.api._routes`.

Endpoints take JSON and a bearer token each; the OpenAPI page is at ``/docs``, its document at
``/docs.json``. The read-only ones also answer ``GET`` with their fields in the query string
(``GET /assessment?assessment_id=...``, ``GET /verify``, ``GET /models``; ``/person_assessments`` stays
``POST``: a person id does not belong in a URL, which access logs keep). ``/healthz``, ``/livez``,
``/readyz`` and ``/metrics`` (BentoML's own; unknown paths are counted under one label) need no token.
Requests are checked before their body is parsed (``_limits``, ``_http``): at most ``RISK_MAX_BODY_BYTES`` (413)
and nested at most ``RISK_MAX_JSON_DEPTH`` levels (400) on every path, console included; JSON only (415).

Each handler is a thin adapter: it takes the validated request and the caller from BentoML, calls
:class:`~serving.api._core.ServiceCore` (the same object the console at ``/console`` calls, so there is one
scoring path) and turns a refusal into the one error shape. Answers that were stored in the audit trail
are sent as the very JSON bytes stored; a refused request writes nothing.

The three stage models are BentoML models declared on the class (``reoffence-<stage>:latest``, put there
by ``riskctl serve`` or ``riskctl models import`` from the MLflow ``@champion``), so a built Bento carries
them and serves without MLflow. A stage with no model in the store, or left out of ``RISK_SERVED_STAGES``
(``riskctl serve`` sets it to the stages that have a champion), is not served: every route that would score
it answers 503 with what a modeler does, in the caller's language, and stores nothing; ``/models`` and the
probes (``/healthz``, ``/readyz``) list the stages served and not. With no stage to serve, the worker does
not start. Each worker signs the chain heads every ``RISK_CHECKPOINT_INTERVAL_S`` and
at shutdown, and stops when the process that started it dies (``_process``).
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
from collections.abc import Callable, Collection
from typing import Any, cast

import bentoml
from bentoml.models import BentoModel
from starlette.responses import JSONResponse, Response

from features.vocab import Lang, Stage
from serving.api._bentoml import bound_metric_labels, is_serving_worker, telemetry_off
from serving.api._core import ServiceCore, stored_assessment
from serving.api._headers import SecurityHeadersMiddleware
from serving.api._http import (
    BearerAuthMiddleware,
    StageStatusMiddleware,
    error_response,
    keep_refused_input_out_of_logs,
)
from serving.api._limits import BodyLimitsMiddleware
from serving.api._openapi import service_openapi
from serving.api._process import die_with_parent
from serving.api._refusals import LocalisedRefusalMiddleware
from serving.api._routes import LOCALISED_ROUTES, READ_ONLY_ROUTES, ROUTE_ERRORS, ROUTE_MODELS, ROUTE_PERMISSIONS
from serving.auth import Permission, Principal
from serving.cases import (
    CaseError,
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
    approve,
    decision_report,
    due_list,
    get_review,
    office_of,
    propose,
    reject,
    review_csv,
    review_html,
    same_office,
)
from serving.console import create_app as create_console
from serving.monitoring import counted
from serving.scoring import NoModelError, nothing_to_serve, served_models
from serving.scoring.schemas import (
    Assessment,
    AssessmentQuery,
    BatchRequest,
    BatchResponse,
    EmptyRequest,
    ModelsResponse,
    PersonAssessments,
    PersonQuery,
    ScoreRequest,
    StoredAssessment,
    VerifyResponse,
)
from serving.settings import get_settings

__all__ = ["READ_ONLY_ROUTES", "ROUTE_ERRORS", "ROUTE_MODELS", "ROUTE_PERMISSIONS", "RiskService"]

log = logging.getLogger(__name__)
_PREFIX = get_settings().registry_prefix  # model names come from configuration (RISK_REGISTRY_PREFIX)
JSON = "application/json"
#: :func:`serving.cases.approve` or :func:`serving.cases.reject`.
DecisionStep = Callable[..., DecisionOut]


@bentoml.service(name="reoffence_risk", traffic={"timeout": 300}, workers="cpu_count", threads=16)
class RiskService:
    """Re-offending risk at intake, mid-term and release, with reasons, tiers and an audit trail."""

    intake_model = BentoModel(f"{_PREFIX}-intake:latest")
    midterm_model = BentoModel(f"{_PREFIX}-midterm:latest")
    release_model = BentoModel(f"{_PREFIX}-release:latest")

    def __init__(self) -> None:
        if is_serving_worker():  # a worker of bentoml serve, not an in-process app
            die_with_parent()
        settings = get_settings()
        # the class's model references; .stored looks in the local (or the Bento's) store only, never a remote one
        declared: dict[Stage, BentoModel] = {stage: getattr(type(self), f"{stage.value}_model") for stage in Stage}
        served, unserved = served_models(lambda stage: declared[stage].stored, only=settings.served_stages)
        if not served:
            raise RuntimeError(nothing_to_serve(unserved))
        self.core = ServiceCore(settings, served, unserved=unserved)
        self.core.start()
        keep_refused_input_out_of_logs(api.input_spec.__name__ for api in _bentoml_service().apis.values())
        log.info("serving %s", ", ".join(f"{m.name} v{m.version}" for m in served.values()))
        for u in unserved.values():
            log.warning("not serving the %s stage (%s): its requests are answered with 503", u.stage, u.reason)
        tune_garbage_collector()

    @bentoml.on_shutdown
    def shutdown(self) -> None:
        """Sign a last checkpoint of the chain heads, release the databases."""
        self.core.close()

    # scoring

    @bentoml.api(input_spec=ScoreRequest, output_spec=Assessment)
    def score(self, ctx: bentoml.Context, **request: Any) -> Response:
        """Score one person at one stage: calibrated probability, band, tier, reasons; stored in the audit trail."""
        req, who = ScoreRequest.model_construct(**request), _principal(ctx)
        try:
            self.core.check_posted(who, [req])
            text = self.core.assess_text(req, actor=who.user)
        except CaseError as err:
            return refuse_case(ctx, err, req.lang)
        except NoModelError as err:
            return refuse(ctx, err.status, err.text(req.lang), loc=["stage"])
        return json_answer(text)

    @bentoml.api(input_spec=BatchRequest, output_spec=BatchResponse)
    def score_batch(self, ctx: bentoml.Context, records: list[ScoreRequest]) -> Response:
        """Score many people at once (monthly review meeting); every answer is stored, all or none."""
        limit = self.core.settings.max_batch
        if len(records) > limit:
            return refuse(ctx, 413, f"batch of {len(records)} records is over the limit of {limit}", loc=["records"])
        who = _principal(ctx)
        try:
            self.core.check_posted(who, records, where="records")
            answers = self.core.assess_batch(records, actor=who.user)
        except CaseError as err:
            return refuse_case(ctx, err, records[0].lang if records else "en")
        except NoModelError as err:
            first = next(i for i, r in enumerate(records) if Stage(r.stage) in err.stages)
            return refuse(ctx, err.status, err.text(records[first].lang), loc=["records", first, "stage"])
        # the answers' JSON exactly as stored, one after the other (a BatchResponse)
        return json_answer(f'{{"count":{len(answers)},"assessments":[{",".join(answers)}]}}')

    # the auditor's and the modeler's

    @bentoml.api(input_spec=AssessmentQuery, output_spec=StoredAssessment)
    def assessment(self, assessment_id: str) -> StoredAssessment | JSONResponse:
        """One stored assessment: the request, the answer as returned, the full explanation, overrides."""
        record = self.core.audit.get(assessment_id)
        if record is None:
            return error_response(404, f"no assessment {assessment_id!r}", loc=["assessment_id"])
        return stored_assessment(record)

    @bentoml.api(input_spec=PersonQuery)
    def person_assessments(self, person_id: str) -> PersonAssessments:
        """Every stored assessment of one person, oldest first (looked up by the keyed hash of the id)."""
        audit = self.core.audit
        records = audit.by_person(person_id)
        return PersonAssessments(
            person_key=audit.person_key(person_id),
            count=len(records),
            assessments=[stored_assessment(r) for r in records],
        )

    @bentoml.api(input_spec=EmptyRequest)
    def verify(self) -> VerifyResponse:
        """Check the hash chains (assessments, overrides, decision steps) against every signed checkpoint;
        if intact, sign the heads checked.

        Names the first broken record, if any. The signed checkpoint in the answer can be verified
        later with the public key alone (``riskctl audit verify --checkpoint FILE --public-key FILE``).
        """
        return self.core.verify_trail()

    @bentoml.api(input_spec=EmptyRequest)
    def models(self) -> ModelsResponse:
        """The model version serving each stage, with the evaluation it was promoted on; the stages no model
        serves (answered with 503) under ``not_served``."""
        return self.core.models()

    # the case routes: caseworkers and supervisors act on their own office only (the office on their token)

    @bentoml.api(route="/cases/event", input_spec=EventIn, output_spec=EventOut)
    def record_event(self, ctx: bentoml.Context, **body: Any) -> EventOut | JSONResponse:
        """Record a dated event for a person of the caller's office (validated as the canonical events)."""
        req, who, cases = EventIn.model_construct(**body), _principal(ctx), self.core.cases
        try:
            same_office(office_of(who), cases.person(req.person_id)["office"], req.person_id)
            row = cases.record_event(
                req.person_id,
                date=req.date,
                event_type=req.event_type,
                value=req.value,
                actor=who.user,
                as_of=req.as_of,
                audit=self.core.audit,
            )
        except CaseError as err:
            return refuse_case(ctx, err)
        return EventOut(**row)

    @bentoml.api(route="/cases/score", input_spec=ScorePersonIn, output_spec=Assessment)
    def score_person(self, ctx: bentoml.Context, **body: Any) -> Response:
        """Score a person of the caller's office from the case store's record; stored like ``/score``."""
        req = ScorePersonIn.model_construct(**body)
        try:
            text = self.core.score_by_id(
                _principal(ctx), person_id=req.person_id, stage=req.stage, as_of=req.as_of, lang=req.lang
            )
        except CaseError as err:
            return refuse_case(ctx, err, req.lang)
        except NoModelError as err:
            return refuse(ctx, err.status, err.text(req.lang), loc=["stage"])
        return json_answer(text)

    @bentoml.api(route="/cases/due", input_spec=DueIn, output_spec=DueList)
    def due(self, ctx: bentoml.Context, office: str, as_of: dt.date) -> DueList | JSONResponse:
        """The office's roll on a date: current tier, last assessments, what is due, upcoming or overdue."""
        try:
            return due_list(self.core.cases, office=office_of(_principal(ctx), office), as_of=as_of)
        except CaseError as err:
            return refuse_case(ctx, err)

    @bentoml.api(route="/cases/propose", input_spec=ProposeIn, output_spec=DecisionOut)
    def propose(self, ctx: bentoml.Context, **body: Any) -> DecisionOut | JSONResponse:
        """A caseworker proposes a tier change (reason code, written reason, the assessment behind it)."""
        req = ProposeIn.model_construct(**body)
        try:
            return counted(
                propose(
                    self.core.cases,
                    self.core.audit,
                    principal=_principal(ctx),
                    person_id=req.person_id,
                    to_tier=req.to_tier,
                    reason_code=req.reason_code,
                    reason=req.reason,
                    assessment_id=req.assessment_id,
                    policy=self.core.policy,
                    lang=req.lang,
                )
            )
        except CaseError as err:
            return refuse_case(ctx, err, req.lang)

    @bentoml.api(route="/cases/approve", input_spec=DecideIn, output_spec=DecisionOut)
    def approve(self, ctx: bentoml.Context, **body: Any) -> DecisionOut | JSONResponse:
        """A supervisor approves a proposal of the office: the person's current tier changes."""
        return self._decide(ctx, DecideIn.model_construct(**body), approve)

    @bentoml.api(route="/cases/reject", input_spec=DecideIn, output_spec=DecisionOut)
    def reject(self, ctx: bentoml.Context, **body: Any) -> DecisionOut | JSONResponse:
        """A supervisor rejects a proposal of the office: the current tier stays."""
        return self._decide(ctx, DecideIn.model_construct(**body), reject)

    def _decide(self, ctx: bentoml.Context, req: DecideIn, step: DecisionStep) -> DecisionOut | JSONResponse:
        try:
            return counted(
                step(
                    self.core.cases,
                    self.core.audit,
                    principal=_principal(ctx),
                    decision_id=req.decision_id,
                    comment=req.comment,
                    lang=req.lang,
                    policy=self.core.policy,
                )
            )
        except CaseError as err:
            return refuse_case(ctx, err, req.lang)

    @bentoml.api(route="/cases/review", input_spec=ReviewIn, output_spec=ReviewRun)
    def review(self, ctx: bentoml.Context, office: str, as_of: dt.date, lang: Lang = "zh") -> ReviewRun | JSONResponse:
        """The monthly review meeting: everyone on the office's roll scored and stored, sorted by risk."""
        try:
            return self.core.review(_principal(ctx), office=office, as_of=as_of, lang=lang)
        except CaseError as err:
            return refuse_case(ctx, err, lang)
        except NoModelError as err:  # someone on the roll is at a stage no model serves: no run is stored
            return refuse(ctx, err.status, err.text(lang), loc=[])

    @bentoml.api(route="/cases/review_run", input_spec=ReviewRunQuery, output_spec=ReviewRun)
    def review_run(self, ctx: bentoml.Context, run_id: str, format: str = "json") -> ReviewRun | Response:
        """A stored review run exactly as it was returned, or its CSV or printable HTML."""
        try:
            run = get_review(self.core.cases, run_id)
            office_of(_principal(ctx), run.office)
        except CaseError as err:
            return refuse_case(ctx, err)
        if format == "csv":
            return Response(
                review_csv(run),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="review-{run.as_of}.csv"'},
            )
        if format == "html":
            return Response(review_html(run), media_type="text/html; charset=utf-8")
        return run

    @bentoml.api(route="/cases/decision_report", input_spec=ReportIn, output_spec=DecisionReport)
    def decision_report(
        self, ctx: bentoml.Context, start: dt.date, end: dt.date, office: str | None = None
    ) -> DecisionReport | JSONResponse:
        """Tier decisions proposed, approved and rejected, and the override rate, for a period."""
        who = _principal(ctx)
        try:
            if who.can(Permission.READ_ASSESSMENTS):  # an auditor: every office
                if office is not None:
                    self.core.cases.check_office(office)
            else:
                office = office_of(who, office)
            if end < start:
                raise CaseError(422, f"field 'end': {end} is before start {start}", loc=["end"])
            return decision_report(self.core.cases, start=start, end=end, office=office)
        except CaseError as err:
            return refuse_case(ctx, err)


def tune_garbage_collector() -> None:
    """Keep Python's cyclic garbage collector off the start-up objects and out of a batch's way.

    A batch of 5,000 people allocates millions of small objects (validated events, answers), and
    with the default thresholds the collector walks every live object many times meanwhile:
    about a third of a batch's scoring time. The objects loaded at start-up (models, libraries)
    live for the whole process, so they are frozen out of collection (after one collection, so
    that no start-up garbage is kept), and the youngest generation is collected every 100,000
    allocations instead of every 700; older generations keep their default ratios, so cycles
    are still collected.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 10, 10)


def json_answer(body: str) -> Response:
    """The answer as these JSON bytes exactly (those stored in the audit trail); BentoML sends a
    ``Response`` as it is, while the route's ``output_spec`` documents the answer's schema."""
    return Response(body.encode("utf-8"), media_type=JSON)


def refuse(ctx: bentoml.Context, status: int, message: str, *, loc: list[str | int]) -> JSONResponse:
    """An error answer from a handler that takes ``ctx``: BentoML copies ``ctx``'s status onto the response."""
    ctx.response.status_code = status
    return error_response(status, message, loc=loc)


def refuse_case(ctx: bentoml.Context, err: CaseError, lang: str = "en") -> JSONResponse:
    """A refused case request, its message in the caller's language."""
    return refuse(ctx, err.status, err.text(lang), loc=err.loc)


def _principal(ctx: bentoml.Context) -> Principal:
    principal: Principal = ctx.request.state.principal
    return principal


def _openapi() -> dict[str, Any]:
    return service_openapi(
        _bentoml_service().openapi_spec.asdict(),
        permissions=ROUTE_PERMISSIONS,
        read_only=READ_ONLY_ROUTES,
        errors=ROUTE_ERRORS,
        models=ROUTE_MODELS,
    )


def _bentoml_service() -> Any:
    # @bentoml.service makes the class a bentoml.Service; mypy keeps the class's own type (python/mypy#3135)
    return cast(Any, RiskService)


def _stage_status() -> dict[str, Any] | None:
    """The running service's served and unserved stages (None before its instance exists)."""
    try:
        service = bentoml.get_current_service()
    except bentoml.exceptions.BentoMLException:
        return None
    core: ServiceCore | None = getattr(service, "core", None)
    return None if core is None else core.stage_status()


def declare_served_models(stages: Collection[Stage] | None) -> None:
    """Declare to BentoML only the models of ``stages`` (None: all three).

    ``bentoml serve`` resolves every model a service declares before it starts, and a model missing from the
    local store is then looked for in a cloud store and stops the start: a stage left out of
    ``RISK_SERVED_STAGES`` must not be declared. The class keeps its three references, which the worker reads
    only for the stages it serves.
    """
    service = _bentoml_service()
    names = {f"{_PREFIX}-{Stage(stage).value}" for stage in (Stage if stages is None else stages)}
    service.models[:] = [model for model in _DECLARED if model.tag.name in names]


telemetry_off()  # the service (and a Bento of it) sends no usage telemetry unless RISK_TELEMETRY=true
_DECLARED = list(_bentoml_service().models)  # the three stage models, as the class declares them
declare_served_models(get_settings().served_stages)  # reads the environment only, like _PREFIX
# outermost of the service's own: the security headers of every answer (API, /docs, probes, console)
_bentoml_service().add_asgi_middleware(SecurityHeadersMiddleware)
# then the size and depth of every body (API, console, unknown paths) before parsing
_bentoml_service().add_asgi_middleware(BodyLimitsMiddleware)
_bentoml_service().add_asgi_middleware(
    BearerAuthMiddleware, permissions=ROUTE_PERMISSIONS, read_only=READ_ONLY_ROUTES, openapi=_openapi
)
# refusals in the caller's language (lang=zh: Chinese messages, the same field paths)
_bentoml_service().add_asgi_middleware(LocalisedRefusalMiddleware, models=LOCALISED_ROUTES)
# the health and readiness probes say which stages are served
_bentoml_service().add_asgi_middleware(StageStatusMiddleware, status=_stage_status)
bound_metric_labels(known=[*ROUTE_PERMISSIONS, "/docs", "/docs.json", "/docs.js", "/", "/schema.json"])
_bentoml_service().mount_asgi_app(create_console(), path="/console", name="console")
