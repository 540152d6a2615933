"""HTTP plumbing of the service: bearer-token middleware and error bodies.

:class:`BearerAuthMiddleware` authenticates every request to a protected route before its body
is read (no token or an unknown one: 401 with ``WWW-Authenticate: Bearer``; a role without the
permission: 403) and puts the caller into ``request.state.principal`` for the handler. Routes it
does not list (``/healthz``, ``/livez``, ``/readyz``, ``/metrics``, the OpenAPI page) stay open
for the platform. Error bodies share BentoML's shape for validation errors:
``{"error": message, "detail": [{"loc": [...], "msg": ...}]}``.

:class:`RefusedInputLogFilter` keeps refused inputs out of the server log: BentoML logs every
request that fails validation as an ERROR with the traceback, whose text quotes the offending
values (a birth date, an offence category, part of the record).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError
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


BENTOML_ERROR_LOGGER = "bentoml._internal.server.http_app"  # where BentoML logs a failed request


class RefusedInputLogFilter(logging.Filter):
    """Log a request refused by validation as one WARNING line naming the fields, never their values.

    BentoML's ``log_exception`` logs ``"Exception on <path> [<method>]"`` at ERROR with the
    pydantic ``ValidationError`` attached; its text quotes the input (``input_value='1990-13-45'``,
    or a shortened dict of the record). The caller already got a 400 with every detail, so the
    server log keeps the route, the count and the field paths (an unknown field as
    ``<unknown field>``: its name is the caller's text). Only errors of the request schemas
    (``input_models``, the titles BentoML gives them) are rewritten: a ValidationError raised
    while building an answer is a server fault and keeps its ERROR and traceback.

    Parameters
    ----------
    input_models
        Titles of the validated request models, e.g. ``ScoreRequestIODescriptor``.
    """

    def __init__(self, input_models: Iterable[str]) -> None:
        super().__init__()
        self.input_models = frozenset(input_models)

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ValidationError) and exc.title in self.input_models:
            errors = exc.errors(include_url=False, include_context=False, include_input=False)
            fields = sorted({field_path([*e["loc"][:-1], "<unknown field>"] if e["type"] == "extra_forbidden"
                                        else e["loc"]) for e in errors})
            route = record.args if isinstance(record.args, tuple) and len(record.args) == 2 else ("?", "?")
            record.msg = "Refused %s [%s]: %d invalid field(s): %s"
            record.args = (*route, exc.error_count(), ", ".join(fields[:10]))
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


def keep_refused_input_out_of_logs(input_models: Iterable[str]) -> None:
    """Install :class:`RefusedInputLogFilter` on BentoML's request-error logger (once per process)."""
    logger = logging.getLogger(BENTOML_ERROR_LOGGER)
    if not any(isinstance(f, RefusedInputLogFilter) for f in logger.filters):
        logger.addFilter(RefusedInputLogFilter(input_models))


def field_path(loc: tuple[Any, ...] | list[Any], whole: str = "request") -> str:
    """A pydantic error location as the messages write it: ``("events", 3, "date")`` -> ``events[3].date``.

    ``whole`` names an error of the whole object (an empty location).
    """
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")
    return text or whole
