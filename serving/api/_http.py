"""HTTP plumbing of the service: bearer-token and limits middleware, and error bodies.

:class:`BearerAuthMiddleware` checks every request to a protected route before its body is read:
token (401 with ``WWW-Authenticate: Bearer``), role (403), method (405), media type (415) and body
size (413), and puts the caller into ``request.state.principal`` for the handler. Routes it does
not list (``/healthz``, ``/livez``, ``/readyz``, ``/metrics``, the OpenAPI page at ``/docs``) stay
open for the platform. Every error body has one shape (``serving.scoring.schemas.ErrorResponse``), that of
BentoML's validation errors: ``{"error": message, "detail": [{"loc": [...], "msg": ...}]}``.

:class:`RefusedInputLogFilter` keeps refused inputs out of the server log: BentoML logs every
request that fails validation as an ERROR with the traceback, whose text quotes the offending
values (a birth date, an offence category, part of the record).

:class:`StageStatusMiddleware` makes the health and readiness probes say which stages are served.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from pydantic import ValidationError
from starlette.responses import FileResponse, JSONResponse, Response

from serving.api._bentoml import ERROR_LOGGER
from serving.auth import Authenticator, AuthError, Permission, TokenFile
from serving.scoring.schemas import field_path
from serving.settings import get_settings

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"  # the API page and its start-up script


def error_response(
    status: int, message: str, *, loc: list[Any] | None = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """A JSON error answer; ``loc`` is the field path of the refused input, if any."""
    detail = [{"loc": loc or [], "msg": message}]
    return JSONResponse({"error": message, "detail": detail}, status_code=status, headers=dict(headers or {}))


class BearerAuthMiddleware:
    """ASGI middleware in front of every protected route: limits, bearer token, role, read-only GETs.

    For a protected route, in this order and before the body is read: the token (``Authorization:
    Bearer <token>``; missing or unknown: 401 with ``WWW-Authenticate: Bearer``) and the role (403);
    the method (405); for ``POST`` the media type (anything but JSON: 415, so that no other
    deserialiser runs) and the body size (``Content-Length`` over ``max_body_bytes``: 413 at once; a
    body without a length is read up to the limit, then 413). A ``GET`` of a read-only route takes its
    fields from the query string and is handed on as the equivalent ``POST`` (same handler, same
    validation). The caller goes into ``request.state.principal``. Tokens come from the auth file,
    re-read when it changes (:class:`~serving.auth.TokenFile`). ``/docs`` (and ``/``) serves the project's OpenAPI page
    (Swagger UI from this origin, no outside request), ``/docs.js`` its start-up script and ``/docs.json``
    the document ``openapi()`` returns (security scheme, error answers, GETs).

    Parameters
    ----------
    app
        The wrapped ASGI app.
    permissions
        Route path -> the permission it needs.
    read_only
        Route path -> the query fields of its ``GET`` form (routes without one are ``POST`` only).
    max_body_bytes
        Largest body read; default ``Settings.max_body_bytes``.
    openapi
        Returns the OpenAPI document served at ``/docs.json`` (built once).
    """

    def __init__(
        self,
        app: Any,
        *,
        permissions: Mapping[str, Permission],
        read_only: Mapping[str, tuple[str, ...]] | None = None,
        max_body_bytes: int | None = None,
        openapi: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.app = app
        self.permissions = dict(permissions)
        self.read_only = dict(read_only or {})
        self._max_body = max_body_bytes
        self._openapi = openapi
        self._openapi_body: bytes | None = None
        self._tokens: TokenFile | None = None

    def authenticator(self) -> Authenticator:
        """The token checker of the auth file as it is now (re-read at most once a second on change)."""
        if self._tokens is None:
            self._tokens = TokenFile(get_settings().resolved_auth_file())
        return self._tokens.authenticator()

    @property
    def max_body_bytes(self) -> int:
        if self._max_body is None:
            self._max_body = get_settings().max_body_bytes
        return self._max_body

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope.get("path", ""), scope.get("method", "GET")
        if path in ("/", "/docs", "/docs.json", "/docs.js") and method in ("GET", "HEAD"):
            await self._docs(path)(scope, receive, send)
            return
        permission = self.permissions.get(path)
        if permission is None:
            await self.app(scope, receive, send)
            return
        headers = {name: value for name, value in scope.get("headers", ())}
        auth = headers.get(b"authorization")
        try:
            principal = self.authenticator().authorize(None if auth is None else auth.decode("latin-1"), permission)
        except AuthError as err:
            await error_response(err.status, err.message, headers=err.headers)(scope, receive, send)
            return
        if method == "GET" and path in self.read_only:
            refused, scope, receive = self._as_post(scope, self.read_only[path])
        elif method == "POST":
            refused, receive = await self._checked_body(headers, receive)
        else:
            allow = "GET, POST" if path in self.read_only else "POST"
            refused = error_response(405, f"{method[:10]} is not allowed here: use {allow}", headers={"Allow": allow})
        if refused is not None:
            await refused(scope, receive, send)
            return
        scope = {**scope, "state": {**scope.get("state", {}), "principal": principal}}
        await self.app(scope, receive, send)

    async def _checked_body(self, headers: Mapping[bytes, bytes], receive: Any) -> tuple[Any, Any]:
        """(error answer or None, receive): media type and size checked before anything parses the body."""
        media = headers.get(b"content-type", b"application/json").decode("latin-1").split(";")[0].strip().lower()
        if media != "application/json" and not media.endswith("+json"):
            return error_response(
                415, f"send the request body as application/json, not {media[:60]!r}", loc=["body"]
            ), receive
        limit, length = self.max_body_bytes, headers.get(b"content-length")
        if length is not None:
            if not length.strip().isdigit():
                return error_response(400, "Content-Length is not a number", loc=["body"]), receive
            if int(length) > limit:
                return too_large(limit), receive
            return None, receive
        chunks, size, more = [], 0, True  # no declared length: read up to the limit, then hand it on
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return None, replay([message])
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                return too_large(limit), receive
            more = message.get("more_body", False)
        return None, replay([{"type": "http.request", "body": b"".join(chunks), "more_body": False}])

    @staticmethod
    def _as_post(scope: dict[str, Any], fields: tuple[str, ...]) -> tuple[Any, dict[str, Any], Any]:
        """A GET with query fields as the equivalent JSON POST (or a 400 naming an unknown field)."""
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        for name, values in query.items():
            if name not in fields:
                return (
                    error_response(
                        400,
                        f"unknown query field {name[:40]!r}; expected {', '.join(fields) or 'none'}",
                        loc=["query", name[:40]],
                    ),
                    scope,
                    None,
                )
            if len(values) > 1:
                return (
                    error_response(400, f"query field {name!r} is given {len(values)} times", loc=["query", name]),
                    scope,
                    None,
                )
        body = json.dumps({name: values[0] for name, values in query.items()}).encode()
        headers = [(k, v) for k, v in scope.get("headers", ()) if k not in (b"content-type", b"content-length")]
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        post = {**scope, "method": "POST", "query_string": b"", "headers": headers}
        return None, post, replay([{"type": "http.request", "body": body, "more_body": False}])

    def _docs(self, path: str) -> Any:
        if path in ("/", "/docs"):  # the project's own page: BentoML's (at / and /docs) embeds Google Tag Manager
            return FileResponse(STATIC / "docs.html", media_type="text/html")
        if path == "/docs.js":
            return FileResponse(STATIC / "docs.js", media_type="text/javascript")
        if self._openapi is None:
            return error_response(404, "no OpenAPI document")
        if self._openapi_body is None:
            self._openapi_body = json.dumps(self._openapi()).encode()
        return Response(self._openapi_body, media_type="application/json")


class StageStatusMiddleware:
    """ASGI middleware: a probe that answers 200 (``/healthz``, ``/readyz``) says which stages are served.

    BentoML answers the probes itself (an empty text); when it says 200, the body becomes
    ``{"status": "ok", "served": [...], "not_served": [{"stage", "reason"}]}`` (no token needed: it names
    stages, never a person or a model version). Any other answer, a 503 before the worker is ready, is
    passed on as it is, so a platform's probe keeps its meaning.

    Parameters
    ----------
    app
        The wrapped ASGI app.
    status
        Returns the running service's stage status (``ServiceCore.stage_status``), or None while there is none.
    paths
        The probes whose answers carry the status.
    """

    def __init__(
        self,
        app: Any,
        *,
        status: Callable[[], dict[str, Any] | None],
        paths: Iterable[str] = ("/healthz", "/readyz"),
    ) -> None:
        self.app = app
        self.status = status
        self.paths = frozenset(paths)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") not in self.paths or scope.get("method") != "GET":
            await self.app(scope, receive, send)
            return

        async def with_status(start: dict[str, Any], held: bytes) -> None:
            status = self.status()
            if status is None:
                await send(start)
                await send({"type": "http.response.body", "body": held})
                return
            body = json.dumps({"status": "ok", **status}).encode()
            replaced = (b"content-length", b"content-type")
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in replaced]
            headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode("latin-1"))]
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, holding(send, 200, with_status))


def holding(send: Any, status: int, finish: Callable[[dict[str, Any], bytes], Awaitable[None]]) -> Any:
    """An ASGI ``send`` that holds a response of ``status`` (its start and every part of its body) and hands
    it whole to ``finish(start, body)``, which sends it (rewritten if need be); other responses pass as they come."""
    start: dict[str, Any] = {}
    held: list[bytes] = []

    async def hold(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] == status:
            start.update(message)  # held: the body (and its length) may be replaced
            return
        if not start or message["type"] != "http.response.body":
            await send(message)
            return
        held.append(message.get("body", b""))
        if message.get("more_body"):
            return
        await finish(start, b"".join(held))

    return hold


def too_large(limit: int) -> JSONResponse:
    return error_response(
        413, f"request body is over the limit of {limit:,} bytes", loc=["body"], headers={"Connection": "close"}
    )


def replay(messages: list[dict[str, Any]]) -> Any:
    """An ASGI ``receive`` that yields ``messages``, then waits for the client to disconnect."""
    pending = list(messages)

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        return {"type": "http.disconnect"}

    return receive


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
            fields = sorted(
                {
                    field_path([*e["loc"][:-1], "<unknown field>"] if e["type"] == "extra_forbidden" else e["loc"])
                    for e in errors
                }
            )
            route = record.args if isinstance(record.args, tuple) and len(record.args) == 2 else ("?", "?")
            record.msg = "Refused %s [%s]: %d invalid field(s): %s"
            record.args = (*route, exc.error_count(), ", ".join(fields[:10]))
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


def keep_refused_input_out_of_logs(input_models: Iterable[str]) -> None:
    """Install :class:`RefusedInputLogFilter` on BentoML's request-error logger (once per process)."""
    logger = logging.getLogger(ERROR_LOGGER)
    if not any(isinstance(f, RefusedInputLogFilter) for f in logger.filters):
        logger.addFilter(RefusedInputLogFilter(input_models))
