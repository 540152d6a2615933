"""``riskctl audit signer``: the signing key in a process of its own, reached over a Unix socket.

Run it as another user than the service (and than the database's writer): the key file is that user's
(mode 0600), the socket is group-writable for the service's group, and the checkpoint stream it appends
to is in a folder the service cannot write. The service asks it to sign each record as it is written and
to sign a checkpoint of heads the service verified; the signer signs a checkpoint only of heads it signed
itself (each head's record signature is checked), so a
forged record is never vouched for even if the service's own check were fooled.

Protocol: one JSON object per line each way, one request per connection.

- ``{"op": "public_key"}`` -> ``{"public_key": PEM, "key_id": ...}``
- ``{"op": "sign_records", "chain": C, "records": [[seq, hash], ...]}`` -> ``{"signatures": [...]}``
- ``{"op": "sign_checkpoint", "head": {C: [n, hash]}, "proofs": {C: sig}, "signer": who}``
  -> ``{"checkpoint": {...}}``
- anything refused -> ``{"error": "why"}``
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import socketserver
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from serving.audit._checkpoint import CheckpointError, CheckpointLog
from serving.audit._keys import load_or_create_key, public_key_pem
from serving.audit._signing import MAX_LINE, LocalSigner, SignerError
from serving.audit._tables import CHAINS

log = logging.getLogger(__name__)
_HASH = re.compile(r"^[0-9a-f]{64}$")
MAX_RECORDS = 200_000  # per request


class SignerService:
    """What the signer process does, without the socket (tests call :meth:`handle` directly)."""

    def __init__(self, key_file: Path | str, checkpoint_dir: Path | str) -> None:
        key = load_or_create_key(key_file)
        self.log = CheckpointLog(checkpoint_dir)
        probe = LocalSigner(key)
        own = [c for c in self.log.read() if c.key_id == probe.key_id]
        self.signer = LocalSigner(key, signed_before=own[-1] if own else None)
        self._lock = threading.Lock()
        log.info("signer with key %s, checkpoints to %s", self.signer.key_id, self.log.path)

    def handle(self, request: Any) -> dict[str, Any]:
        """Answer one request (see the module docstring); refusals are ``{"error": ...}``."""
        try:
            if not isinstance(request, Mapping):
                raise SignerError("a request is a JSON object")
            op = request.get("op")
            if op == "public_key":
                return {"public_key": public_key_pem(self.signer.public_key()).decode(), "key_id": self.signer.key_id}
            if op == "sign_records":
                chain = _chain(request.get("chain"))
                records = request.get("records")
                if not isinstance(records, list) or len(records) > MAX_RECORDS:
                    raise SignerError(f"records: a list of at most {MAX_RECORDS} [seq, hash] pairs")
                pairs = [_pair(item) for item in records]
                return {"signatures": self.signer.sign_records(chain, pairs)}
            if op == "sign_checkpoint":
                head = request.get("head")
                proofs = request.get("proofs") or {}
                if not isinstance(head, Mapping) or not isinstance(proofs, Mapping):
                    raise SignerError("head and proofs: JSON objects by chain")
                heads = {_chain(c): _pair(v) for c, v in head.items()}
                with self._lock:
                    checkpoint = self.signer.sign_checkpoint(
                        heads,
                        proofs={str(c): (str(p) if p else None) for c, p in proofs.items()},
                        signer=str(request.get("signer") or "")[:200],
                    )
                    self.log.append(checkpoint)
                return {"checkpoint": checkpoint.to_dict()}
            raise SignerError(f"unknown op {str(op)[:40]!r}")
        except (SignerError, CheckpointError) as exc:
            log.warning("signer refused: %s", exc)
            return {"error": str(exc)}


def _chain(value: Any) -> str:
    if value not in CHAINS:
        raise SignerError(f"unknown chain {str(value)[:40]!r}")
    return str(value)


def _pair(item: Any) -> tuple[int, str]:
    if (
        not isinstance(item, list)
        or len(item) != 2
        or not isinstance(item[0], int)
        or isinstance(item[0], bool)
        or item[0] < 0
        or not isinstance(item[1], str)
        or not _HASH.match(item[1])
    ):
        raise SignerError("each record is [seq, 64 hex digits]")
    return item[0], item[1]


def serve_signer(service: SignerService, socket_path: Path | str, *, mode: int = 0o660) -> None:
    """Serve ``service`` on a Unix socket at ``socket_path`` (mode ``mode``: the service's group may write)
    until interrupted."""
    path = Path(socket_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_socket():
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            if probe.connect_ex(str(path)) == 0:
                raise SignerError(f"a signer is already listening on {path}")
        path.unlink()  # left by a signer that stopped

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            line = self.rfile.readline(MAX_LINE + 1)
            if len(line) > MAX_LINE:
                answer: dict[str, Any] = {"error": f"request longer than {MAX_LINE} bytes"}
            else:
                try:
                    answer = service.handle(json.loads(line))
                except (json.JSONDecodeError, UnicodeDecodeError):
                    answer = {"error": "a request is one line of JSON"}
            self.wfile.write(json.dumps(answer, separators=(",", ":")).encode("utf-8") + b"\n")

    class Server(socketserver.ThreadingUnixStreamServer):
        daemon_threads = True

    with Server(str(path), Handler) as server:
        os.chmod(path, mode)
        log.info("signer listening on %s", path)
        try:
            server.serve_forever()
        finally:
            path.unlink(missing_ok=True)
