"""Every touch of BentoML beyond its public API, in one module (checked against bentoml 1.4.40): a BentoML
upgrade has this one place to look.

- :func:`is_serving_worker`: whether this process is a worker of ``bentoml serve`` (public
  ``bentoml.server_context``).
- :data:`STATIC_PATH`: where BentoML serves the Swagger UI files it ships (``/static_content``), which the
  service's own API page (``serving/api/static/docs.html``) loads: BentoML's page embeds Google Tag Manager.
- :data:`ERROR_LOGGER`: the logger BentoML logs a failed request on (``bentoml._internal.server.http_app``).
- :func:`forget_request_metrics`: drop BentoML's request metrics from the process-wide Prometheus registry
  (``bentoml._internal.configuration.containers``), for a second in-process app (tests).
- :func:`bound_metric_labels`: bounded label cardinality of ``/metrics`` (below).
- :func:`telemetry_off`: BentoML's usage telemetry off (``bentoml._internal.utils.analytics.usage_stats``).

Bounded labels. BentoML's traffic middleware labels every request with its URL path, so each unknown URL an
anonymous caller invents becomes a new time series on the open ``/metrics`` (2,000 random paths
grew it to 8 MB, and ``/person/S7654321/...`` was published verbatim). :func:`bound_metric_labels`
puts a subclass in its place that labels the service's own routes by path, BentoML's static files
as ``/static_content``, and every other path as ``/<other>``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import bentoml

#: Where BentoML logs a request that failed (a refused one included).
ERROR_LOGGER = "bentoml._internal.server.http_app"
OTHER_PATH = "/<other>"
STATIC_PATH = "/static_content"
_REAL_PATH = "risk.real_path"
_PLATFORM = ("/metrics", "/healthz", "/livez", "/readyz")
_known: set[str] = set(_PLATFORM)


def metric_path(path: str) -> str:
    """The label of ``path``: itself for a known route, else one of two fixed labels."""
    if path in _known:
        return path
    return STATIC_PATH if path.startswith(STATIC_PATH + "/") else OTHER_PATH


def bound_metric_labels(*, known: Iterable[str]) -> None:
    """Make BentoML's metrics middleware label unknown paths as one (idempotent; ``known`` adds up)."""
    from bentoml._internal.server.http import instruments

    _known.update(known)
    base = instruments.RunnerTrafficMetricsMiddleware
    if getattr(base, "bounded_labels", False):
        return

    # base is a variable holding BentoML's class (untyped to mypy): subclassing it is what this patch is
    class BoundedTrafficMetricsMiddleware(base):  # type: ignore[misc, valid-type]
        """BentoML's traffic metrics with the path label taken from :func:`metric_path`."""

        bounded_labels = True
        _first: Any = None  # the instance whose metrics every later one shares

        def __init__(self, app: Any, **options: Any) -> None:
            super().__init__(_RestorePath(app), **options)

        def _setup(self, *args: Any, **kwargs: Any) -> None:
            # a second app in the same process (tests) must not register the metrics again
            cls = type(self)
            if cls._first is not None and cls._first._is_setup:
                self.__dict__.update({k: v for k, v in vars(cls._first).items() if k.startswith("metrics")})
                self._is_setup = True
                return
            super()._setup(*args, **kwargs)
            cls._first = self

        async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"].startswith("http") and metric_path(scope["path"]) != scope["path"]:
                scope = {**scope, "path": metric_path(scope["path"]), _REAL_PATH: scope["path"]}
            await super().__call__(scope, receive, send)

    # the patch itself: BentoML builds its app from this module attribute, which mypy sees as a class
    instruments.RunnerTrafficMetricsMiddleware = BoundedTrafficMetricsMiddleware  # type: ignore[misc, assignment]


class _RestorePath:
    """Inside the metrics middleware: the app sees the real path again."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if _REAL_PATH in scope:
            real = scope[_REAL_PATH]
            scope = {k: v for k, v in scope.items() if k != _REAL_PATH}
            scope["path"] = real
        await self.app(scope, receive, send)


def telemetry_off() -> bool:
    """Turn off MLflow's and BentoML's usage telemetry unless ``RISK_TELEMETRY=true``
    (:func:`features.settings.keep_telemetry_off`); returns whether it is off.

    ``bentoml serve serving.api:RiskService`` (or a Bento) imports this module after BentoML has asked itself,
    once and cached (``usage_stats.do_not_track``), whether to track: the cached answer is dropped so that the
    serve event and the CLI's command event, sent later, see the variable set here."""
    from bentoml._internal.utils.analytics import usage_stats

    from features.settings import keep_telemetry_off

    off = keep_telemetry_off()
    usage_stats.do_not_track.cache_clear()
    return off


def is_serving_worker() -> bool:
    """True in a worker process of ``bentoml serve``, False in an in-process app (tests, the console bench)."""
    return bentoml.server_context.worker_index is not None


def forget_request_metrics() -> None:
    """Unregister BentoML's request metrics from the process-wide Prometheus registry, so that another
    in-process app of the service can register them again (BentoML registers them on an app's first
    request and refuses a second registration)."""
    from bentoml._internal.configuration.containers import BentoMLContainer

    registry = BentoMLContainer.metrics_client.get().registry  # prometheus_client's global registry
    # the registry offers no public way to list its collectors, hence its private map
    for collector, names in list(registry._collector_to_names.items()):
        if any(name.startswith("bentoml_") for name in names):
            registry.unregister(collector)
