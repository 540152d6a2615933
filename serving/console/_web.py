"""Plumbing shared by the console's pages: templates, language, sessions, role and CSRF checks.

Every page is declared with :func:`page`, which (on the server, for every request) finds the
session behind the cookie, checks that the session's token is still current, checks the role's
permission (403 otherwise, whatever the browser shows or posts), and for a POST checks the
form's CSRF token against the session's (403 when missing or wrong; nothing is done). The page
function itself runs in a worker thread (the stores are synchronous) and gets a :class:`Ctx`.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from features.vocab import Stage
from models.tier_policy import TierPolicy
from serving.audit import AuditStore
from serving.auth import Permission, Principal
from serving.cases import CaseStore, ReviewRun, office_name
from serving.console._i18n import LANGS, Lang, text
from serving.console._sessions import Session, SessionStore, TokenBook
from serving.console._views import tier_label
from serving.scoring.schemas import Assessment, ScoreRequest, TrailStatus, UnservedStage, VerifyResponse
from serving.settings import ServiceSettings

log = logging.getLogger(__name__)

SESSION_COOKIE = "risk_console_session"
LANG_COOKIE = "risk_console_lang"
PRE_COOKIE = "risk_console_pre"  # the sign-in form's CSRF secret (double-submit), before any session
HERE = Path(__file__).parent
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


class Backend(Protocol):
    """What the console needs of the running service: its core (:class:`serving.api._core.ServiceCore`), the
    same object the API's routes call, so the pages have no second scoring, review or verification path."""

    settings: ServiceSettings
    audit: AuditStore
    policy: TierPolicy
    cases: CaseStore
    unserved: Mapping[Stage, UnservedStage]  # the stages no model serves (scoring them answers 503)

    def assess(self, request: ScoreRequest, *, actor: str) -> Assessment: ...

    def check_posted(self, principal: Principal, requests: Sequence[ScoreRequest], *, where: str = "") -> None: ...

    def verify_trail(self) -> VerifyResponse: ...

    def trail_status(self) -> TrailStatus: ...

    def score_by_id(
        self, principal: Principal, *, person_id: str, stage: str, as_of: dt.date | None = None, lang: Lang = "zh"
    ) -> str: ...

    def review(self, principal: Principal, *, office: str, as_of: dt.date, lang: Lang = "zh") -> ReviewRun: ...

    def typical(self, stage: str, version: str) -> Mapping[str, Any] | None: ...


class Console:
    """The console's long-lived parts, made on first use (nothing is done at import time)."""

    def __init__(self, *, backend: Callable[[], Backend]) -> None:
        self._backend = backend
        self._sessions: dict[tuple[str, Path, int], SessionStore] = {}
        self._sessions_lock = threading.Lock()

    @property
    def settings(self) -> ServiceSettings:
        """The settings of the service the console is mounted on: its home, auth file, cookies."""
        return self.backend().settings

    @property
    def sessions(self) -> SessionStore:
        """The session store of the current settings, one per store and auth file for the process's life."""
        s = self.settings
        key = (s.resolved_console_session_url(), s.resolved_auth_file(), s.console_session_minutes)
        with self._sessions_lock:
            if key not in self._sessions:
                self._sessions[key] = SessionStore(key[0], tokens=TokenBook(key[1]), minutes=key[2])
            return self._sessions[key]

    @cached_property
    def templates(self) -> Environment:
        env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.globals["t"] = text
        env.globals["tier_label"] = tier_label
        return env

    def backend(self) -> Backend:
        return self._backend()

    def set_cookie(self, response: Response, name: str, value: str, *, max_age: int | None, path: str) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=path or "/",
            httponly=True,
            samesite="strict",
            secure=self.settings.console_secure_cookie,
        )


def lang_of(request: Request) -> Lang:
    """The page language: the switch's cookie, else Chinese."""
    chosen = request.cookies.get(LANG_COOKIE)
    return "en" if chosen == "en" else "zh"


def base_of(request: Request) -> str:
    """The console's own prefix (``/console`` where it is mounted on the service)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


@dataclass
class Ctx:
    """One request as a page function sees it."""

    console: Console
    request: Request
    lang: Lang
    session: Session | None
    form: FormData | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return base_of(self.request)

    @property
    def principal(self) -> Principal:
        assert self.session is not None, "page() guarantees a session on signed-in pages"
        return self.session.principal

    def render(self, template: str, *, status: int = 200, **values: Any) -> HTMLResponse:
        return render(
            self.console, self.request, template, lang=self.lang, session=self.session, status=status, **values
        )

    def redirect(self, path: str) -> RedirectResponse:
        return RedirectResponse(f"{self.base}{path}", status_code=303)


def render(
    console: Console,
    request: Request,
    template: str,
    *,
    lang: Lang,
    session: Session | None,
    status: int = 200,
    **values: Any,
) -> HTMLResponse:
    """A page from its template, with the layout's values (language, user, CSRF token, nav)."""
    query = f"?{request.url.query}" if request.url.query else ""
    here = request.url.path + query
    if request.method != "GET":  # a refused form's page: switch language back on the page the form was on
        here = _form_page(request) or f"{base_of(request)}/"
    office = session.principal.office if session else None
    html = console.templates.get_template(template).render(
        lang=lang,
        # the signed-in user's office by its name (the export's office_name), else its code
        office_label=(office_name(console.backend().cases, office) or office) if office else "",
        other_lang="en" if lang == "zh" else "zh",
        base=base_of(request),
        session=session,
        user=session.principal if session else None,
        csrf=session.csrf if session else "",
        here=quote(here, safe=""),
        Permission=Permission,
        **values,
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def refusal(
    console: Console, request: Request, *, lang: Lang, session: Session | None, status: int, message: str
) -> HTMLResponse:
    return render(
        console, request, "error.html", lang=lang, session=session, status=status, status_code=status, message=message
    )


PageFn = Callable[[Ctx], Response]


def page(console: Console, fn: PageFn, *, needs: Permission | None) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint of a signed-in page: session, token, role and (for POST) CSRF checks, then ``fn``."""

    async def endpoint(request: Request) -> Response:
        lang = lang_of(request)
        session, why = await run_in_threadpool(console.sessions.check, request.cookies.get(SESSION_COOKIE))
        if session is None:
            if request.method == "GET":
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                ended = f"&ended={why}" if why else ""  # the sign-in page says why the session ended
                return RedirectResponse(f"{base_of(request)}/login?next={quote(target)}{ended}", status_code=303)
            message = text(f"ended_{why}" if why else "session_ended", lang)
            return refusal(console, request, lang=lang, session=None, status=401, message=message)
        if needs is not None and not session.principal.can(needs):
            log.warning(
                "console: denied %s %s to %s (role %s)",
                request.method,
                request.url.path,
                session.principal.user,
                session.principal.role.value,
            )
            return refusal(
                console,
                request,
                lang=lang,
                session=session,
                status=403,
                message=text("forbidden", lang, role=text(f"role_{session.principal.role.value}", lang)),
            )
        form = None
        if request.method == "POST":
            form = await request.form()
            if not session.csrf_ok(_str(form.get("csrf"))):
                log.warning("console: refused a %s form without a valid CSRF token", request.url.path)
                return refusal(console, request, lang=lang, session=session, status=403, message=text("csrf", lang))
        ctx = Ctx(console, request, lang, session, form)
        return await run_in_threadpool(fn, ctx)

    return endpoint


def new_pre_token() -> str:
    return secrets.token_hex(16)


def _form_page(request: Request) -> str | None:
    """The same-origin page a form was posted from (its Referer's path and query), if any."""
    from urllib.parse import urlsplit

    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc and referer.netloc != request.url.netloc:
        return None
    if not referer.path.startswith(f"{base_of(request)}/"):
        return None
    return referer.path + (f"?{referer.query}" if referer.query else "")


def safe_next(target: str | None, base: str) -> str:
    """A same-site path under the console to go to after sign-in or a language switch (never elsewhere)."""
    if target and target.startswith(f"{base}/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{base}/"


def langs() -> tuple[Lang, ...]:
    return LANGS


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def form_str(form: Mapping[str, Any] | None, name: str) -> str:
    """A text field of a posted form ('' when absent or a file)."""
    value = form.get(name) if form is not None else None
    return value.strip() if isinstance(value, str) else ""
