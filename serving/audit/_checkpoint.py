"""A signed checkpoint of the chain heads, and the append-only file that keeps them."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from serving.audit._keys import key_id
from serving.storage import append_private_line

log = logging.getLogger(__name__)
FORMAT = "reoffence-audit-checkpoint/1"
LOG_NAME = "checkpoints.jsonl"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or whose signature does not hold."""


@dataclass(frozen=True)
class Checkpoint:
    """Each chain's length and last record hash at ``signed_at``, signed by the key ``key_id``.

    The signature is Ed25519 over :meth:`payload`: the canonical JSON (sorted keys, compact, UTF-8)
    of every other field.
    """

    chains: Mapping[str, Mapping[str, Any]]
    signed_at: str
    key_id: str
    signer: str = ""
    signature: str = field(default="", compare=False)
    format: str = FORMAT

    def payload(self) -> bytes:
        """The signed bytes."""
        data = {
            "format": self.format,
            "chains": {
                c: {"length": int(v["length"]), "last_hash": str(v["last_hash"])} for c, v in self.chains.items()
            },
            "signed_at": self.signed_at,
            "key_id": self.key_id,
            "signer": self.signer,
        }
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint as written to the file and returned by ``/verify``."""
        return {**json.loads(self.payload()), "signature": self.signature}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Checkpoint:
        """Read a checkpoint; raises :class:`CheckpointError` naming what is missing or malformed."""
        try:
            if data.get("format") != FORMAT:
                raise CheckpointError(f"unknown checkpoint format {str(data.get('format'))[:40]!r}")
            chains = {
                str(c): {"length": int(v["length"]), "last_hash": str(v["last_hash"])}
                for c, v in dict(data["chains"]).items()
            }
            return cls(
                chains=chains,
                signed_at=str(data["signed_at"]),
                key_id=str(data["key_id"]),
                signer=str(data.get("signer", "")),
                signature=str(data["signature"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, CheckpointError):
                raise
            raise CheckpointError(f"malformed checkpoint: {type(exc).__name__} {exc}") from None

    def verify(self, public_key: Ed25519PublicKey) -> None:
        """Raise :class:`CheckpointError` unless ``public_key`` signed exactly this checkpoint."""
        if self.key_id != key_id(public_key):
            raise CheckpointError(
                f"checkpoint of {self.signed_at} was signed by key {self.key_id}, "
                f"not by the given public key {key_id(public_key)}"
            )
        try:
            public_key.verify(base64.b64decode(self.signature, validate=True), self.payload())
        except (InvalidSignature, ValueError):
            raise CheckpointError(
                f"checkpoint of {self.signed_at}: the signature does not hold (checkpoint altered or forged)"
            ) from None

    def describe(self) -> str:
        """How messages name this checkpoint."""
        return f"the checkpoint of {self.signed_at}"


def sign_head(head: Mapping[str, tuple[int, str]], key: Ed25519PrivateKey, *, signer: str = "") -> Checkpoint:
    """Sign ``head`` (chain -> (length, last hash), as :meth:`serving.audit.AuditStore.head` gives it)."""
    unsigned = Checkpoint(
        chains={c: {"length": n, "last_hash": h} for c, (n, h) in sorted(head.items())},
        signed_at=datetime.now(UTC).isoformat(timespec="microseconds"),
        key_id=key_id(key.public_key()),
        signer=signer,
    )
    signature = base64.b64encode(key.sign(unsigned.payload())).decode("ascii")
    return Checkpoint(
        chains=unsigned.chains, signed_at=unsigned.signed_at, key_id=unsigned.key_id, signer=signer, signature=signature
    )


def read_checkpoints(path: Path | str) -> list[Checkpoint]:
    """Every checkpoint in a file: JSON Lines as :class:`CheckpointLog` writes, or one JSON object
    (a checkpoint copied from a ``/verify`` answer). Raises :class:`CheckpointError` with the line."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    found = []
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, dict):
        return [Checkpoint.from_dict(whole.get("checkpoint", whole))]
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            found.append(Checkpoint.from_dict(json.loads(line)))
        except (json.JSONDecodeError, CheckpointError) as exc:
            raise CheckpointError(f"{path} line {line_no}: {exc}") from None
    if not found:
        raise CheckpointError(f"{path}: no checkpoint in the file")
    return found


class CheckpointLog:
    """An append-only JSON Lines file of checkpoints (``<folder>/checkpoints.jsonl``, mode 0600).

    Each checkpoint is one ``O_APPEND`` write flushed to disk, so workers and replicas sharing the
    folder never interleave lines. Ship the file where the database's writer cannot change it (a
    log collector, WORM storage, an auditor's copy): the service only ever appends.
    """

    def __init__(self, folder: Path | str) -> None:
        self.path = Path(folder) / LOG_NAME
        self._read: list[Checkpoint] = []
        self._offset = 0
        self._inode: tuple[int, int] | None = None

    def append(self, checkpoint: Checkpoint) -> None:
        append_private_line(self.path, checkpoint.to_json())
        log.info(
            "signed checkpoint %s: %s", self.path, ", ".join(f"{c} {v['length']}" for c, v in checkpoint.chains.items())
        )

    def read(self) -> list[Checkpoint]:
        """Every checkpoint so far, oldest first (none if the file does not exist yet).

        Lines already read are kept: only what was appended since is parsed. A file that shrank or was
        replaced is read again from the start. Raises :class:`CheckpointError` naming a bad line.
        """
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._read, self._offset, self._inode = [], 0, None
            return []
        inode = (stat.st_dev, stat.st_ino)
        if inode != self._inode or stat.st_size < self._offset:
            self._read, self._offset, self._inode = [], 0, inode
        if stat.st_size > self._offset:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                data = f.read(stat.st_size - self._offset)
            complete = data[: data.rfind(b"\n") + 1]  # a line being appended is read next time
            first_line = len(self._read) + 1
            for i, line in enumerate(complete.decode("utf-8").splitlines()):
                if not line.strip():
                    continue
                try:
                    self._read.append(Checkpoint.from_dict(json.loads(line)))
                except (json.JSONDecodeError, CheckpointError) as exc:
                    self._read, self._offset, self._inode = [], 0, None
                    raise CheckpointError(f"{self.path} line {first_line + i}: {exc}") from None
            self._offset += len(complete)
        return list(self._read)


class RefusalLog:
    """Signing refusals, kept until an auditor resolves them (``<folder>/refusals.jsonl``, mode 0600).

    A refusal line says when, by whom and why the service would not sign (a broken or unexplained
    state of the trail); a resolution line (``riskctl audit resolve``) closes every refusal before it.
    """

    def __init__(self, folder: Path | str) -> None:
        self.path = Path(folder) / "refusals.jsonl"

    def refuse(self, *, problem: str, first_broken: str | None, by: str) -> None:
        """Record a refusal, unless the same problem is already open."""
        if any(r.get("problem") == problem for r in self.open()):
            return
        entry = {
            "refused_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "by": by,
            "problem": problem,
            "first_broken": first_broken,
        }
        append_private_line(self.path, json.dumps(entry, ensure_ascii=False, sort_keys=True))

    def resolve(self, *, by: str, note: str) -> int:
        """Close every open refusal with the auditor's note; returns how many were open."""
        count = len(self.open())
        entry = {"resolved_at": datetime.now(UTC).isoformat(timespec="seconds"), "by": by, "note": note}
        append_private_line(self.path, json.dumps(entry, ensure_ascii=False, sort_keys=True))
        return count

    def open(self) -> list[dict[str, Any]]:
        """The refusals since the last resolution, oldest first."""
        if not self.path.exists():
            return []
        found: list[dict[str, Any]] = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line: the next append starts a new one
            if not isinstance(entry, dict):
                continue
            if "resolved_at" in entry:
                found = []
            elif "refused_at" in entry:
                found.append(entry)
        return found
