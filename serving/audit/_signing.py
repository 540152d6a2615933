"""Who signs: each record as it is written, and checkpoints of the chain heads, with one Ed25519 key.

A record's signature is over ``reoffence-audit-record/1``, its chain, its ``seq`` and its ``record_hash``
(:func:`record_message`); the hash covers every other stored column and the link to the record before,
so a signed record cannot be edited, moved or re-linked. Someone who can write to the database and knows
the hash recipe, but cannot ask the signer, appends or rewrites records without a valid signature: the
verifier names them (:mod:`serving.audit._chain`).

Two signers have the same face (:class:`Signer`):

- :class:`LocalSigner` holds the key in the service's process (a PEM file of mode 0600). Simple, and
  enough where the database's writer is not the service's user (PostgreSQL with its own role).
- :class:`SignerClient` asks a separate process (``riskctl audit signer``, :mod:`serving.audit._signer_server`)
  over a Unix socket; that process runs as another user and holds the key, so neither the service nor
  the database's writer can read it. It signs a checkpoint only of heads it signed itself.
"""

from __future__ import annotations

import base64
import binascii
import json
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from serving.audit._checkpoint import Checkpoint, CheckpointError, sign_head
from serving.audit._keys import key_id
from serving.audit._tables import GENESIS

RECORD_FORMAT = "reoffence-audit-record/1"
#: the largest request line the signer reads (a batch of 20,000 records is about 2 MB)
MAX_LINE = 16 * 1024 * 1024


class SignerError(RuntimeError):
    """The signer refused, or could not be reached; the message says why."""


def record_message(chain: str, seq: int, record_hash: str) -> bytes:
    """The bytes a record's signature is over."""
    return f"{RECORD_FORMAT}\n{chain}\n{int(seq)}\n{record_hash}".encode("ascii")


def record_signature_holds(public_key: Ed25519PublicKey, chain: str, seq: int, record_hash: str, sig: Any) -> bool:
    """True if ``sig`` (base64) is the signature of the record ``seq`` of ``chain`` with ``record_hash``."""
    if not isinstance(sig, str) or not sig:
        return False
    try:
        public_key.verify(base64.b64decode(sig, validate=True), record_message(chain, seq, record_hash))
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


def check_heads(
    public_key: Ed25519PublicKey,
    head: Mapping[str, tuple[int, str]],
    proofs: Mapping[str, str | None],
    signed_before: Mapping[str, tuple[int, str]],
) -> None:
    """Raise :class:`SignerError` unless every head is one this key signed: an empty chain, the head of
    the signer's latest checkpoint, or a record whose signature (``proofs[chain]``) holds. (A head shorter
    than one signed before may be a worker's earlier snapshot; records deleted from the end are the
    verification's to find, against the checkpoints.)"""
    for chain, (length, last) in sorted(head.items()):
        before = signed_before.get(chain)
        if length == 0 and last == GENESIS:
            continue
        if before is not None and (length, last) == tuple(before):
            continue
        if not record_signature_holds(public_key, chain, length, last, proofs.get(chain)):
            raise SignerError(f"{chain}: the head (seq {length}) is not a record this signer signed")


class Signer(Protocol):
    """Signs records and checkpoints; never gives its private key away."""

    @property
    def key_id(self) -> str:
        """The short name of the public key (:func:`serving.audit.key_id`)."""
        ...

    def public_key(self) -> Ed25519PublicKey:
        """The public half, to verify with."""
        ...

    def sign_records(self, chain: str, records: Sequence[tuple[int, str]]) -> list[str]:
        """A base64 signature for each (seq, record_hash) of ``chain``."""
        ...

    def sign_checkpoint(
        self, head: Mapping[str, tuple[int, str]], *, proofs: Mapping[str, str | None], signer: str
    ) -> Checkpoint:
        """A checkpoint of ``head`` (each chain's length and last hash, already verified by the caller);
        ``proofs`` holds each head record's own signature. Raises :class:`SignerError` if a head is not
        one this key signed."""
        ...


class LocalSigner:
    """The key in this process (see the module docstring for when that is enough)."""

    def __init__(self, key: Ed25519PrivateKey, *, signed_before: Checkpoint | None = None) -> None:
        """``signed_before``: the latest checkpoint this key signed (its heads are signed again without a
        record signature: a trail upgraded from unsigned records ends on one)."""
        self._key = key
        self._public = key.public_key()
        self._key_id = key_id(self._public)
        self._signed: dict[str, tuple[int, str]] = {}
        if signed_before is not None:
            signed_before.verify(self._public)
            self._signed = {c: (int(v["length"]), str(v["last_hash"])) for c, v in signed_before.chains.items()}

    @property
    def key_id(self) -> str:
        return self._key_id

    def public_key(self) -> Ed25519PublicKey:
        return self._public

    def sign_records(self, chain: str, records: Sequence[tuple[int, str]]) -> list[str]:
        sign = self._key.sign
        return [base64.b64encode(sign(record_message(chain, seq, h))).decode("ascii") for seq, h in records]

    def sign_checkpoint(
        self, head: Mapping[str, tuple[int, str]], *, proofs: Mapping[str, str | None], signer: str
    ) -> Checkpoint:
        check_heads(self._public, head, proofs, self._signed)
        checkpoint = sign_head(head, self._key, signer=signer)
        self._signed = {c: (int(n), str(h)) for c, (n, h) in head.items()}
        return checkpoint


class SignerClient:
    """Asks the signer process at ``socket_path`` (``riskctl audit signer``) over its Unix socket.

    One JSON line per request and per answer; a new connection per request (the signer serves each in
    a thread). Raises :class:`SignerError` when the signer refuses or cannot be reached.
    """

    def __init__(self, socket_path: Path | str, *, timeout_s: float = 30.0) -> None:
        self.socket_path = Path(socket_path)
        self._timeout = timeout_s
        answer = self._ask({"op": "public_key"})
        loaded = serialization.load_pem_public_key(str(answer["public_key"]).encode("ascii"))
        if not isinstance(loaded, Ed25519PublicKey):
            raise SignerError(f"the signer at {self.socket_path} does not hold an Ed25519 key")
        self._public = loaded
        self._key_id = key_id(loaded)

    @property
    def key_id(self) -> str:
        return self._key_id

    def public_key(self) -> Ed25519PublicKey:
        return self._public

    def sign_records(self, chain: str, records: Sequence[tuple[int, str]]) -> list[str]:
        answer = self._ask({"op": "sign_records", "chain": chain, "records": [[int(s), str(h)] for s, h in records]})
        signatures = [str(s) for s in answer["signatures"]]
        if len(signatures) != len(records):
            raise SignerError("the signer answered a different number of signatures")
        return signatures

    def sign_checkpoint(
        self, head: Mapping[str, tuple[int, str]], *, proofs: Mapping[str, str | None], signer: str
    ) -> Checkpoint:
        answer = self._ask(
            {
                "op": "sign_checkpoint",
                "head": {c: [int(n), str(h)] for c, (n, h) in head.items()},
                "proofs": dict(proofs),
                "signer": signer,
            }
        )
        checkpoint = Checkpoint.from_dict(answer["checkpoint"])
        try:
            checkpoint.verify(self._public)
        except CheckpointError as exc:
            raise SignerError(f"the signer's checkpoint does not hold: {exc}") from None
        return checkpoint

    def _ask(self, request: Mapping[str, Any]) -> dict[str, Any]:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(self._timeout)
                conn.connect(str(self.socket_path))
                conn.sendall(json.dumps(request, separators=(",", ":")).encode("utf-8") + b"\n")
                with conn.makefile("rb") as reader:
                    line = reader.readline(MAX_LINE + 1)
        except OSError as exc:
            raise SignerError(f"cannot reach the signer at {self.socket_path}: {exc}") from None
        try:
            answer = json.loads(line)
        except json.JSONDecodeError:
            raise SignerError(f"the signer at {self.socket_path} gave no answer") from None
        if not isinstance(answer, dict):
            raise SignerError(f"the signer at {self.socket_path} gave a malformed answer")
        if "error" in answer:
            raise SignerError(f"the signer refused: {answer['error']}")
        return answer
