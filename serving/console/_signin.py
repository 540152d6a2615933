"""Sign-in, sign-out, the language switch and the start page of each role."""

from __future__ import annotations

import hmac

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from serving.auth import Permission, Role
from serving.console._i18n import text
from serving.console._web import (
    LANG_COOKIE,
    PRE_COOKIE,
    SESSION_COOKIE,
    Console,
    Ctx,
    base_of,
    lang_of,
    new_pre_token,
    refusal,
    render,
    safe_next,
)

CONSOLE_ROLES = frozenset({Role.CASEWORKER, Role.SUPERVISOR, Role.AUDITOR})
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def https_needed(console: Console, request: Request) -> str | None:
    """What the sign-in page says when signing in cannot work: the cookies are Secure and the page came over
    plain HTTP from a host other than this machine (a browser keeps Secure cookies over HTTP for loopback
    only), in the page's language, or the browser's when no language was chosen (its cookie is Secure too).
    None when HTTPS is in use, the host is loopback, or the cookies are not Secure. Behind a reverse proxy,
    the scheme is the proxy's ``X-Forwarded-Proto`` when the proxy is trusted (``RISK_TRUSTED_PROXIES``)."""
    host = request.url.hostname or ""
    if request.url.scheme == "https" or host in LOOPBACK or not console.settings.console_secure_cookie:
        return None
    lang = lang_of(request)
    if LANG_COOKIE not in request.cookies:
        lang = "en" if request.headers.get("accept-language", "zh").lower().startswith("en") else "zh"
    return text("https_needed", lang, host=host[:100])


def home_path(ctx: Ctx) -> Response:
    """The start page of the signed-in role."""
    if ctx.principal.can(Permission.DECIDE):
        return ctx.redirect("/proposals")
    if ctx.principal.can(Permission.READ_CASES):
        return ctx.redirect("/today")
    return ctx.redirect("/audit")


async def login_form(console: Console, request: Request, *, problem: str | None = None, status: int = 200) -> Response:
    """The sign-in page, with a fresh double-submit CSRF secret in a cookie and in the form."""
    lang = lang_of(request)
    pre = new_pre_token()
    ended, notice = request.query_params.get("ended"), None
    if ended in ("revoked", "expired"):  # the session behind the cookie ended without a sign-out: say why
        notice = text(f"ended_{ended}", lang)
    elif request.query_params.get("bye"):
        notice = text("signed_out", lang)
    response = render(
        console,
        request,
        "login.html",
        lang=lang,
        session=None,
        status=status,
        pre=pre,
        problem=problem,
        notice=notice,
        https_needed=https_needed(console, request),
        next=safe_next(request.query_params.get("next"), base_of(request)),
    )
    console.set_cookie(response, PRE_COOKIE, pre, max_age=3600, path=f"{base_of(request)}/login")
    return response


async def login(console: Console, request: Request) -> Response:
    """Exchange a role token for a session cookie (the form's CSRF field must match its cookie)."""
    lang = lang_of(request)
    form = await request.form()
    pre_cookie, pre_form = request.cookies.get(PRE_COOKIE, ""), form.get("csrf")
    if not (pre_cookie and isinstance(pre_form, str) and hmac.compare_digest(pre_cookie, pre_form)):
        # over plain HTTP the browser dropped the form's Secure cookie: say so, not "anti-forgery token missing"
        message = https_needed(console, request) or text("csrf", lang)
        return refusal(console, request, lang=lang, session=None, status=403, message=message)
    token = form.get("token")
    found = await run_in_threadpool(console.sessions.tokens.sign_in, token) if isinstance(token, str) else None
    if found is None:
        return await login_form(console, request, problem=text("bad_token", lang), status=401)
    token_hash, principal = found
    if principal.role not in CONSOLE_ROLES:
        return await login_form(console, request, problem=text("no_console_role", lang), status=403)
    sid, _ = await run_in_threadpool(console.sessions.open, token_hash, principal)
    base = base_of(request)
    response = RedirectResponse(safe_next(_text(form.get("next")), base), status_code=303)
    console.set_cookie(response, SESSION_COOKIE, sid, max_age=int(console.sessions.lifetime_s), path=f"{base}/")
    response.delete_cookie(PRE_COOKIE, path=f"{base}/login")
    return response


def logout(ctx: Ctx) -> Response:
    """End the session on the server and drop the cookie."""
    sid = ctx.request.cookies.get(SESSION_COOKIE)
    if sid:
        ctx.console.sessions.end(sid)
    response = ctx.redirect("/login?bye=1")
    response.delete_cookie(SESSION_COOKIE, path=f"{ctx.base}/")
    return response


async def switch_language(console: Console, request: Request) -> Response:
    """Set the page language (``/lang/en`` or ``/lang/zh``) and go back to the page it was chosen on."""
    chosen = request.path_params["lang"]
    base = base_of(request)
    response = RedirectResponse(safe_next(request.query_params.get("next"), base), status_code=303)
    if chosen in ("zh", "en"):
        console.set_cookie(response, LANG_COOKIE, chosen, max_age=365 * 86400, path=f"{base}/")
    return response


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
