"""Bounded parsing: every request body is measured before anything parses it (issue 23).

:class:`BodyLimitsMiddleware` sits outside every other part of the service (the API's routes, BentoML's
own, the console's forms, unknown paths): a body over ``RISK_MAX_BODY_BYTES`` is refused with 413 (by its
``Content-Length`` at once, else when the read passes the limit), and a JSON body nested deeper than
``RISK_MAX_JSON_DEPTH`` with 400 naming the limit as soon as the part received goes deeper, before any JSON
parser (pydantic's, the standard library's, a middleware's) sees it and without reading the rest. A
recursive parser on a body of ten thousand brackets took a worker for minutes; the measure here
(:class:`DepthGauge`) is linear in the body, vectorised, and stops at the first chunk over the limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
import numpy as np

from serving.api._http import error_response, replay, too_large
from serving.settings import get_settings

_STEP = np.zeros(256, dtype=np.int32)  # what a byte outside a string does to the depth
_STEP[[ord("["), ord("{")]] = 1
_STEP[[ord("]"), ord("}")]] = -1
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_FIRST_CHUNK, _CHUNK = 64 * 1024, 1024 * 1024  # a deep body shows itself in its first bytes
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_FORMS = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


class DepthGauge:
    """The nesting depth of a JSON text fed in pieces as they arrive; brackets inside strings do not count.

    Each piece is measured in chunks with numpy: a quote is a string's edge unless an odd run of backslashes
    precedes it, and a bracket counts when an even number of edges precedes it. The state between pieces is
    the depth, whether a string is open and the run of backslashes at the end. With ``limit``, feeding stops
    measuring at the first chunk that goes deeper. Malformed JSON gets a number too (the parser refuses it
    later, at a depth it can handle).
    """

    def __init__(self, *, limit: int | None = None, chunk: int = _CHUNK) -> None:
        self.limit, self.chunk = limit, chunk
        self.deepest = self._depth = self._inside = self._run = 0
        self._first = True

    @property
    def over(self) -> bool:
        """Whether the text so far goes deeper than the limit."""
        return self.limit is not None and self.deepest > self.limit

    def feed(self, piece: bytes) -> int:
        """Measure the next piece of the text; returns the deepest nesting so far."""
        data = np.frombuffer(piece, dtype=np.uint8)
        start = 0
        while start < len(data) and not self.over:
            size = min(_FIRST_CHUNK, self.chunk) if self._first else self.chunk
            self._measure(data[start : start + size])
            start, self._first = start + size, False
        return self.deepest

    def _measure(self, part: np.ndarray) -> None:
        quotes = part == _QUOTE
        backslashes = part == _BACKSLASH
        if self._run or backslashes.any():
            quotes &= ~_escaped(backslashes, self._run)
            self._run = _trailing_run(backslashes, self._run)
        edges = np.cumsum(quotes, dtype=np.int32)
        steps = np.where((edges + self._inside) & 1, 0, _STEP[part])
        curve = np.cumsum(steps, dtype=np.int64) + self._depth
        self.deepest = max(self.deepest, int(curve.max(initial=self._depth)))
        self._depth, self._inside = int(curve[-1]), (self._inside + int(edges[-1])) & 1


def json_depth(body: bytes, *, limit: int | None = None, chunk: int = _CHUNK) -> int:
    """The deepest nesting of arrays and objects in a JSON text (:class:`DepthGauge` fed the whole text); with
    ``limit``, the depth where the measure stopped, over the limit, or the true depth when it is not over."""
    return DepthGauge(limit=limit, chunk=chunk).feed(body)


def _escaped(backslashes: np.ndarray, run: int) -> np.ndarray:
    """Whether each byte follows an odd run of backslashes (``run`` of them ended the previous chunk)."""
    index = np.arange(len(backslashes), dtype=np.int32)  # a chunk is at most a few MB
    last_other = np.maximum.accumulate(np.where(backslashes, -1, index))  # the last non-backslash at or before i
    before = np.empty_like(index)  # the run of backslashes just before each byte
    before[0] = run
    before[1:] = index[:-1] - last_other[:-1]
    before[1:] += np.where(last_other[:-1] < 0, run, 0)  # a run that goes back into the previous chunk
    escaped: np.ndarray = (before & 1).astype(bool)
    return escaped


def _trailing_run(backslashes: np.ndarray, run: int) -> int:
    """The run of backslashes at the end of this chunk (``run`` ended the previous one)."""
    others = np.flatnonzero(~backslashes)
    if len(others) == 0:
        return run + len(backslashes)
    return len(backslashes) - 1 - int(others[-1])


class BodyLimitsMiddleware:
    """ASGI middleware: the size and, for JSON, the nesting depth of every request body, before it is parsed.

    Parameters
    ----------
    app
        The wrapped ASGI app (the whole service).
    max_body_bytes
        Largest body read; default ``RISK_MAX_BODY_BYTES``.
    max_depth
        Deepest JSON nesting accepted; default ``RISK_MAX_JSON_DEPTH``.
    """

    def __init__(self, app: Any, *, max_body_bytes: int | None = None, max_depth: int | None = None) -> None:
        self.app = app
        self._max_body = max_body_bytes
        self._max_depth = max_depth

    def limits(self) -> tuple[int, int]:
        if self._max_body is None or self._max_depth is None:
            settings = get_settings()
            self._max_body = self._max_body or settings.max_body_bytes
            self._max_depth = self._max_depth or settings.max_json_depth
        return self._max_body, self._max_depth

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        max_body, max_depth = self.limits()
        headers: Mapping[bytes, bytes] = dict(scope.get("headers", ()))
        length = headers.get(b"content-length")
        if length is not None and length.strip().isdigit() and int(length) > max_body:
            await too_large(max_body)(scope, receive, send)
            return
        gauge = DepthGauge(limit=max_depth) if _is_json(headers) else None
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing to answer
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > max_body:
                await too_large(max_body)(scope, receive, send)
                return
            if gauge is not None and await _fed(gauge, chunks[-1]):
                await _too_deep(max_depth)(scope, receive, send)
                return
            more = message.get("more_body", False)
        body = b"".join(chunks)
        await self.app(scope, replay([{"type": "http.request", "body": body, "more_body": False}]), send)


async def _fed(gauge: DepthGauge, piece: bytes) -> bool:
    """Feed a piece to the gauge (in a worker thread when it is large: the event loop goes on); over the limit?"""
    if len(piece) <= _FIRST_CHUNK:
        gauge.feed(piece)
    else:
        await anyio.to_thread.run_sync(gauge.feed, piece)
    return gauge.over


def _too_deep(limit: int) -> Any:
    message = f"request body is nested deeper than the limit of {limit} levels (RISK_MAX_JSON_DEPTH)"
    return error_response(400, message, loc=["body"], headers={"Connection": "close"})


def _is_json(headers: Mapping[bytes, bytes]) -> bool:
    """Any body but a form's (the console's): JSON, one that says no media type (the API reads it as JSON),
    or one that says another (the API refuses it with 415 later, after this measure)."""
    media = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
    return media not in _FORMS
