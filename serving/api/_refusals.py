"""Refused requests in the caller's language: the 400 messages of a request with ``lang=zh`` in Chinese.

BentoML validates a request against its schema and answers 400 with pydantic's English messages
(``{"error": ..., "detail": [{"type", "loc", "msg"}]}``). :class:`LocalisedRefusalMiddleware`
watches those answers; when the request asked for Chinese (``lang`` of the request, of a batch's
first record, or an ``Accept-Language: zh`` header for routes without ``lang``), it validates the
body again to get each error's type and context and rewrites every message in Chinese. The field
paths (``loc``) and the error types stay exactly as they were, so a client's error handling does
not depend on the language.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from serving.api._http import holding
from serving.scoring import message_zh

log = logging.getLogger(__name__)


def localised_body(model: type[BaseModel], raw: bytes) -> dict[str, Any] | None:
    """The 400 body with Chinese messages, or None when ``raw`` is valid after all (not a validation refusal)."""
    try:
        model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        messages = [message_zh(e) for e in errors]
        detail = [{"type": e["type"], "loc": list(e["loc"]), "msg": m} for e, m in zip(errors, messages, strict=True)]
        return {"error": f"请求被拒绝：{len(errors)}处输入无效。" + "；".join(messages[:3]), "detail": detail}
    return None


def requested_lang(raw: bytes, headers: Mapping[str, str]) -> str:
    """``lang`` of the request (or of a batch's first record), else the Accept-Language header, else en."""
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict):
        records = body.get("records")
        first = records[0] if isinstance(records, list) and records and isinstance(records[0], dict) else body
        if first.get("lang") in ("zh", "en"):
            return str(first["lang"])
    return "zh" if headers.get("accept-language", "").lower().startswith("zh") else "en"


class LocalisedRefusalMiddleware:
    """ASGI middleware: a 400 of a listed route is answered in Chinese when the request asked for it.

    Parameters
    ----------
    app
        The wrapped ASGI app.
    models
        Route path -> the request schema validated there.
    """

    def __init__(self, app: Any, *, models: Mapping[str, type[BaseModel]]) -> None:
        self.app = app
        self.models = dict(models)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        model = self.models.get(scope.get("path", "")) if scope["type"] == "http" else None
        if model is None:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []

        async def keep_body() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        async def rewrite(start: dict[str, Any], body: bytes) -> None:
            await self._send_refusal(scope, model, b"".join(chunks), start, body, send)

        await self.app(scope, keep_body, holding(send, 400, rewrite))

    @staticmethod
    async def _send_refusal(
        scope: dict[str, Any], model: type[BaseModel], raw: bytes, start: dict[str, Any], body: bytes, send: Any
    ) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        localised = localised_body(model, raw) if requested_lang(raw, headers) == "zh" else None
        if localised is not None:
            body = json.dumps(localised, ensure_ascii=False).encode("utf-8")
        response_headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        response_headers.append((b"content-length", str(len(body)).encode("latin-1")))
        await send({**start, "headers": response_headers})
        await send({"type": "http.response.body", "body": body})
