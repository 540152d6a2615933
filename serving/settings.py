"""The service's settings: its stores, tokens, limits, checkpoints and console, read from the environment
(prefix ``RISK_``) on top of the project's (:class:`features.settings.Settings`: home, tracking URI,
registry names).

Embedded defaults need no server: the audit store, the case store and the console's sessions are SQLite
files under ``RISK_HOME``; PostgreSQL (``RISK_AUDIT_URL``, ``RISK_CASES_URL``) is taken by configuration
alone. Nothing here does work at import time; :func:`get_settings` reads the environment when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from features.settings import Settings
from features.vocab import Stage

__all__ = ["ServiceSettings", "get_settings"]


class ServiceSettings(Settings):
    """The project's settings plus the service's; every field can be set as ``RISK_<NAME>``."""

    audit_url: str | None = Field(None, description="SQLAlchemy URL of the audit store; default SQLite under home")
    cases_url: str | None = Field(None, description="SQLAlchemy URL of the case store; default SQLite under home")
    auth_file: Path | None = Field(None, description="token configuration; default <home>/auth.json")
    max_batch: int = Field(5000, description="largest batch the service accepts")
    max_body_bytes: int = Field(
        16 * 1024 * 1024,
        gt=0,
        description="largest request body the service reads "
        "(bytes); a larger one is refused with 413 before it is parsed",
    )
    max_json_depth: int = Field(
        32,
        gt=0,
        description="deepest nesting of arrays and objects in a JSON request body; a deeper one is refused with "
        "400 before it is parsed",
    )
    signing_key_file: Path | None = Field(
        None,
        description="Ed25519 private key of the audit checkpoints "
        "(PEM, mode 0600); default <home>/keys/checkpoint-ed25519.pem",
    )
    signer_socket: Path | None = Field(
        None,
        description="Unix socket of the audit signer (riskctl audit signer), a process of another user "
        "holding the signing key; unset: the service reads the key file itself (signing_key_file)",
    )
    audit_secret_file: Path | None = Field(
        None,
        description="file holding the hex key of the HMAC of person ids, kept outside the home (a mounted "
        "secret); unset: the key in the auth file",
    )
    audit_encryption_key_file: Path | None = Field(
        None,
        description="file of 64 hex digits (AES-256) that encrypts the stored request, answer and explanation "
        "at rest; keep it outside the home and the database; unset: stored as JSON text",
    )
    checkpoint_dir: Path | None = Field(
        None, description="append-only folder of signed audit checkpoints; default <home>/checkpoints"
    )
    checkpoint_interval_s: float = Field(
        300.0,
        ge=0,
        description="seconds between signed checkpoints of the "
        "audit chains in each service worker (0: only on demand and at shutdown)",
    )
    console_session_url: str | None = Field(
        None, description="SQLAlchemy URL of the web console's sign-in sessions; default SQLite under home"
    )
    console_session_minutes: int = Field(
        480, ge=1, le=7 * 24 * 60, description="a console session ends this long after sign-in"
    )
    console_secure_cookie: bool = Field(
        True, description="mark the console's cookies Secure (browsers still send them to http://127.0.0.1)"
    )
    trusted_proxies: str = Field(
        "127.0.0.1,::1",
        description="addresses (comma-separated; * for any) of reverse proxies whose X-Forwarded-Proto and "
        "X-Forwarded-For the service believes, so that it knows a request came over HTTPS (riskctl serve hands "
        "it to the server as FORWARDED_ALLOW_IPS); a request from any other address is taken as it came",
    )
    served_stages: Annotated[tuple[Stage, ...] | None, NoDecode] = Field(
        None,
        description="the stages the service serves, comma-separated (riskctl serve sets it to the stages "
        "whose registered model has a @champion); unset: every stage with a model in the BentoML store. "
        "A stage left out is answered with 503",
    )

    @field_validator("served_stages", mode="before")
    @classmethod
    def _stage_list(cls, value: Any) -> Any:
        """``intake,midterm`` (the environment's form) as a tuple of stages; an empty text is no stage."""
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    def resolved_audit_url(self) -> str:
        return self.audit_url or f"sqlite:///{(self.home / 'audit.db').resolve()}"

    def resolved_cases_url(self) -> str:
        return self.cases_url or f"sqlite:///{(self.home / 'cases.db').resolve()}"

    def resolved_auth_file(self) -> Path:
        return self.auth_file or self.home / "auth.json"

    def resolved_signing_key_file(self) -> Path:
        return self.signing_key_file or self.home / "keys" / "checkpoint-ed25519.pem"

    def resolved_checkpoint_dir(self) -> Path:
        return self.checkpoint_dir or self.home / "checkpoints"

    def resolved_console_session_url(self) -> str:
        return self.console_session_url or f"sqlite:///{(self.home / 'console.db').resolve()}"


def get_settings(**overrides: Any) -> ServiceSettings:
    """The service's settings from the environment, with explicit overrides."""
    return ServiceSettings(**overrides)
