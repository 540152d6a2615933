"""Bearer-token roles of the service (design.md, "Interfaces": every request is authenticated).

Four roles, each with only the permissions it needs:

- caseworker: score one person or a batch (or by person id), record events, see the due list and
  run or read the review meeting list of their office, propose a tier change;
- supervisor (司法所所长): the caseworker's reading and review work for the office, approve or reject
  tier changes, the decision report of the office;
- auditor: read stored assessments, verify the audit trail, the decision report of every office;
- modeler: describe the models in service.

Caseworkers' and supervisors' tokens carry their ``office``: the case flows (serving/cases) act only
on persons of that office.

Tokens live in a local config file (JSON, or YAML if the name ends in ``.yaml``/``.yml``) only as
SHA-256 hashes, beside the secret of the HMAC of person ids used by the audit store. On first run
:func:`load_or_create` writes the file (mode 0600) with one fresh token per role and hands the raw
tokens back once, for the caller to show to the operator. Raw tokens are never logged and never
appear in error messages.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from serving.storage import write_private_file

logger = logging.getLogger(__name__)


class Role(StrEnum):
    """Who is calling."""

    CASEWORKER = "caseworker"
    SUPERVISOR = "supervisor"
    AUDITOR = "auditor"
    MODELER = "modeler"


class Permission(StrEnum):
    """What a request needs."""

    SCORE = "score"
    READ_ASSESSMENTS = "read_assessments"
    VERIFY = "verify"
    MODEL_INFO = "model_info"
    RECORD_EVENT = "record_event"
    READ_CASES = "read_cases"
    REVIEW = "review"
    PROPOSE = "propose"
    DECIDE = "decide"
    REPORT_DECISIONS = "report_decisions"


#: The permissions of each role (read-only).
ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = MappingProxyType(
    {
        Role.CASEWORKER: frozenset(
            {Permission.SCORE, Permission.RECORD_EVENT, Permission.READ_CASES, Permission.REVIEW, Permission.PROPOSE}
        ),
        Role.SUPERVISOR: frozenset(
            {Permission.READ_CASES, Permission.REVIEW, Permission.DECIDE, Permission.REPORT_DECISIONS}
        ),
        Role.AUDITOR: frozenset({Permission.READ_ASSESSMENTS, Permission.VERIFY, Permission.REPORT_DECISIONS}),
        Role.MODELER: frozenset({Permission.MODEL_INFO}),
    }
)


def hash_token(token: str) -> str:
    """SHA-256 of a raw token (hex), the form in which tokens are stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenEntry(BaseModel):
    """The role and user name behind one token."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role
    user: str = Field(min_length=1)
    office: str | None = Field(
        default=None, min_length=1, max_length=64, description="the office (司法所) of a caseworker or supervisor"
    )


class AuthConfig(BaseModel):
    """Token hashes and the audit secret, as stored in the config file.

    Attributes
    ----------
    tokens
        SHA-256 hex of each token -> its role and user name.
    audit_secret
        Hex key of the HMAC of person ids (pass it to ``AuditStore(secret=...)``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: dict[str, TokenEntry]
    audit_secret: str = Field(min_length=32, pattern=r"^[0-9a-fA-F]+$")

    @field_validator("tokens")
    @classmethod
    def _hashed(cls, tokens: dict[str, TokenEntry]) -> dict[str, TokenEntry]:
        for digest in tokens:
            if len(digest) != 64 or any(ch not in "0123456789abcdefABCDEF" for ch in digest):
                raise ValueError("token keys must be SHA-256 hex digests (64 hex digits), never raw tokens")
        return {digest.lower(): entry for digest, entry in tokens.items()}

    @field_validator("audit_secret")
    @classmethod
    def _even(cls, secret: str) -> str:
        if len(secret) % 2:
            raise ValueError("audit_secret must be hex bytes (an even number of hex digits)")
        return secret.lower()

    def audit_key(self) -> bytes:
        """The audit secret as bytes."""
        return bytes.fromhex(self.audit_secret)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    role: Role
    user: str
    office: str | None = None

    def can(self, permission: Permission | str) -> bool:
        """Whether this caller's role grants ``permission``."""
        return Permission(permission) in ROLE_PERMISSIONS[self.role]


class AuthError(Exception):
    """Authentication (401) or authorisation (403) failure; the message never holds a token."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers to send with the error (``WWW-Authenticate`` for 401)."""
        return {"WWW-Authenticate": "Bearer"} if self.status == 401 else {}


def load_or_create(path: Path | str) -> tuple[AuthConfig, dict[Role, str] | None]:
    """Read the auth config, or create it with fresh tokens and a fresh audit secret.

    Parameters
    ----------
    path
        The config file (JSON, or YAML for ``.yaml``/``.yml``).

    Returns
    -------
    config, raw_tokens
        ``raw_tokens`` (role -> token) only when this call created the file, so that the
        caller can show them once; None when the file already existed.
    """
    path = Path(path)
    if path.exists():
        return _read(path), None
    raw = {role: secrets.token_urlsafe(32) for role in Role}
    config = AuthConfig(
        tokens={hash_token(tok): TokenEntry(role=role, user=role.value) for role, tok in raw.items()},
        audit_secret=secrets.token_hex(32),
    )
    try:
        _write(path, config, replace=False)
    except FileExistsError:
        return _read(path), None
    logger.info("created auth config %s with one new token per role", path)
    return config, raw


def token_file(folder: Path | str, role: Role | str, user: str) -> Path:
    """Where a user's raw token is handed over: ``<folder>/<role>-<user>.token`` (unsafe characters as ``_``)."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in f"{Role(role).value}-{user}")[:100]
    return Path(folder) / f"{safe}.token"


def write_token(folder: Path | str, role: Role | str, user: str, token: str) -> Path:
    """Write one raw token to :func:`token_file` with mode 0600 (the folder 0700); returns the path."""
    path = token_file(folder, role, user)
    write_private_file(path, f"{token}\n".encode(), replace=True)
    return path


def store_new_tokens(tokens: Mapping[Any, str], folder: Path | str) -> list[Path]:
    """Write freshly created raw tokens to files of mode 0600 (:func:`token_file`, the folder 0700),
    never to a log or stdout (under a supervisor stdout is the server log), and log where.

    ``tokens`` maps a role (its default user has the role's name) or a ``(role, user)`` pair to a token.
    """
    written = []
    for key, token in tokens.items():
        role, user = key if isinstance(key, tuple) else (Role(key).value, Role(key).value)
        written.append(write_token(folder, role, user, token))
    logger.warning("new access tokens written to %s (mode 0600): hand them over, then delete them", Path(folder))
    return written


def issue_token(path: Path | str, *, role: Role | str, user: str, office: str | None = None) -> str:
    """A fresh token for ``user`` in ``role``, replacing that user's earlier token in this role.

    The config file must exist (:func:`load_or_create`); only the token's hash is written.
    Returns the raw token, for the caller to hand over once.
    """
    path, role = Path(path), Role(role)
    config = _read(path)
    token = secrets.token_urlsafe(32)
    kept = {d: e for d, e in config.tokens.items() if not (e.user == user and e.role == role)}
    kept[hash_token(token)] = TokenEntry(role=role, user=user, office=office)
    _write(path, config.model_copy(update={"tokens": kept}), replace=True)
    logger.info("issued a new %s token for %s in %s", role.value, user, path)
    return token


def revoke_tokens(path: Path | str, *, user: str, role: Role | str | None = None) -> int:
    """Remove ``user``'s tokens (in ``role`` only, if given) from the config; returns how many."""
    path = Path(path)
    config = _read(path)
    kept = {d: e for d, e in config.tokens.items() if not (e.user == user and (role is None or e.role == Role(role)))}
    removed = len(config.tokens) - len(kept)
    if removed:
        _write(path, config.model_copy(update={"tokens": kept}), replace=True)
    logger.info("revoked %d token(s) of %s in %s", removed, user, path)
    return removed


def _write(path: Path, config: AuthConfig, *, replace: bool) -> None:
    """Write the config atomically (mode 0600); with ``replace=False`` fail if the file exists."""
    data = config.model_dump(mode="json")
    text = yaml.safe_dump(data, sort_keys=True) if _is_yaml(path) else json.dumps(data, indent=2, sort_keys=True)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # atomic, and fails if another process created the file meanwhile
    finally:
        tmp.unlink(missing_ok=True)


class Authenticator:
    """Checks bearer tokens against the config's hashes and roles against permissions."""

    def __init__(self, config: AuthConfig) -> None:
        self._entries = [
            (bytes.fromhex(digest), entry.role, entry.user, entry.office) for digest, entry in config.tokens.items()
        ]

    def authenticate(self, authorization_header: str | None) -> Principal:
        """The caller behind an ``Authorization: Bearer <token>`` header.

        Raises
        ------
        AuthError
            Status 401 if the header is missing or malformed or the token is unknown.
        """
        if authorization_header is None or not authorization_header.strip():
            raise AuthError(401, "missing Authorization header")
        parts = authorization_header.split()
        if len(parts) != 2 or parts[0].lower() != "bearer":
            raise AuthError(401, "malformed Authorization header: expected 'Bearer <token>'")
        digest = hashlib.sha256(parts[1].encode("utf-8")).digest()
        found = None
        for known, role, user, office in self._entries:  # no early exit: the time does not depend on the match
            if hmac.compare_digest(digest, known):
                found = Principal(role, user, office)
        if found is None:
            logger.warning("rejected a request with an unknown token")
            raise AuthError(401, "unknown or revoked token")
        return found

    def require(self, principal: Principal, permission: Permission | str) -> None:
        """Raise :class:`AuthError` (403) unless ``principal``'s role grants ``permission``."""
        if not principal.can(permission):
            logger.warning(
                "denied %s to %s (role %s)", Permission(permission).value, principal.user, principal.role.value
            )
            raise AuthError(403, f"role '{principal.role.value}' may not {Permission(permission).value}")

    def authorize(self, authorization_header: str | None, permission: Permission | str) -> Principal:
        """:meth:`authenticate` then :meth:`require`, returning the caller."""
        principal = self.authenticate(authorization_header)
        self.require(principal, permission)
        return principal


class TokenFile:
    """The auth file's current tokens: re-read when the file changes, checked at most once a second.

    Every worker process holds one. ``riskctl token`` replaces the file atomically (a new inode and
    modification time), so a rotated or revoked token stops working, and a new one starts working,
    within ``check_interval_s`` (1 s by default) in every worker, without a restart. A file that
    becomes unreadable or invalid keeps the last good tokens in force and logs an error (a half-edited
    file must not lock everyone out, nor let anyone in).

    Parameters
    ----------
    path
        The auth config file (created with fresh tokens if missing, as :func:`load_or_create` does).
    check_interval_s
        Least time between two ``stat`` calls of the file.
    clock
        Monotonic clock in seconds (tests pass their own).
    """

    def __init__(
        self, path: Path | str, *, check_interval_s: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.path = Path(path)
        self._interval = check_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        config, _ = load_or_create(self.path)
        self._signature = file_signature(self.path)
        self._authenticator = Authenticator(config)
        self._checked = clock()

    def authenticator(self) -> Authenticator:
        """The token checker for the file as it is now (at most ``check_interval_s`` old)."""
        now = self._clock()
        if now - self._checked >= self._interval:
            with self._lock:
                if now - self._checked >= self._interval:
                    self._checked = now
                    self._reload_if_changed()
        return self._authenticator

    def _reload_if_changed(self) -> None:
        try:
            changed, signature = may_have_changed(self.path, self._signature)
            if not changed:
                return
            self._authenticator = Authenticator(_read(self.path))
            self._signature = signature
            logger.info("auth config %s changed: tokens reloaded", self.path)
        except (OSError, ValueError) as exc:
            logger.error("auth config %s could not be re-read, the previous tokens stay in force: %s", self.path, exc)


#: A file modified this recently (ns) may have changed again unseen: see :func:`may_have_changed`.
RACY_NS = 2_000_000_000


def file_signature(path: Path) -> tuple[int, int, int]:
    """(inode, modification time, size) of ``path``."""
    st = path.stat()
    return st.st_ino, st.st_mtime_ns, st.st_size


def may_have_changed(path: Path, last: tuple[int, int, int] | None) -> tuple[bool, tuple[int, int, int]]:
    """Whether ``path`` may differ from when its signature was ``last``, and its signature now.

    File times advance in coarse clock ticks and a replaced file's inode may be reused at once, so two
    rewrites of the same size within one tick can leave the signature as it was (a revoked token would
    then stay valid). A file modified in the last two seconds is therefore always taken as changed, as
    git treats a "racily clean" index entry.
    """
    now = file_signature(path)
    return now != last or time.time_ns() - now[1] < RACY_NS, now


def _is_yaml(path: Path) -> bool:
    return path.suffix.lower() in (".yaml", ".yml")


def _read(path: Path) -> AuthConfig:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        logger.warning("auth config %s is readable by others (mode %o); run chmod 600 on it", path, mode)
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text) if _is_yaml(path) else json.loads(text)
        return AuthConfig.model_validate(data)
    except (ValueError, yaml.YAMLError) as exc:  # json and pydantic errors are ValueErrors
        if isinstance(exc, ValidationError):  # name fields, never echo the values (secrets)
            detail = "; ".join(f"{_where(e['loc'])}: {e['msg']}" for e in exc.errors())
        elif isinstance(exc, json.JSONDecodeError):  # position only, no content
            detail = f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        else:
            mark = getattr(exc, "problem_mark", None)
            detail = f"not valid YAML{f' at line {mark.line + 1}' if mark else ''}"
        raise ValueError(f"{path}: invalid auth config: {detail}") from None


def _where(loc: tuple[Any, ...]) -> str:
    """An error location with the token key masked (it might be a raw token pasted by mistake)."""
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] == "tokens":
        parts[1] = "<token>"
    return ".".join(parts) or "config"
