"""The trail as the service and ``riskctl`` open it from the settings: the store with its signer, its
secret and its cipher, and the checkpointer that verifies before it signs."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

from serving.audit._checkpoint import CheckpointError, CheckpointLog
from serving.audit._cipher import RecordCipher
from serving.audit._keys import key_id, load_or_create_key
from serving.audit._signer import Checkpointer
from serving.audit._signing import LocalSigner, Signer, SignerClient
from serving.audit._store import AuditStore
from serving.settings import ServiceSettings
from serving.storage import warn_if_open


def signer_for(settings: ServiceSettings) -> Signer:
    """The separate signer at ``RISK_SIGNER_SOCKET``, else the key file read by this process."""
    if settings.signer_socket is not None:
        return SignerClient(settings.signer_socket)
    key = load_or_create_key(settings.resolved_signing_key_file())
    own = key_id(key.public_key())
    try:  # the heads this key signed last (a trail upgraded from unsigned records ends on one)
        latest = [c for c in CheckpointLog(settings.resolved_checkpoint_dir()).read() if c.key_id == own]
        return LocalSigner(key, signed_before=latest[-1] if latest else None)
    except CheckpointError:  # an altered log: the verification before signing reports it
        return LocalSigner(key)


def audit_secret(settings: ServiceSettings, auth_secret: str) -> str:
    """The HMAC key of person ids: ``RISK_AUDIT_SECRET_FILE`` if set (hex), else the auth file's.

    Raises
    ------
    ValueError
        If the secret file does not hold an even number of hex digits, at least 32 (its content is never shown).
    """
    if settings.audit_secret_file is None:
        return auth_secret
    path = Path(settings.audit_secret_file)
    warn_if_open(path)
    text = path.read_text(encoding="ascii").strip()
    try:
        if len(bytes.fromhex(text)) < 16:
            raise ValueError
    except ValueError:
        raise ValueError(f"{path}: the audit secret must be at least 32 hex digits") from None
    return text


def open_store(settings: ServiceSettings, *, auth_secret: str, signer: Signer | None = None) -> AuditStore:
    """The audit store of the settings, signing with ``signer`` (default :func:`signer_for`)."""
    cipher = (
        RecordCipher.from_file(settings.audit_encryption_key_file)
        if settings.audit_encryption_key_file is not None
        else None
    )
    return AuditStore(
        settings.resolved_audit_url(),
        secret=audit_secret(settings, auth_secret),
        signer=signer if signer is not None else signer_for(settings),
        cipher=cipher,
    )


def checkpointer_for(
    settings: ServiceSettings,
    store: AuditStore,
    *,
    name: str = "",
    on_refusals: Callable[[int], None] | None = None,
) -> Checkpointer:
    """The checkpointer of ``store`` (its signer), appending to the settings' checkpoint folder."""
    assert store.signer is not None, "open the store with a signer (open_store)"
    return Checkpointer(
        store,
        store.signer,
        CheckpointLog(settings.resolved_checkpoint_dir()),
        interval_s=settings.checkpoint_interval_s,
        name=name or f"{socket.gethostname()}:{os.getpid()}",
        on_refusals=on_refusals,
    )
