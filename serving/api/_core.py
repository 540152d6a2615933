"""What the service does, without HTTP: the routes of :class:`~serving.api.RiskService` and the console's pages
call these methods, so there is one scoring path, one review path and one verification.

:class:`ServiceCore` holds the long-lived parts of a worker (tier policy, scorer, audit store, case store,
checkpoint signer) and the two concurrency rules: concurrent single requests are scored together and
committed in one audit transaction (:class:`~serving.scoring.Combiner`), and batches of thousands (a
``/score_batch``, a review meeting) go one at a time per worker.

A stage may have no model (no champion when the service started): every path that scores it raises
:class:`~serving.scoring.NoModelError` before anything is scored or stored, which the routes answer with 503
and the pages show as a message; :meth:`ServiceCore.models` and :meth:`ServiceCore.stage_status` say which
stages are served.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from features.vocab import Lang, Stage
from models.tier_policy import TierPolicy
from serving.audit import AuditRecord, SigningRefused, checkpointer_for, open_store, public_path
from serving.auth import Principal, Role, load_or_create, store_new_tokens
from serving.cases import (
    CaseError,
    CaseStore,
    ReviewRun,
    index_row,
    office_of,
    reconcile,
    run_review,
    same_office,
)
from serving.monitoring import observe_assessments, observe_review
from serving.scoring import Scorer, ServedModel, answer_tier, model_info, no_model_message, score_combiner
from serving.scoring.schemas import (
    Assessment,
    ModelsResponse,
    OverrideOut,
    ScoreRequest,
    StoredAssessment,
    TrailStatus,
    UnservedStage,
    VerifyResponse,
)
from serving.settings import ServiceSettings


class ServiceCore:
    """One worker's scoring, audit and case flows (see the module docstring)."""

    def __init__(
        self,
        settings: ServiceSettings,
        served: Mapping[Stage, ServedModel],
        *,
        unserved: Mapping[Stage, UnservedStage] | None = None,
    ) -> None:
        self.settings = settings
        self.policy = TierPolicy.load()
        self.scorer = Scorer(dict(served), self.policy)
        # the stages without a model, and why: their requests are answered 503, /models and the probes list them
        self.unserved = {
            stage: (unserved or {}).get(stage)
            or UnservedStage(stage=stage.value, reason="not_in_store", message=no_model_message([stage], "en"))
            for stage in Stage
            if stage not in served
        }
        auth, created = load_or_create(settings.resolved_auth_file())
        if created:
            store_new_tokens(created, settings.home / "tokens")
        self.audit = open_store(settings, auth_secret=auth.audit_secret)
        self.cases = CaseStore.open(settings)
        self.checkpoints = checkpointer_for(
            settings, self.audit, name=f"{socket.gethostname()}:{os.getpid()}", on_refusals=_refusals_gauge
        )
        # a decision step chained in the trail whose case-store write did not happen (a crash between the
        # two) is applied now: the trail is the outbox of decisions
        self.reconciled = reconcile(self.cases, self.audit, apply=True)
        # concurrent /score calls share one scoring pass and one audit commit; a group that fails is
        # retried request by request (nothing of it was stored), so that one failing request never
        # fails the others that happened to share its group
        self._combined = score_combiner(self._assess_each)
        # a worker's threads are for single requests; batches of thousands go one at a time
        self._batch_slot = threading.Lock()

    def start(self) -> None:
        """Start signing checkpoints of the chain heads at the configured interval."""
        self.checkpoints.start()

    def close(self) -> None:
        """Sign a last checkpoint of the chain heads and release the databases."""
        self.checkpoints.stop()
        self.audit.close()

    # scoring

    def check_posted(self, principal: Principal, requests: Sequence[ScoreRequest], *, where: str = "") -> None:
        """Refuse (403, nothing scored) a posted record of a person the case store holds for another office
        than the caller's: an answer stored under that person's id would join their record (design.md,
        "Dates, rules and offices"). A person the store does not hold may be posted by anyone allowed to score.
        """
        offices = self.cases.offices_of([r.person.person_id for r in requests])
        if not offices:
            return
        for i, request in enumerate(requests):
            pid = request.person.person_id
            if pid in offices and offices[pid] != principal.office:
                field = f"{where}[{i}].person.person_id" if where else "person.person_id"
                raise CaseError(
                    403,
                    f"{field}: person {pid!r} is in the case store for another office than the caller's "
                    f"({principal.office or 'none'}); score them from their own office",
                    loc=[*([where, i] if where else []), "person", "person_id"],
                    zh=f"{field}：人员 {pid!r} 属于其他司法所，不能由本所（{principal.office or '未指定'}）评估",
                )

    def assess_text(self, request: ScoreRequest, *, actor: str) -> str:
        """Score one validated request for ``actor``; the answer's JSON text exactly as stored in the trail.

        A stage no model serves raises :class:`~serving.scoring.NoModelError` before the request joins a group."""
        self.scorer.require([request.stage])
        text: str = self._combined((request, actor))
        return text

    def assess(self, request: ScoreRequest, *, actor: str) -> Assessment:
        """:meth:`assess_text` as an :class:`Assessment` (the console's path)."""
        return Assessment.model_validate_json(self.assess_text(request, actor=actor))

    def assess_batch(self, requests: Sequence[ScoreRequest], *, actor: str) -> list[str]:
        """Score a batch, one batch at a time per worker; every answer stored (all or none), as JSON texts.

        A batch with a record of a stage no model serves is refused whole (:class:`~serving.scoring.NoModelError`)."""
        self.scorer.require(request.stage for request in requests)
        with self._batch_slot:
            return self._assess_each([(request, actor) for request in requests])

    def score_by_id(
        self, principal: Principal, *, person_id: str, stage: str, as_of: dt.date | None = None, lang: Lang = "zh"
    ) -> str:
        """Score a person of ``principal``'s office from the case store's record (``/cases/score`` and the
        console): stored in the audit trail and indexed in the case store; returns the answer's JSON text
        as stored. Raises :class:`CaseError` (unknown person, another office, a window not open) or
        ``NoModelError`` (the stage has no model: nothing scored or stored)."""
        same_office(office_of(principal), self.cases.person(person_id)["office"], person_id)
        request = self.cases.score_request(person_id, stage=stage, as_of=as_of, lang=lang)
        text = self.assess_text(request, actor=principal.user)
        answer = Assessment.model_validate_json(text)
        self.cases.note_assessments([index_row(answer, actor=principal.user, policy=self.policy)])
        return text

    def review(self, principal: Principal, *, office: str, as_of: dt.date, lang: Lang = "zh") -> ReviewRun:
        """The monthly review meeting of ``office`` (the caller's own) on ``as_of``: everyone on the roll
        scored and stored, as one batch of the worker. A backdated meeting (dated before today) is a
        supervisor's to run: the run says it was backdated. A roll with a person at a stage no model serves
        raises ``NoModelError``, and nothing of the run is stored (a meeting on part of the roll would
        look complete)."""
        office = office_of(principal, office)
        if as_of < dt.date.today() and principal.role is not Role.SUPERVISOR:
            raise CaseError(
                403,
                f"a review dated {as_of}, before today, is backdated: only a supervisor may run one",
                loc=["as_of"],
                zh=f"研判日期 {as_of} 早于今天（补做研判）：仅司法所负责人可进行",
            )
        with self._batch_slot:
            run = run_review(
                self.cases, self.scorer, self.audit, office=office, as_of=as_of, actor=principal.user, lang=lang
            )
        observe_review(run.rows, {stage.value: served.version for stage, served in self.scorer.models.items()})
        return run

    def typical(self, stage: str, version: str) -> Mapping[str, Any] | None:
        """The typical values of ``stage``'s served model if it is ``version`` (None: another version serves)."""
        served = self.scorer.models.get(Stage(stage))
        return served.model.typical if served is not None and served.version == version else None

    # the trail and the models

    def verify_trail(self) -> VerifyResponse:
        """Check every chain against every signed checkpoint, record signatures included; if intact, sign
        the heads checked. A broken or unexplained state is not signed: it is kept as a refusal for an
        auditor (``riskctl audit resolve``)."""
        result, n_checkpoints = self.checkpoints.verify(full=True)
        checkpoint = None
        try:
            signed = self.checkpoints.sign(verified=result)
            checkpoint = signed.to_dict() if signed is not None else None
        except SigningRefused as refused:
            if result.ok:  # the signer refused what the walk found intact
                result = replace(result, ok=False, problem=str(refused))
        heads = result.heads or self.audit.head()
        return VerifyResponse(
            ok=result.ok,
            checked=result.checked,
            first_broken=result.first_broken,
            problem=result.problem,
            checkpoints_checked=n_checkpoints,
            checkpoint=checkpoint,
            head={chain: {"length": n, "last_hash": h} for chain, (n, h) in heads.items()},
            newer=dict(result.newer),
            key_id=self.checkpoints.signer.key_id,
            refused=self.checkpoints.refused(),
            case_store=[d.text() for d in reconcile(self.cases, self.audit, apply=False)],
        )

    def trail_status(self) -> TrailStatus:
        """The signing key, where the anchors an auditor must copy are, and the refusals not yet resolved."""
        separate = self.settings.signer_socket is not None
        return TrailStatus(
            key_id=self.checkpoints.signer.key_id,
            separate_signer=separate,
            checkpoint_file=str(self.checkpoints.log.path),
            public_key_file=None if separate else str(public_path(self.settings.resolved_signing_key_file())),
            refused=self.checkpoints.refused(),
        )

    def models(self) -> ModelsResponse:
        """The model version serving each served stage, with the evaluation it was promoted on, and the stages
        no model serves."""
        return ModelsResponse(
            policy_version=self.policy.version,
            models=[model_info(self.scorer.models[stage]) for stage in self.scorer.stages],
            not_served=list(self.unserved.values()),
        )

    def stage_status(self) -> dict[str, Any]:
        """What the health and readiness probes say: the stages served and those that are not, with why."""
        return {
            "served": [stage.value for stage in self.scorer.stages],
            "not_served": [{"stage": u.stage, "reason": u.reason} for u in self.unserved.values()],
        }

    def _assess_each(self, items: list[tuple[ScoreRequest, str]]) -> list[str]:
        """Score each (request, actor); commit every answer to the audit trail before any is returned.

        Returns each answer's JSON text: what is stored is what is sent, byte for byte.
        """
        scored = self.scorer.score([request for request, _ in items])
        answers = [s.assessment.model_dump_json() for s in scored]
        self.audit.append_many(
            [s.audit_fields(actor, answer=answer) for s, (_, actor), answer in zip(scored, items, answers, strict=True)]
        )
        observe_assessments(s.assessment for s in scored)
        return answers


_GAUGE: Any = None


def _refusals_gauge(count: int) -> None:
    """``reoffence_audit_signing_refused`` in ``/metrics``: the refusals to sign the trail not yet resolved by
    an auditor (alert on > 0). Made on first use, in the worker (BentoML sets up Prometheus's multiprocess
    folder before its workers start)."""
    global _GAUGE
    if _GAUGE is None:
        from prometheus_client import Gauge

        _GAUGE = Gauge(
            "reoffence_audit_signing_refused",
            "Refusals to sign the audit trail not yet resolved by an auditor (riskctl audit resolve)",
            multiprocess_mode="max",
        )
    _GAUGE.set(count)


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
        effective_tier=overrides[-1].tier if overrides else answer_tier(response),
        prev_hash=record.prev_hash,
        record_hash=record.record_hash,
    )
