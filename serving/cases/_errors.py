"""The one error of the case flows: refused input, naming the record and the field."""

from __future__ import annotations

from typing import Any


class CaseError(ValueError):
    """A refused request or import: HTTP ``status`` (CLI exit code 2), what was refused and where.

    Parameters
    ----------
    status
        404 unknown person/decision/run, 403 another office's person or the wrong role, 409 a
        conflict with the stored state (same tier, decision already decided), 422 invalid values.
    message
        English text naming the record and the field.
    loc
        The field path of the refused value, e.g. ``["person_id"]``.
    zh
        The same message in Chinese (shown when the request asked for ``lang="zh"``).
    """

    def __init__(self, status: int, message: str, *, loc: list[Any] | None = None, zh: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.loc = list(loc or [])
        self.zh = zh

    def text(self, lang: str = "en") -> str:
        """The message in ``lang`` (English when no Chinese text was given)."""
        return self.zh if lang == "zh" and self.zh else self.message
