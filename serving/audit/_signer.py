"""The service's checkpoints: verify, then sign, at an interval, on shutdown and on demand.

Nothing is signed that was not verified first: every path (:meth:`Checkpointer.sign`) walks the chains
from the latest checkpoint it trusts (its own key's, each signature checked) to the heads, record
signatures included, and refuses a broken or unexplained state. A refusal is logged, kept in
``refusals.jsonl`` until an auditor resolves it (``riskctl audit resolve``), and shown on the auditor's
page and in ``/metrics``; the signer itself (:mod:`serving.audit._signing`) then signs only heads it
signed as records.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from serving.audit._anchors import expectations
from serving.audit._chain import Expectations
from serving.audit._checkpoint import Checkpoint, CheckpointError, CheckpointLog, RefusalLog
from serving.audit._records import VerifyResult
from serving.audit._signing import Signer, SignerError

log = logging.getLogger(__name__)


class SigningRefused(RuntimeError):
    """The state of the trail was not verified: nothing was signed. ``result`` says what failed."""

    def __init__(self, message: str, result: VerifyResult | None = None) -> None:
        super().__init__(message)
        self.result = result


class _Verifiable(Protocol):
    def verify(
        self, *, expect: Expectations | None = ..., allow_newer: bool = ..., since: Mapping[str, int] | None = ...
    ) -> VerifyResult: ...

    def head(self) -> dict[str, tuple[int, str]]: ...


class Checkpointer:
    """Verifies ``store`` and signs its heads into ``checkpoint_log``; with ``interval_s`` > 0,
    :meth:`start` does it periodically.

    Parameters
    ----------
    store
        The audit store (:class:`serving.audit.AuditStore`).
    signer
        Who holds the key (:class:`serving.audit.LocalSigner` or :class:`serving.audit.SignerClient`).
    checkpoint_log
        Where each checkpoint is appended (and the checkpoints trusted are read from).
    interval_s
        Seconds between periodic checkpoints (0: none).
    name
        Who signs (host and process), written into each checkpoint.
    on_refusals
        Called with the number of refusals not yet resolved after each attempt to sign (a gauge of
        ``/metrics``).
    """

    def __init__(
        self,
        store: _Verifiable,
        signer: Signer,
        checkpoint_log: CheckpointLog,
        *,
        interval_s: float,
        name: str = "",
        on_refusals: Callable[[int], None] | None = None,
    ) -> None:
        self.store = store
        self._on_refusals = on_refusals
        self.signer = signer
        self.log = checkpoint_log
        self.refusals = RefusalLog(checkpoint_log.path.parent)
        self._interval = interval_s
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: tuple[tuple[str, int, str], ...] | None = None
        self._lock = threading.Lock()

    def public_key(self) -> Ed25519PublicKey:
        """The public half of the signing key."""
        return self.signer.public_key()

    def trusted(self) -> tuple[list[Checkpoint], Expectations]:
        """The checkpoints of the log and what they sign, every signature checked against the signer's key.

        Raises
        ------
        CheckpointError
            If a line of the log cannot be read, or a checkpoint in it does not hold with the signer's key
            (the log was altered, or another key's checkpoints were put in it).
        """
        signed = self.log.read()
        if not signed:
            return [], Expectations(public_key=self.public_key())
        return signed, expectations(signed, self.public_key())

    def verify(self, *, full: bool = True) -> tuple[VerifyResult, int]:
        """Walk the trail against the trusted checkpoints (``full``: every record; else from the longest
        signed head of each chain); returns the result and how many checkpoints it was checked against."""
        try:
            signed, expect = self.trusted()
        except CheckpointError as exc:
            return VerifyResult(False, 0, None, f"the checkpoint log does not hold: {exc}"), 0
        since = None if full or expect.latest is None else {c: n for c, (n, _) in expect.latest.items()}
        return self.store.verify(expect=expect, allow_newer=True, since=since), len(signed)

    def sign(
        self, *, full: bool = False, force: bool = True, verified: VerifyResult | None = None
    ) -> Checkpoint | None:
        """Verify, then sign the heads verified and append the checkpoint to the log.

        ``full`` walks every record (else from the latest checkpoint on); ``verified`` is a result just
        obtained by :meth:`verify` (not walked again); without ``force``, nothing is signed (None) when the
        heads did not change since this signer's last checkpoint.

        Raises
        ------
        SigningRefused
            If the trail is broken, a record is not the service's, or the signer refuses; the refusal is
            logged and kept for an auditor (:attr:`refusals`).
        """
        try:
            return self._sign(full=full, force=force, verified=verified)
        finally:
            if self._on_refusals is not None:
                try:
                    self._on_refusals(len(self.refused()))
                except Exception:  # a metric must never stop signing
                    log.exception("could not report the refusals")

    def _sign(self, *, full: bool, force: bool, verified: VerifyResult | None) -> Checkpoint | None:
        with self._lock:
            if not force and self._last is not None:
                now = tuple(sorted((c, n, h) for c, (n, h) in self.store.head().items()))
                if now == self._last:
                    return None
            result = verified if verified is not None else self.verify(full=full)[0]
            if not result.ok:
                self._refuse(f"{result.problem}", result.first_broken)
                raise SigningRefused(f"not signed: {result.problem}", result)
            heads = dict(result.heads or {})
            try:
                checkpoint = self.signer.sign_checkpoint(heads, proofs=result.head_proofs, signer=self._name)
            except SignerError as exc:
                self._refuse(str(exc), None)
                raise SigningRefused(f"not signed: {exc}", result) from None
            self.log.append(checkpoint)
            self._last = tuple(sorted((c, n, h) for c, (n, h) in heads.items()))
            return checkpoint

    def refused(self) -> list[dict[str, Any]]:
        """The refusals no auditor has resolved yet, oldest first."""
        return self.refusals.open()

    def start(self) -> None:
        """Sign periodically in a daemon thread (nothing if the interval is 0)."""
        if self._interval <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="audit-checkpoints", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the periodic thread and sign one last checkpoint of a verified state (at shutdown)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._quietly()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._quietly()

    def _quietly(self) -> None:
        try:
            self.sign(force=False)  # an idle service does not repeat the same checkpoint
        except SigningRefused as exc:
            log.error("audit checkpoint refused: %s", exc)
        except Exception:  # the database may be briefly unavailable: try again next time
            log.exception("could not sign a checkpoint")

    def _refuse(self, problem: str, first_broken: str | None) -> None:
        log.error("refusing to sign the audit trail's heads: %s", problem)
        try:
            self.refusals.refuse(problem=problem, first_broken=first_broken, by=self._name)
        except OSError:
            log.exception("could not record the refusal in %s", self.refusals.path)
