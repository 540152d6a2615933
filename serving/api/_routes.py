"""The route table of the service: each route's role, its request and answer models, the error statuses it may
answer and the routes that also answer ``GET`` (the middleware, the OpenAPI page and the tests read these).

=========================  ==========================  ===============================================
route                      role                        what it does
=========================  ==========================  ===============================================
``/score``                 caseworker                  one person's risk, band, tiers and reasons (stored)
``/score_batch``           caseworker                  the same for up to ``RISK_MAX_BATCH`` records (stored)
``/assessment``            auditor                     one stored assessment with explanation and overrides
``/person_assessments``    auditor                     every stored assessment of one person
``/verify``                auditor                     check the hash chains against the signed checkpoints
``/models``                modeler                     the model version serving each stage, with its evaluation
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
"""

from __future__ import annotations

from pydantic import BaseModel

from serving.auth import Permission
from serving.cases import (
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

ROUTE_PERMISSIONS: dict[str, Permission] = {
    "/score": Permission.SCORE,
    "/score_batch": Permission.SCORE,
    "/assessment": Permission.READ_ASSESSMENTS,
    "/person_assessments": Permission.READ_ASSESSMENTS,
    "/verify": Permission.VERIFY,
    "/models": Permission.MODEL_INFO,
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
#: Read-only routes that also answer GET, with their query fields.
READ_ONLY_ROUTES: dict[str, tuple[str, ...]] = {"/assessment": ("assessment_id",), "/verify": (), "/models": ()}
#: Error statuses each route may answer besides 400, 401, 403 and 500 (documented in the OpenAPI page); 503: a
#: stage the route would score has no model in service.
ROUTE_ERRORS: dict[str, tuple[int, ...]] = {
    "/score": (413, 415, 503),
    "/score_batch": (413, 415, 503),
    "/assessment": (404, 413, 415),
    "/person_assessments": (413, 415),
    "/verify": (413, 415),
    "/models": (413, 415),
    "/cases/event": (404, 413, 415, 422),
    "/cases/score": (404, 413, 415, 422, 503),
    "/cases/due": (404, 413, 415),
    "/cases/propose": (404, 409, 413, 415, 422),
    "/cases/approve": (404, 409, 413, 415, 422),
    "/cases/reject": (404, 409, 413, 415, 422),
    "/cases/review": (404, 413, 415, 422, 503),
    "/cases/review_run": (404, 413, 415),
    "/cases/decision_report": (404, 413, 415, 422),
}
#: Each route's request and answer models (documented as pydantic writes their JSON Schemas).
ROUTE_MODELS: dict[str, tuple[type[BaseModel], type[BaseModel]]] = {
    "/score": (ScoreRequest, Assessment),
    "/score_batch": (BatchRequest, BatchResponse),
    "/assessment": (AssessmentQuery, StoredAssessment),
    "/person_assessments": (PersonQuery, PersonAssessments),
    "/verify": (EmptyRequest, VerifyResponse),
    "/models": (EmptyRequest, ModelsResponse),
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
#: The routes whose refusals speak the caller's language (their requests carry ``lang``).
LOCALISED_ROUTES: dict[str, type[BaseModel]] = {
    route: ROUTE_MODELS[route][0]
    for route in (
        "/score",
        "/score_batch",
        "/cases/score",
        "/cases/propose",
        "/cases/approve",
        "/cases/reject",
        "/cases/review",
    )
}
