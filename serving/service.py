"""The BentoML scoring service (design.md, "The job", "Interfaces").

Endpoints (JSON in and out, a bearer token each; the OpenAPI page is at ``/docs``, its document at
``/docs.json``). The read-only ones also answer ``GET`` with their fields in the query string:
``GET /assessment?assessment_id=...``, ``GET /verify``, ``GET /models`` (``/person_assessments``
stays ``POST``: a person id does not belong in a URL, which access logs keep):

=====================  ============  =====================================================
route                  role          what it does
=====================  ============  =====================================================
``/score``             caseworker    one person's risk, band, tier and reasons (stored)
``/score_batch``       caseworker    the same for up to ``RISK_MAX_BATCH`` records (stored)
``/assessment``        auditor       one stored assessment with explanation and overrides
``/person_assessments`` auditor      every stored assessment of one person
``/verify``            auditor       check the hash chains against the signed checkpoints; sign one
``/models``            modeler       the model version serving each stage, with its evaluation
=====================  ============  =====================================================

The case store's endpoints (``/cases/...``: record events, score by person id, due list, tier
decisions, the monthly review meeting, the decision report) are in ``serving/cases/_endpoints.py``.
They replace the earlier ``/override``: a tier change is now a proposal approved by a supervisor;
overrides recorded before stay readable in ``/assessment``.

``/healthz``, ``/livez``, ``/readyz`` and ``/metrics`` (BentoML's own; unknown paths are counted
under one label) need no token. Requests are checked before their body is parsed (serving/http.py):
JSON only (415), at most ``RISK_MAX_BODY_BYTES`` (413).

The web console for caseworkers and auditors (``serving.console``) is mounted at ``/console``: its
users sign in there with the same tokens, and it calls this service's own :meth:`RiskService.assess`
and audit store.

The three stage models are BentoML models declared on the class (``reoffence-<stage>:latest``,
put there by ``riskctl serve`` or ``riskctl models import`` from the MLflow ``@champion``), so a
built Bento carries them and serves without MLflow. Every answer is committed to the audit store
before it is returned, as the very JSON bytes sent; a refused request writes nothing. Each worker
signs the chain heads (serving/checkpoints) every ``RISK_CHECKPOINT_INTERVAL_S`` and at shutdown,
and stops when the process that started it dies (serving/process.py).
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import bentoml
from bentoml._internal.context import server_context
from bentoml.models import BentoModel
from pydantic import BaseModel
from starlette.responses import Response

from features.settings import get_settings
from features.vocab import Stage
from models.tier_policy import TierPolicy
from serving._metrics import bound_metric_labels
from serving._openapi import service_openapi
from serving._refusals import LocalisedRefusalMiddleware
from serving.audit import AuditRecord, AuditStore
from serving.auth import Permission, Principal, load_or_create, store_new_tokens
from serving.cases import CaseStore
from serving.cases._endpoints import CASE_ROUTE_ERRORS, CASE_ROUTE_MODELS, CASE_ROUTE_PERMISSIONS, CaseEndpoints
from serving.cases._schemas import DecideIn, ProposeIn, ReviewIn, ScorePersonIn
from serving.checkpoints import Checkpointer, CheckpointLog, expectations, load_or_create_key
from serving.combine import Combiner
from serving.console import create_app as create_console
from serving.http import BearerAuthMiddleware, error_response, keep_refused_input_out_of_logs
from serving.model_store import ServedModel, load_served
from serving.process import die_with_parent
from serving.schemas import (
    Assessment,
    AssessmentQuery,
    BatchRequest,
    BatchResponse,
    EmptyRequest,
    ModelsResponse,
    OverrideOut,
    PersonAssessments,
    PersonQuery,
    ScoreRequest,
    StageModelInfo,
    StoredAssessment,
    VerifyResponse,
)
from serving.scoring import NoModelError, Scorer

log = logging.getLogger(__name__)
_PREFIX = get_settings().registry_prefix  # model names come from configuration (RISK_REGISTRY_PREFIX)

ROUTE_PERMISSIONS = {
    "/score": Permission.SCORE,
    "/score_batch": Permission.SCORE,
    **CASE_ROUTE_PERMISSIONS,
    "/assessment": Permission.READ_ASSESSMENTS,
    "/person_assessments": Permission.READ_ASSESSMENTS,
    "/verify": Permission.VERIFY,
    "/models": Permission.MODEL_INFO,
}
T = TypeVar("T")
R = TypeVar("R")
#: Read-only routes that also answer GET, with their query fields.
READ_ONLY_ROUTES = {"/assessment": ("assessment_id",), "/verify": (), "/models": ()}
#: Error statuses each route may answer besides 400, 401, 403 and 500 (documented in the OpenAPI page).
ROUTE_ERRORS = {
    "/score": (413, 415, 503),
    "/score_batch": (413, 415, 503),
    "/assessment": (404, 413, 415),
    "/person_assessments": (413, 415),
    "/verify": (413, 415),
    "/models": (413, 415),
    **CASE_ROUTE_ERRORS,
}
JSON = "application/json"
#: Each route's request and answer models (documented as pydantic writes their JSON Schemas).
ROUTE_MODELS: dict[str, tuple[type[BaseModel], type[BaseModel]]] = {
    "/score": (ScoreRequest, Assessment),
    "/score_batch": (BatchRequest, BatchResponse),
    "/assessment": (AssessmentQuery, StoredAssessment),
    "/person_assessments": (PersonQuery, PersonAssessments),
    "/verify": (EmptyRequest, VerifyResponse),
    "/models": (EmptyRequest, ModelsResponse),
    **CASE_ROUTE_MODELS,
}


@bentoml.service(name="reoffence_risk", traffic={"timeout": 300}, workers="cpu_count", threads=16)
class RiskService(CaseEndpoints):
    """Re-offending risk at intake, mid-term and release, with reasons, tiers and an audit trail."""

    intake_model = BentoModel(f"{_PREFIX}-intake:latest")
    midterm_model = BentoModel(f"{_PREFIX}-midterm:latest")
    release_model = BentoModel(f"{_PREFIX}-release:latest")

    def __init__(self) -> None:
        if server_context.worker_index is not None:  # a worker of bentoml serve, not an in-process app
            die_with_parent()
        settings = get_settings()
        self.settings = settings
        self.policy = TierPolicy.load()
        served = {stage: load_served(getattr(self, f"{stage.value}_model"), stage) for stage in Stage}
        self.scorer = Scorer(served, self.policy)
        auth, created = load_or_create(settings.resolved_auth_file())
        if created:
            store_new_tokens(created, settings.home / "tokens")
        self.audit = AuditStore(settings.resolved_audit_url(), secret=auth.audit_secret)
        self.cases = CaseStore.open(settings)
        self.checkpoints = Checkpointer(
            self.audit.head,
            load_or_create_key(settings.resolved_signing_key_file()),
            CheckpointLog(settings.resolved_checkpoint_dir()),
            interval_s=settings.checkpoint_interval_s,
            signer=f"{socket.gethostname()}:{os.getpid()}",
        )
        self.checkpoints.start()
        # concurrent /score calls share one scoring pass and one audit commit (serving/combine.py); a
        # group that fails is retried request by request (nothing of it was stored), so that one
        # failing request never fails the others that happened to share its group
        self._combined = score_combiner(self._assess_each)
        # the 16 threads are for /score; batches of thousands go one at a time per worker
        self._batch_slot = threading.Lock()
        # @bentoml.service makes the class a bentoml.Service; mypy keeps the class's own type (python/mypy#3135)
        keep_refused_input_out_of_logs(api.input_spec.__name__ for api in cast(Any, RiskService).apis.values())
        log.info("serving %s", ", ".join(f"{m.name} v{m.version}" for m in served.values()))
        tune_garbage_collector()

    @bentoml.on_shutdown
    def shutdown(self) -> None:
        """Sign a last checkpoint of the chain heads, release the database."""
        self.checkpoints.stop()
        self.audit.close()

    @bentoml.api(input_spec=ScoreRequest)
    def score(self, ctx: bentoml.Context, **request: Any) -> Assessment:
        """Score one person at one stage: calibrated probability, band, tier, reasons; stored in the audit trail."""
        try:
            body = self._combined((ScoreRequest.model_construct(**request), _principal(ctx).user))
        except NoModelError as err:
            return refuse(ctx, 503, str(err), loc=["stage"])
        return json_answer(body)

    @bentoml.api(input_spec=BatchRequest)
    def score_batch(self, ctx: bentoml.Context, records: list[ScoreRequest]) -> BatchResponse:
        """Score many people at once (monthly review meeting); every answer is stored, all or none."""
        if len(records) > self.settings.max_batch:
            return refuse(
                ctx,
                413,
                f"batch of {len(records)} records is over the limit of {self.settings.max_batch}",
                loc=["records"],
            )
        try:
            with self._batch_slot:
                answers = self._assess_each([(record, _principal(ctx).user) for record in records])
        except NoModelError as err:
            return refuse(ctx, 503, str(err), loc=["records", "stage"])
        # the answers' JSON exactly as stored, one after the other (a BatchResponse)
        body = f'{{"count":{len(answers)},"assessments":[{",".join(answers)}]}}'
        return json_answer(body)

    @bentoml.api(input_spec=AssessmentQuery)
    def assessment(self, assessment_id: str) -> StoredAssessment:
        """One stored assessment: the request, the answer as returned, the full explanation, overrides."""
        record = self.audit.get(assessment_id)
        if record is None:  # BentoML passes a Response through; the annotation is the schema of a found one
            return cast(Any, error_response(404, f"no assessment {assessment_id!r}", loc=["assessment_id"]))
        return stored_assessment(record)

    @bentoml.api(input_spec=PersonQuery)
    def person_assessments(self, person_id: str) -> PersonAssessments:
        """Every stored assessment of one person, oldest first (looked up by the keyed hash of the id)."""
        records = self.audit.by_person(person_id)
        return PersonAssessments(
            person_key=self.audit.person_key(person_id),
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
        return self.verify_trail()

    def verify_trail(self) -> VerifyResponse:
        """:meth:`verify` for the service's own callers (the console): the same check, the same checkpoint."""
        signed = self.checkpoints.log.read()
        result = self.audit.verify(expect=expectations(signed, self.checkpoints.public_key()), allow_newer=True)
        heads = result.heads or self.audit.head()
        checkpoint = self.checkpoints.sign(head=heads, force=False).to_dict() if result.ok else None
        return VerifyResponse(
            ok=result.ok,
            checked=result.checked,
            first_broken=result.first_broken,
            problem=result.problem,
            checkpoints_checked=len(signed),
            checkpoint=checkpoint,
            head={chain: {"length": n, "last_hash": h} for chain, (n, h) in heads.items()},
        )

    @bentoml.api(input_spec=EmptyRequest)
    def models(self) -> ModelsResponse:
        """The model version serving each stage, with the evaluation it was promoted on."""
        return ModelsResponse(
            policy_version=self.policy.version, models=[model_info(self.scorer.models[stage]) for stage in Stage]
        )

    def assess(self, request: ScoreRequest, *, actor: str) -> Assessment:
        """Score one validated request for ``actor``, stored before it is returned (the console's path;
        ``/score`` sends the stored JSON bytes themselves)."""
        return Assessment.model_validate_json(self._combined((request, actor)))

    def _assess_each(self, items: list[tuple[ScoreRequest, str]]) -> list[str]:
        """Score each (request, actor); commit every answer to the audit trail before any is returned.

        Returns each answer's JSON text: what is stored is what is sent, byte for byte.
        """
        scored = self.scorer.score([request for request, _ in items])
        answers = [s.assessment.model_dump_json() for s in scored]
        self.audit.append_many(
            [s.audit_fields(actor, answer=answer) for s, (_, actor), answer in zip(scored, items, answers, strict=True)]
        )
        return answers


def score_combiner(process: Callable[[list[T]], Sequence[R]]) -> Combiner[T, R]:
    """The combiner of ``/score`` requests: a group that fails for any reason (a model missing, the
    audit store refusing one record) is retried request by request, so one failing request never
    fails the others that happened to share its group; a failed group stored nothing (one audit
    transaction), so nothing is stored twice."""
    return Combiner(process, retry_alone=(Exception,))


def _openapi() -> dict[str, Any]:
    return service_openapi(
        cast(Any, RiskService).openapi_spec.asdict(),
        permissions=ROUTE_PERMISSIONS,
        read_only=READ_ONLY_ROUTES,
        errors=ROUTE_ERRORS,
        models=ROUTE_MODELS,
    )


cast(Any, RiskService).add_asgi_middleware(
    BearerAuthMiddleware,
    permissions=ROUTE_PERMISSIONS,  # see __init__
    read_only=READ_ONLY_ROUTES,
    openapi=_openapi,
)
# refusals in the caller's language (lang=zh: Chinese messages, the same field paths)
cast(Any, RiskService).add_asgi_middleware(
    LocalisedRefusalMiddleware,
    models={
        "/score": ScoreRequest,
        "/score_batch": BatchRequest,
        "/cases/score": ScorePersonIn,
        "/cases/propose": ProposeIn,
        "/cases/approve": DecideIn,
        "/cases/reject": DecideIn,
        "/cases/review": ReviewIn,
    },
)
bound_metric_labels(known=[*ROUTE_PERMISSIONS, "/docs", "/docs.json", "/", "/schema.json"])
cast(Any, RiskService).mount_asgi_app(create_console(), path="/console", name="console")


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


def json_answer(body: str) -> Any:
    """The answer as these JSON bytes exactly (those stored in the audit trail); BentoML sends a
    ``Response`` as it is, while the handler's annotation keeps documenting the answer's schema."""
    return Response(body.encode("utf-8"), media_type=JSON)


def refuse(ctx: bentoml.Context, status: int, message: str, *, loc: list[str]) -> Any:
    """An error answer from a handler that takes ``ctx``: BentoML copies ``ctx``'s status onto the response."""
    ctx.response.status_code = status
    return error_response(status, message, loc=loc)


def _principal(ctx: bentoml.Context) -> Principal:
    return ctx.request.state.principal


def stored_assessment(record: AuditRecord) -> StoredAssessment:
    """The auditor's view of one audit record."""
    response = record.response
    overrides = [
        OverrideOut(
            override_id=o.override_id,
            assessment_id=o.assessment_id,
            tier=o.tier,
            reason=o.reason,
            actor=o.actor,
            created_at=o.created_at,
        )
        for o in record.overrides
    ]
    effective = overrides[-1].tier if overrides else response["tier"]["tier"]["code"]
    return StoredAssessment(
        assessment_id=record.assessment_id,
        seq=record.seq,
        created_at=record.created_at,
        person_key=record.person_key,
        stage=record.stage,
        actor=record.actor,
        model_name=record.model_name,
        model_version=record.model_version,
        policy_version=record.policy_version,
        request=record.request,
        response=response,
        explanation=record.explanation,
        overrides=overrides,
        effective_tier=effective,
        prev_hash=record.prev_hash,
        record_hash=record.record_hash,
    )


def model_info(served: ServedModel) -> StageModelInfo:
    meta = served.metadata
    return StageModelInfo(
        stage=served.stage.value,
        model={"name": served.name, "version": served.version, "bento_tag": served.bento_tag},
        mlflow_run_id=meta.get("mlflow_run_id"),
        alias=str(meta.get("alias", "")),
        imported_at=str(meta.get("imported_at", "")),
        horizon_months=served.horizon_months,
        calibration=served.model.calibrator_.method_,
        trees=served.model.size["trees"],
        kind=served.model.kind,
        kind_reason=meta.get("candidate_reason"),
        evaluation=dict(meta.get("evaluation") or {}),
        gate=meta.get("gate"),
    )
