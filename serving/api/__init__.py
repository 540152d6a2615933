"""The HTTP service (BentoML): routes, request checks, refusals, OpenAPI page and metrics.

:class:`RiskService` is what ``bentoml serve serving.api:RiskService`` (and ``riskctl serve``) runs: the
scoring routes (``/score``, ``/score_batch``), the auditor's (``/assessment``, ``/person_assessments``,
``/verify``), the modeler's (``/models``) and the case routes (``/cases/...``), with the web console
(:mod:`serving.console`) mounted at ``/console``. Every route's role, error statuses and request and answer
models are the tables :data:`ROUTE_PERMISSIONS`, :data:`ROUTE_ERRORS` and :data:`ROUTE_MODELS`; the routes
that also answer ``GET`` are :data:`READ_ONLY_ROUTES`. :func:`metric_path` is the label a path gets on
``/metrics`` (unknown paths share :data:`OTHER_PATH`), and :func:`forget_request_metrics` lets a second in-process app
register BentoML's request metrics again (tests).
:class:`BearerAuthMiddleware` (tokens, roles, body limits, read-only GETs) and
:class:`RefusedInputLogFilter` (refused input logged by field, never by value) are the service's own ASGI
middleware and log filter; :class:`BodyLimitsMiddleware` measures every body (size, JSON depth with
:class:`DepthGauge`, :func:`json_depth`) before anything parses it.

Inside the room: ``_service`` (the BentoML class), ``_routes`` (the route table), ``_core`` (what the routes
and the console do, without HTTP), ``_http`` (bearer tokens, body limits, one error shape), ``_refusals``
(refusals in the caller's language), ``_limits`` (body size and JSON depth before any parsing),
``_openapi`` (the document), ``_process`` (workers die with their
parent) and ``_bentoml`` (every touch of BentoML's internals, in one module).
"""

from serving.api._bentoml import OTHER_PATH, STATIC_PATH, forget_request_metrics, metric_path
from serving.api._http import BearerAuthMiddleware, RefusedInputLogFilter
from serving.api._limits import BodyLimitsMiddleware, DepthGauge, json_depth
from serving.api._routes import READ_ONLY_ROUTES, ROUTE_ERRORS, ROUTE_MODELS, ROUTE_PERMISSIONS
from serving.api._service import RiskService

__all__ = [
    "OTHER_PATH",
    "READ_ONLY_ROUTES",
    "ROUTE_ERRORS",
    "ROUTE_MODELS",
    "ROUTE_PERMISSIONS",
    "STATIC_PATH",
    "BearerAuthMiddleware",
    "BodyLimitsMiddleware",
    "DepthGauge",
    "RefusedInputLogFilter",
    "RiskService",
    "forget_request_metrics",
    "json_depth",
    "metric_path",
]
