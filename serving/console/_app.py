"""The console's ASGI application (Starlette), mounted on the BentoML service at ``/console``."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.auth import Permission
from serving.console import _auditor, _cases, _caseworker, _signin, _stepdown, _supervisor
from serving.console._i18n import text
from serving.console._web import HERE, SECURITY_HEADERS, Backend, Console, PageFn, lang_of, page, refusal


def _current_service() -> Backend:
    import bentoml

    backend: Backend = bentoml.get_current_service().core
    return backend


def create_app(*, backend: Callable[[], Backend] = _current_service) -> ASGIApp:
    """The console app (Starlette, inside the security headers every answer carries).

    Parameters
    ----------
    backend
        Returns the running service (its audit store, tier policy and ``assess``); by default
        BentoML's current service instance, so the console and the API share one of each; its settings
        say where the session store, cookie settings and auth file are, so each service the console is
        mounted on has its own sessions and tokens.
    """
    console = Console(backend=backend)

    def guarded(path: str, fn: PageFn, needs: Permission | None, methods: tuple[str, ...] = ("GET",)) -> Route:
        return Route(path, page(console, fn, needs=needs), methods=list(methods))

    routes = [
        guarded("/", _signin.home_path, None),
        Route("/login", partial(_signin.login_form, console), methods=["GET"]),
        Route("/login", partial(_signin.login, console), methods=["POST"]),
        Route("/lang/{lang}", partial(_signin.switch_language, console)),
        guarded("/logout", _signin.logout, None, ("POST",)),
        guarded("/today", _cases.today, Permission.READ_CASES),
        guarded("/roster", _cases.roster, Permission.READ_CASES),
        guarded("/person/{person_id}", _cases.person, Permission.READ_CASES),
        guarded("/person/{person_id}/score", _cases.score_now, Permission.SCORE, ("POST",)),
        guarded("/person/{person_id}/propose", _cases.propose_change, Permission.PROPOSE, ("POST",)),
        guarded("/person/{person_id}/event", _cases.record_event, Permission.RECORD_EVENT, ("POST",)),
        guarded("/score", _caseworker.score_form, Permission.SCORE),
        guarded("/score", _caseworker.score, Permission.SCORE, ("POST",)),
        guarded("/result/{assessment_id}", _caseworker.result, Permission.SCORE),
        guarded("/proposals", _supervisor.proposals, Permission.DECIDE),
        guarded("/proposals/{decision_id}/{action:str}", _supervisor.decide, Permission.DECIDE, ("POST",)),
        guarded("/step_down", _stepdown.step_down, Permission.DECIDE),
        guarded("/step_down/{person_id}/decide", _stepdown.decide, Permission.DECIDE, ("POST",)),
        guarded("/step_down/{person_id}/defer", _stepdown.defer, Permission.DECIDE, ("POST",)),
        guarded("/review", _supervisor.review, Permission.REVIEW),
        guarded("/review", _supervisor.run, Permission.REVIEW, ("POST",)),
        guarded("/review/{run_id}", _supervisor.review_run, Permission.READ_CASES),
        guarded("/review/{run_id}/{fmt:str}", _supervisor.review_run, Permission.READ_CASES),
        guarded("/audit", _auditor.log_page, Permission.READ_ASSESSMENTS),
        guarded("/audit/{assessment_id}", _auditor.assessment_page, Permission.READ_ASSESSMENTS),
        guarded("/case_records", _auditor.case_records_page, Permission.READ_ASSESSMENTS),
        guarded("/decisions", _auditor.decisions_page, Permission.REPORT_DECISIONS),
        guarded("/verify", _auditor.verify_page, Permission.VERIFY, ("GET", "POST")),
        guarded("/revalidation", _auditor.revalidation_page, Permission.READ_ASSESSMENTS),
    ]
    app = Starlette(
        routes=routes, exception_handlers={404: partial(_not_found, console), 405: partial(_not_allowed, console)}
    )
    app.mount("/static", StaticFiles(directory=HERE / "static", check_dir=False), name="static")  # no I/O at import
    return SecurityHeaders(app)


async def _not_found(console: Console, request: Request, _exc: Exception) -> Response:
    lang = lang_of(request)
    return refusal(console, request, lang=lang, session=None, status=404, message=text("not_found", lang))


async def _not_allowed(console: Console, request: Request, _exc: Exception) -> Response:
    lang = lang_of(request)
    return refusal(console, request, lang=lang, session=None, status=405, message=text("not_found", lang))


class SecurityHeaders:
    """Adds the console's security headers (content security policy...) to every answer, static files too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", [])}
                extra = [
                    (k.encode(), v.encode())
                    for k, v in SECURITY_HEADERS.items()
                    if k.encode() not in have and not (k == "cache-control" and _static(scope))
                ]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _static(scope: Scope) -> bool:
    return str(scope.get("path", "")).removeprefix(str(scope.get("root_path", ""))).startswith("/static/")
