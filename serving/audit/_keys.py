"""The Ed25519 signing key of the checkpoints: a PEM file of mode 0600 outside the database."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from serving.storage import warn_if_open, write_private_file

log = logging.getLogger(__name__)


def load_or_create_key(path: Path | str) -> Ed25519PrivateKey:
    """The private key in ``path``, created (mode 0600, with ``<name>.pub`` beside it) if missing.

    Raises
    ------
    ValueError
        If the file is not an Ed25519 private key in PEM (its content is never shown).
    """
    path = Path(path)
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            write_private_file(path, pem, replace=False)
            public = public_path(path)
            public.write_bytes(public_key_pem(key.public_key()))
            log.info("created checkpoint signing key %s (public key %s, id %s)", path, public, key_id(key.public_key()))
            return key
        except FileExistsError:
            pass  # another worker created it meanwhile: use that one
    warn_if_open(path)
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError):
        raise ValueError(f"{path}: not an unencrypted PEM private key") from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 key")
    return loaded


def public_path(private_path: Path) -> Path:
    """Where the public key of ``private_path`` is written (``<name>.pub``)."""
    return private_path.with_name(private_path.name + ".pub")


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    """The public key as PEM (SubjectPublicKeyInfo), to hand to auditors."""
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_key(path: Path | str) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file (or the private key's file, whose public half is taken)."""
    data = Path(path).read_bytes()
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            raise ValueError(f"{path}: not a PEM public key") from None
        key = private.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path}: not an Ed25519 key")
    return key


def key_id(key: Ed25519PublicKey) -> str:
    """A short name of a public key: the first 16 hex digits of the SHA-256 of its raw bytes."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]
