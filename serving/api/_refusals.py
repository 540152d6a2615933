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

from serving.scoring.schemas import field_path

log = logging.getLogger(__name__)

#: Chinese message of each pydantic (or schema) error type; ``{...}`` are the error's context values
ZH_MESSAGES: dict[str, str] = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不允许的字段（请求中不应有此字段）",
    "enum": "取值不在允许范围内，应为：{expected}",
    "literal_error": "取值不在允许范围内，应为：{expected}",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数，不能有小数部分",
    "int_type": "应为整数",
    "float_parsing": "应为数字",
    "float_type": "应为数字",
    "finite_number": "应为有限的数字",
    "bool_parsing": "应为 true 或 false",
    "bool_type": "应为 true 或 false",
    "string_type": "应为文本",
    "string_too_short": "至少应有{min_length}个字符",
    "string_too_long": "至多可有{max_length}个字符",
    "too_short": "至少应有{min_length}项",
    "too_long": "至多可有{max_length}项，实际为{actual_length}项",
    "greater_than_equal": "应大于或等于{ge}",
    "greater_than": "应大于{gt}",
    "less_than_equal": "应小于或等于{le}",
    "less_than": "应小于{lt}",
    "date_parsing": "应为有效日期（YYYY-MM-DD）",
    "date_from_datetime_parsing": "应为有效日期（YYYY-MM-DD）",
    "date_from_datetime_inexact": "应为日期，不能带时刻",
    "date_type": "应为有效日期（YYYY-MM-DD）",
    "list_type": "应为列表",
    "model_type": "应为对象",
    "dict_type": "应为对象",
    "model_attributes_type": "应为对象",
    "json_invalid": "请求体不是有效的 JSON",
    "json_type": "请求体不是有效的 JSON",
    # the schemas' own checks (serving/scoring/schemas.py raises them as PydanticCustomError with these types)
    "date_order": "{later}（{later_date}）应晚于{earlier}（{earlier_date}）",
    "as_of_outside_term": "评估日期 as_of（{as_of}）不在矫正期内（{start} 至 {end}）",
    "as_of_in_future": "评估日期（{as_of}）晚于今天（{today}）：评估只能以当天或之前的日期进行",
    "event_before_birth": "{field}（{date}）早于出生日期 person.birth_date（{birth_date}）",
    "event_after_as_of": "{field}（{date}）晚于评估日期 as_of（{as_of}）：评估日之后的事件不予接受（时点规则）",
    "reason_too_short": "须填写至少5个字的书面理由",
    "implausible_date": "{field}（{date}）不在合理范围内（{earliest} 至 {latest}）",
    "implausible_age": "出生日期 person.birth_date（{birth_date}）：矫正开始时年龄为{age}岁，不在{low}至{high}岁之间",
    "blank_id": "{field} 不能为空白",
    "control_character": "{field} 含有控制字符",
}


def _expected_zh(text: str) -> str:
    """pydantic's "'a', 'b' or 'c'" as "a、b、c"."""
    parts = [p.strip().strip("'") for p in text.replace(" or ", ", ").split(",")]
    return "、".join(p for p in parts if p)


def message_zh(error: Mapping[str, Any]) -> str:
    """The Chinese message of one pydantic error (``errors()`` item); its field path first."""
    ctx = dict(error.get("ctx") or {})
    if "expected" in ctx:
        ctx["expected"] = _expected_zh(str(ctx["expected"]))
    template = ZH_MESSAGES.get(error["type"])
    where = field_path(error["loc"])
    if template is None:
        log.warning("no Chinese message for validation error type %r", error["type"])
        return f"{where}：输入无效（{error['type']}）"
    try:
        text = template.format(**ctx)
    except (KeyError, IndexError):
        text = template.split("{")[0].rstrip("，：:（") or "输入无效"
    return f"{where}：{text}"


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

        start: dict[str, Any] = {}
        held: list[bytes] = []

        async def rewrite(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] == 400:
                start.update(message)  # hold it: the body may be rewritten, and its length with it
                return
            if not start or message["type"] != "http.response.body":
                await send(message)
                return
            held.append(message.get("body", b""))
            if message.get("more_body"):
                return
            await self._send_refusal(scope, model, b"".join(chunks), start, b"".join(held), send)

        await self.app(scope, keep_body, rewrite)

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
