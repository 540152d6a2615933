"""Security headers on every answer of the service: the API's, the API page's, the probes', the console's.

:class:`SecurityHeadersMiddleware` adds what an answer does not already carry (the console sets its own,
stricter content security policy, which stays):

- ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``, ``X-Frame-Options: DENY`` and a
  ``Content-Security-Policy`` (:data:`API_CSP`) that the API page at ``/docs`` satisfies (its scripts and
  styles from this origin only, its document fetched from this origin, nothing framed, no form sent);
- ``Cache-Control: no-store`` on every answer but the static assets (Swagger UI's, the console's style
  sheet): answers hold personal data, and nothing of them may stay in a browser's or a proxy's cache;
- ``Strict-Transport-Security`` when the request came over TLS (``riskctl serve --ssl-certfile``, or a
  trusted proxy's ``X-Forwarded-Proto: https``), so a browser never again tries plain HTTP for the host.
"""

from __future__ import annotations

from typing import Any

#: The content security policy of every answer outside the console (JSON, the API page, its assets).
API_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
HSTS = "max-age=31536000"
#: Static assets (no personal data): they may be cached.
STATIC_PREFIXES = ("/static_content/", "/console/static/", "/docs.js")
_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", API_CSP.encode()),
    (b"cross-origin-resource-policy", b"same-origin"),
)


class SecurityHeadersMiddleware:
    """ASGI middleware: the security headers of every answer (those it lacks), HSTS over TLS.

    Parameters
    ----------
    app
        The wrapped ASGI app (the whole service, the mounted console included).
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(_HEADERS)
        if not str(scope.get("path", "")).startswith(STATIC_PREFIXES):
            extra.append((b"cache-control", b"no-store"))
        if scope.get("scheme") == "https":
            extra.append((b"strict-transport-security", HSTS.encode()))

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                have = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in extra if name not in have]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
