"""The BentoML scoring service (design.md, "The job", "Interfaces").

Endpoints (all ``POST``, JSON in and out; the OpenAPI page is at ``/docs``):

=====================  ============  =====================================================
route                  role          what it does
=====================  ============  =====================================================
``/score``             caseworker    one person's risk, band, tier and reasons (stored)
``/score_batch``       caseworker    the same for up to ``RISK_MAX_BATCH`` records (stored)
``/override``          caseworker    record a tier override with a written reason
``/assessment``        auditor       one stored assessment with explanation and overrides
``/person_assessments`` auditor      every stored assessment of one person
``/verify``            auditor       check the audit trail's hash chains
``/models``            modeler       the model version serving each stage, with its evaluation
=====================  ============  =====================================================

``/healthz``, ``/livez``, ``/readyz`` and ``/metrics`` (BentoML's own) need no token.

The three stage models are BentoML models declared on the class (``reoffence-<stage>:latest``,
put there by ``riskctl serve`` or ``riskctl models import`` from the MLflow ``@champion``), so a
built Bento carries them and serves without MLflow. Every answer is committed to the audit store
before it is returned; a refused request writes nothing.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
from typing import Any, cast

import bentoml
from bentoml.models import BentoModel

from features.settings import get_settings
from features.vocab import Stage
from models.tier_policy import TierPolicy
from serving._refusals import LocalisedRefusalMiddleware
from serving.audit import AuditRecord, AuditStore
from serving.auth import Permission, Principal, load_or_create
from serving.combine import Combiner
from serving.http import BearerAuthMiddleware, error_response, keep_refused_input_out_of_logs
from serving.model_store import ServedModel, load_served
from serving.schemas import (
    Assessment,
    AssessmentQuery,
    BatchRequest,
    BatchResponse,
    EmptyRequest,
    ModelsResponse,
    OverrideOut,
    OverrideRequest,
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
    "/score": Permission.SCORE, "/score_batch": Permission.SCORE, "/override": Permission.OVERRIDE,
    "/assessment": Permission.READ_ASSESSMENTS, "/person_assessments": Permission.READ_ASSESSMENTS,
    "/verify": Permission.VERIFY, "/models": Permission.MODEL_INFO,
}


@bentoml.service(name="reoffence_risk", traffic={"timeout": 300}, workers="cpu_count", threads=16)
class RiskService:
    """Re-offending risk at intake, mid-term and release, with reasons, tiers and an audit trail."""

    intake_model = BentoModel(f"{_PREFIX}-intake:latest")
    midterm_model = BentoModel(f"{_PREFIX}-midterm:latest")
    release_model = BentoModel(f"{_PREFIX}-release:latest")

    def __init__(self) -> None:
        settings = get_settings()
        self.settings = settings
        self.policy = TierPolicy.load()
        served = {stage: load_served(getattr(self, f"{stage.value}_model"), stage) for stage in Stage}
        self.scorer = Scorer(served, self.policy)
        auth, created = load_or_create(settings.resolved_auth_file())
        if created:
            show_new_tokens(created, settings.resolved_auth_file())
        self.audit = AuditStore(settings.resolved_audit_url(), secret=auth.audit_secret)
        # concurrent /score calls share one scoring pass and one audit commit (serving/combine.py); a
        # group that fails for want of a model is retried request by request, an audit failure is not
        self._combined = Combiner(self._assess_each, retry_alone=(NoModelError,))
        # the 16 threads are for /score; batches of thousands go one at a time per worker
        self._batch_slot = threading.Lock()
        # @bentoml.service makes the class a bentoml.Service; mypy keeps the class's own type (python/mypy#3135)
        keep_refused_input_out_of_logs(api.input_spec.__name__ for api in cast(Any, RiskService).apis.values())
        log.info("serving %s", ", ".join(f"{m.name} v{m.version}" for m in served.values()))
        tune_garbage_collector()

    @bentoml.api(input_spec=ScoreRequest)
    def score(self, ctx: bentoml.Context, **request: Any) -> Assessment:
        """Score one person at one stage: calibrated probability, band, tier, reasons; stored in the audit trail."""
        try:
            return self._combined((ScoreRequest.model_construct(**request), _principal(ctx).user))
        except NoModelError as err:
            return refuse(ctx, 503, str(err), loc=["stage"])

    @bentoml.api(input_spec=BatchRequest)
    def score_batch(self, ctx: bentoml.Context, records: list[ScoreRequest]) -> BatchResponse:
        """Score many people at once (monthly review meeting); every answer is stored, all or none."""
        if len(records) > self.settings.max_batch:
            return refuse(ctx, 413, f"batch of {len(records)} records is over the limit of "
                          f"{self.settings.max_batch}", loc=["records"])
        try:
            with self._batch_slot:
                answers = self._assess_each([(record, _principal(ctx).user) for record in records])
        except NoModelError as err:
            return refuse(ctx, 503, str(err), loc=["records", "stage"])
        return BatchResponse(count=len(answers), assessments=answers)

    @bentoml.api(input_spec=OverrideRequest)
    def override(self, ctx: bentoml.Context, assessment_id: str, tier: str, reason: str) -> OverrideOut:
        """Record a tier override beside an assessment (the assessment itself never changes)."""
        try:
            rec = self.audit.add_override(assessment_id, tier=tier, reason=reason, actor=_principal(ctx).user)
        except KeyError:
            return refuse(ctx, 404, f"no assessment {assessment_id!r}", loc=["assessment_id"])
        return OverrideOut(override_id=rec.override_id, assessment_id=rec.assessment_id, tier=rec.tier,
                           reason=rec.reason, actor=rec.actor, created_at=rec.created_at)

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
        return PersonAssessments(person_key=self.audit.person_key(person_id), count=len(records),
                                 assessments=[stored_assessment(r) for r in records])

    @bentoml.api(input_spec=EmptyRequest)
    def verify(self) -> VerifyResponse:
        """Walk both hash chains (assessments, overrides) and name the first broken record, if any."""
        result = self.audit.verify()
        head = {chain: {"length": n, "last_hash": h} for chain, (n, h) in self.audit.head().items()}
        return VerifyResponse(ok=result.ok, checked=result.checked, first_broken=result.first_broken,
                              problem=result.problem, head=head)

    @bentoml.api(input_spec=EmptyRequest)
    def models(self) -> ModelsResponse:
        """The model version serving each stage, with the evaluation it was promoted on."""
        return ModelsResponse(policy_version=self.policy.version, models=[
            model_info(self.scorer.models[stage]) for stage in Stage])

    def _assess_each(self, items: list[tuple[ScoreRequest, str]]) -> list[Assessment]:
        """Score each (request, actor); commit every answer to the audit trail before any is returned."""
        scored = self.scorer.score([request for request, _ in items])
        self.audit.append_many([s.audit_fields(actor) for s, (_, actor) in zip(scored, items, strict=True)])
        return [s.assessment for s in scored]


cast(Any, RiskService).add_asgi_middleware(BearerAuthMiddleware, permissions=ROUTE_PERMISSIONS)  # see __init__
# refusals in the caller's language (lang=zh: Chinese messages, the same field paths)
cast(Any, RiskService).add_asgi_middleware(LocalisedRefusalMiddleware, models={
    "/score": ScoreRequest, "/score_batch": BatchRequest, "/override": OverrideRequest})


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


def refuse(ctx: bentoml.Context, status: int, message: str, *, loc: list[str]) -> Any:
    """An error answer from a handler that takes ``ctx``: BentoML copies ``ctx``'s status onto the response."""
    ctx.response.status_code = status
    return error_response(status, message, loc=loc)


def _principal(ctx: bentoml.Context) -> Principal:
    return ctx.request.state.principal


def stored_assessment(record: AuditRecord) -> StoredAssessment:
    """The auditor's view of one audit record."""
    response = record.response
    overrides = [OverrideOut(override_id=o.override_id, assessment_id=o.assessment_id, tier=o.tier,
                             reason=o.reason, actor=o.actor, created_at=o.created_at) for o in record.overrides]
    effective = overrides[-1].tier if overrides else response["tier"]["tier"]["code"]
    return StoredAssessment(
        assessment_id=record.assessment_id, seq=record.seq, created_at=record.created_at,
        person_key=record.person_key, stage=record.stage, actor=record.actor, model_name=record.model_name,
        model_version=record.model_version, policy_version=record.policy_version, request=record.request,
        response=response, explanation=record.explanation, overrides=overrides, effective_tier=effective,
        prev_hash=record.prev_hash, record_hash=record.record_hash)


def model_info(served: ServedModel) -> StageModelInfo:
    meta = served.metadata
    return StageModelInfo(
        stage=served.stage.value, model={"name": served.name, "version": served.version, "bento_tag": served.bento_tag},
        mlflow_run_id=meta.get("mlflow_run_id"), alias=str(meta.get("alias", "")),
        imported_at=str(meta.get("imported_at", "")), horizon_months=served.horizon_months,
        calibration=served.model.calibrator_.method_, trees=served.model.size["trees"],
        evaluation=dict(meta.get("evaluation") or {}), gate=meta.get("gate"))


def show_new_tokens(tokens: dict, path: Any) -> None:
    """Show freshly created tokens once, on the terminal.

    Written to stderr, deliberately not through ``logging``: log records are kept and shipped,
    and a token must never be in them.
    """
    lines = [f"New access tokens (shown once; their hashes are in {path}):"]
    lines += [f"  {role.value:<10} {token}" for role, token in tokens.items()]
    sys.stderr.write("\n".join(lines) + "\n")

