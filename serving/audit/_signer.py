"""The service's signer: a checkpoint at an interval, on shutdown and on demand."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from serving.audit._checkpoint import Checkpoint, CheckpointLog, sign_head

log = logging.getLogger(__name__)


class Checkpointer:
    """Signs ``head()`` into ``checkpoint_log``; with ``interval_s`` > 0, :meth:`start` does it periodically.

    Parameters
    ----------
    head
        The chain heads now (``AuditStore.head``).
    key
        The Ed25519 signing key.
    checkpoint_log
        Where each checkpoint is appended.
    interval_s
        Seconds between periodic checkpoints (0: none).
    signer
        Who signs (host and process), written into each checkpoint.
    """

    def __init__(
        self,
        head: Callable[[], Mapping[str, tuple[int, str]]],
        key: Ed25519PrivateKey,
        checkpoint_log: CheckpointLog,
        *,
        interval_s: float,
        signer: str = "",
    ) -> None:
        self._head = head
        self._key = key
        self.log = checkpoint_log
        self._interval = interval_s
        self._signer = signer
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: tuple[tuple[str, int, str], ...] | None = None
        self._lock = threading.Lock()

    def public_key(self) -> Ed25519PublicKey:
        """The public half of the signing key."""
        return self._key.public_key()

    def sign(
        self, *, head: Mapping[str, tuple[int, str]] | None = None, record: bool = True, force: bool = True
    ) -> Checkpoint:
        """Sign ``head`` (default: the heads now); append to the log if ``record`` (unless the heads did
        not change since the last checkpoint of this signer and not ``force``)."""
        with self._lock:
            head = dict(self._head() if head is None else head)
            checkpoint = sign_head(head, self._key, signer=self._signer)
            state = tuple(sorted((c, n, h) for c, (n, h) in head.items()))
            if record and (force or state != self._last):
                self.log.append(checkpoint)
                self._last = state
            return checkpoint

    def start(self) -> None:
        """Sign periodically in a daemon thread (nothing if the interval is 0)."""
        if self._interval <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="audit-checkpoints", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the periodic thread and sign one last checkpoint (at shutdown)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            self.sign(force=False)
        except Exception:
            log.exception("could not sign the shutdown checkpoint")

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.sign(force=False)  # an idle service does not repeat the same checkpoint
            except Exception:  # the database may be briefly unavailable: try again next time
                log.exception("could not sign a periodic checkpoint")
