"""Encryption at rest of what an assessment record holds about a person (request, answer, explanation).

AES-256-GCM with a key the database does not hold (a file of 64 hex digits outside the home, or an
environment secret; ``RISK_AUDIT_ENCRYPTION_KEY_FILE``). A stored value reads
``enc:v1:<key id>:<base64 of nonce and ciphertext>``; the column's name is the associated data, so a value
moved to another column does not decrypt. The hash chain covers what is stored (the ciphertext): the
trail verifies without the key, and a record read back through a store holding the key is the plain
text, byte for byte as it was answered.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from serving.storage import warn_if_open, write_private_file

PREFIX = "enc:v1:"
#: the assessment columns encrypted at rest
ENCRYPTED_COLUMNS = ("request_json", "response_json", "explanation_json")


class RecordCipher:
    """Encrypts and decrypts stored text with one AES-256 key (32 bytes)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the audit encryption key must be 32 bytes (64 hex digits)")
        self._aead = AESGCM(key)
        self.key_id = hashlib.sha256(b"reoffence-audit-encryption/1" + key).hexdigest()[:16]

    @classmethod
    def from_file(cls, path: Path | str) -> RecordCipher:
        """The key in ``path`` (64 hex digits).

        Raises
        ------
        ValueError
            If the file does not hold 64 hex digits (its content is never shown).
        """
        path = Path(path)
        warn_if_open(path)
        try:
            key = bytes.fromhex(path.read_text(encoding="ascii").strip())
        except (ValueError, UnicodeDecodeError):
            raise ValueError(f"{path}: not 64 hex digits") from None
        return cls(key)

    @staticmethod
    def create(path: Path | str) -> Path:
        """Write a new random key to ``path`` (mode 0600; refused if it exists)."""
        write_private_file(Path(path), os.urandom(32).hex().encode("ascii") + b"\n", replace=False)
        return Path(path)

    def encrypt(self, column: str, text: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, text.encode("utf-8"), column.encode("ascii"))
        return f"{PREFIX}{self.key_id}:{base64.b64encode(nonce + sealed).decode('ascii')}"

    def decrypt(self, column: str, stored: str) -> str:
        """The plain text of ``stored`` (returned as is if it was not encrypted).

        Raises
        ------
        ValueError
            If it was encrypted with another key, or altered.
        """
        if not is_encrypted(stored):
            return stored
        key_id, _, payload = stored[len(PREFIX) :].partition(":")
        if key_id != self.key_id:
            raise ValueError(f"{column} was encrypted with key {key_id}, not this service's key {self.key_id}")
        data = base64.b64decode(payload)
        try:
            return self._aead.decrypt(data[:12], data[12:], column.encode("ascii")).decode("utf-8")
        except InvalidTag:
            raise ValueError(f"{column}: the encrypted value does not decrypt (altered)") from None


def is_encrypted(stored: str) -> bool:
    """True if ``stored`` is a value encrypted by :class:`RecordCipher`."""
    return stored.startswith(PREFIX)
