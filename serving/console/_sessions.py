"""Sign-in sessions of the console: a role token exchanged for an expiring, revocable session.

The browser holds only a random session id (an HTTP-only, SameSite=Strict, Secure cookie); the
store keeps its SHA-256, the SHA-256 of the token it was opened with, the role and user, a
per-session CSRF secret and the expiry. A session is valid while it is not expired, not ended
(sign-out) and its token is still in the auth config: :class:`TokenBook` re-reads the config
file when it changes, so revoking a token (``riskctl token`` replacing it, or deleting its
entry) ends its sessions at the next request, without a restart. The store is a SQL table
(SQLite under ``RISK_HOME`` by default, or any SQLAlchemy URL) so that every worker process of
the service sees the same sessions.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, delete, select, update

from serving.auth import AuthConfig, Principal, Role, load_or_create, may_have_changed
from serving.storage import make_engine

log = logging.getLogger(__name__)

_metadata = MetaData()
sessions = Table(
    "console_sessions",
    _metadata,
    Column("sid_hash", String(64), primary_key=True),
    Column("token_hash", String(64), nullable=False, index=True),
    Column("role", String(32), nullable=False),
    Column("user", String(200), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("ended", Integer, nullable=False, default=0),
)


#: ``ended`` of a session row: 0 live, 1 signed out, 2 ended because its token was revoked (the sign-in page says so)
SIGNED_OUT, REVOKED = 1, 2


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Session:
    """One signed-in user."""

    sid_hash: str
    token_hash: str
    principal: Principal
    csrf: str
    expires_at: float

    def csrf_ok(self, submitted: str | None) -> bool:
        """Whether a form's CSRF field matches this session's secret (constant time)."""
        return bool(submitted) and hmac.compare_digest(str(submitted), self.csrf)


class TokenBook:
    """The auth config's tokens, re-read whenever the file changes (revocation without restart)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._config: AuthConfig | None = None
        self._lock = threading.Lock()

    def config(self) -> AuthConfig:
        """The current config (one ``stat`` per call; the file is parsed only when it changed)."""
        try:
            changed, stamp = may_have_changed(self.path, self._stamp)
        except FileNotFoundError:
            changed, stamp = True, None
        with self._lock:
            if self._config is None or changed:
                self._config, _ = load_or_create(self.path)
                self._stamp = stamp
            return self._config

    def principal(self, token_hash: str) -> Principal | None:
        """The role and user behind a token hash, or None if the token is unknown or revoked."""
        entry = self.config().tokens.get(token_hash)
        return Principal(entry.role, entry.user, entry.office) if entry else None

    def sign_in(self, token: str) -> tuple[str, Principal] | None:
        """The hash and principal of a raw token, or None if it is not a current token."""
        digest = _sha256(token.strip())
        found = None
        for known, entry in self.config().tokens.items():  # no early exit: time does not depend on the match
            if hmac.compare_digest(known, digest):
                found = (digest, Principal(entry.role, entry.user, entry.office))
        return found


class SessionStore:
    """Console sessions in a SQL table shared by the service's worker processes.

    Parameters
    ----------
    url
        SQLAlchemy URL (``sqlite:///var/console.db`` by default).
    tokens
        The token book that decides whether a session's token is still valid.
    minutes
        Lifetime of a session from sign-in.
    """

    def __init__(self, url: str, *, tokens: TokenBook, minutes: int) -> None:
        self.tokens = tokens
        self.lifetime_s = minutes * 60
        self._engine = make_engine(url)
        _metadata.create_all(self._engine)

    def open(self, token_hash: str, principal: Principal) -> tuple[str, Session]:
        """A new session for a checked token; returns the raw session id (for the cookie) and the session."""
        sid, now = secrets.token_urlsafe(32), time.time()
        row = {
            "sid_hash": _sha256(sid),
            "token_hash": token_hash,
            "role": principal.role.value,
            "user": principal.user,
            "csrf": secrets.token_hex(32),
            "created_at": now,
            "expires_at": now + self.lifetime_s,
            "ended": 0,
        }
        with self._engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.expires_at < now - 86400))  # keep the table small
            conn.execute(sessions.insert().values(**row))
        log.info("console sign-in: %s (%s)", principal.user, principal.role.value)
        return sid, self._session(row, principal)

    def get(self, sid: str | None) -> Session | None:
        """The live session of a cookie value, or None (unknown, expired, signed out or token revoked)."""
        return self.check(sid)[0]

    def check(self, sid: str | None) -> tuple[Session | None, Literal["revoked", "expired"] | None]:
        """The live session of a cookie value, or None and why, when the user should be told: "revoked" (its
        token was revoked or replaced) or "expired"; None as the reason for no cookie, an unknown one or a
        sign-out."""
        if not sid:
            return None, None
        with self._engine.connect() as conn:
            row = conn.execute(select(sessions).where(sessions.c.sid_hash == _sha256(sid))).mappings().first()
        if row is None:
            return None, None
        if row["ended"]:
            return None, "revoked" if row["ended"] == REVOKED else None
        if row["expires_at"] <= time.time():
            return None, "expired"
        principal = self.tokens.principal(row["token_hash"])
        if principal is None or (principal.role, principal.user) != (Role(row["role"]), row["user"]):
            self.end(sid, why="token revoked", ended=REVOKED)
            return None, "revoked"
        return self._session(row, principal), None

    def end(self, sid: str, *, why: str = "signed out", ended: int = SIGNED_OUT) -> None:
        """End a session (sign-out, or ``ended=REVOKED`` for a revoked token); the cookie is worthless afterwards."""
        with self._engine.begin() as conn:
            conn.execute(update(sessions).where(sessions.c.sid_hash == _sha256(sid)).values(ended=ended))
        log.info("console session ended: %s", why)

    @staticmethod
    def _session(row: Mapping[Any, Any], principal: Principal) -> Session:  # a dict or a RowMapping
        r = dict(row)
        return Session(
            sid_hash=r["sid_hash"],
            token_hash=r["token_hash"],
            principal=principal,
            csrf=r["csrf"],
            expires_at=r["expires_at"],
        )
