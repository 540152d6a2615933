"""HTTP plumbing of the service: bearer-token middleware and error bodies.

:class:`BearerAuthMiddleware` authenticates every request to a protected route before its body
is read (no token or an unknown one: 401 with ``WWW-Authenticate: Bearer``; a role without the
permission: 403) and puts the caller into ``request.state.principal`` for the handler. Routes it
does not list (``/healthz``, ``/livez``, ``/readyz``, ``/metrics``, the OpenAPI page) stay open
for the platform. Error bodies share BentoML's shape for validation errors:
``{"error": message, "detail": [{"loc": [...], "msg": ...}]}``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse

from features.settings import get_settings
from serving.auth import Authenticator, AuthError, Permission, load_or_create

log = logging.getLogger(__name__)


def error_response(status: int, message: str, *, loc: list[Any] | None = None,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    """A JSON error answer; ``loc`` is the field path of the refused input, if any."""
    detail = [{"loc": loc or [], "msg": message}]
    return JSONResponse({"error": message, "detail": detail}, status_code=status, headers=dict(headers or {}))


class BearerAuthMiddleware:
    """ASGI middleware checking ``Authorization: Bearer <token>`` against each route's permission.

    Parameters
    ----------
    app
        The wrapped ASGI app.
    permissions
        Route path -> the permission it needs.
    """

    def __init__(self, app: Any, *, permissions: Mapping[str, Permission]) -> None:
        self.app = app
        self.permissions = dict(permissions)
        self._authenticator: Authenticator | None = None

    def authenticator(self) -> Authenticator:
        """The token checker, built on first use from the configured auth file."""
        if self._authenticator is None:
            config, _ = load_or_create(get_settings().resolved_auth_file())
            self._authenticator = Authenticator(config)
        return self._authenticator

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        permission = self.permissions.get(scope.get("path", "")) if scope["type"] == "http" else None
        if permission is None:
            await self.app(scope, receive, send)
            return
        header = None
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                header = value.decode("latin-1")
                break
        try:
            principal = self.authenticator().authorize(header, permission)
        except AuthError as err:
            await error_response(err.status, err.message, headers=err.headers)(scope, receive, send)
            return
        scope = {**scope, "state": {**scope.get("state", {}), "principal": principal}}
        await self.app(scope, receive, send)
