"""The audit trail (design.md, "The job", "Tamper evidence"): every answer, as returned, and every step of a
tier decision, in hash chains whose heads are signed outside the database.

- :class:`AuditStore` appends records (:meth:`~AuditStore.append_many` for assessments,
  :meth:`~AuditStore.add_decision_step` for decisions, :meth:`~AuditStore.add_model_event` for decisions
  about the models in service, such as a promotion over the gate's refusal) in one chain per table, keyed
  person ids only, and reads them back (:class:`AuditRecord`, :class:`DecisionStepRecord`,
  :class:`ModelEventRecord`, :class:`OverrideRecord` for the overrides of the earlier ``/override`` flow);
  :meth:`~AuditStore.verify` and :func:`verify_trail` walk the chains (:class:`VerifyResult`),
  :func:`read_head` reads their heads.
- Signed checkpoints: the hash chains show an edited, deleted or inserted record to anyone who cannot
  rewrite every later record and the chain head. To expose someone who can write to the database, each
  service worker signs each chain's head (length and last hash) with an Ed25519 key kept outside the
  database (:func:`load_or_create_key`, a PEM file of mode 0600) at an interval, on shutdown and on demand
  (:class:`Checkpointer`), and appends the signed :class:`Checkpoint` to an append-only file
  (:class:`CheckpointLog`); ``/verify`` returns one too. An auditor checks the trail against a checkpoint
  file with the public key alone, without the service (:func:`verify_against`,
  ``riskctl audit verify --checkpoint FILE --public-key FILE``).
- The hash recipe itself (:mod:`serving.audit.recipe`: :func:`record_hash`, :func:`canonical_json`) is
  public, with each chain's table (:data:`CHAIN_TABLES`): an independent auditor recomputes the hashes
  from the stored columns.
"""

from serving.audit import recipe
from serving.audit._anchors import expectations, verify_against
from serving.audit._chain import Expectations, read_head, verify_trail
from serving.audit._checkpoint import (
    Checkpoint,
    CheckpointError,
    CheckpointLog,
    RefusalLog,
    read_checkpoints,
    sign_head,
)
from serving.audit._cipher import RecordCipher
from serving.audit._keys import key_id, load_or_create_key, load_public_key, public_key_pem, public_path
from serving.audit._open import audit_secret, checkpointer_for, open_store, signer_for
from serving.audit._records import (
    AuditRecord,
    CaseEventRecord,
    DecisionStepRecord,
    ModelEventRecord,
    OverrideRecord,
    VerifyResult,
)
from serving.audit._signer import Checkpointer, SigningRefused
from serving.audit._signer_server import SignerService, serve_signer
from serving.audit._signing import LocalSigner, Signer, SignerClient, SignerError, record_message
from serving.audit._store import AuditStore
from serving.audit._tables import CASE_EVENTS, CHAIN_TABLES
from serving.audit.recipe import canonical_json, record_hash

__all__ = [
    "CASE_EVENTS",
    "CHAIN_TABLES",
    "AuditRecord",
    "AuditStore",
    "CaseEventRecord",
    "Checkpoint",
    "CheckpointError",
    "CheckpointLog",
    "Checkpointer",
    "DecisionStepRecord",
    "Expectations",
    "LocalSigner",
    "ModelEventRecord",
    "OverrideRecord",
    "RecordCipher",
    "RefusalLog",
    "Signer",
    "SignerClient",
    "SignerError",
    "SignerService",
    "SigningRefused",
    "VerifyResult",
    "audit_secret",
    "canonical_json",
    "checkpointer_for",
    "expectations",
    "key_id",
    "load_or_create_key",
    "load_public_key",
    "open_store",
    "public_key_pem",
    "public_path",
    "read_checkpoints",
    "read_head",
    "recipe",
    "record_hash",
    "record_message",
    "serve_signer",
    "sign_head",
    "signer_for",
    "verify_against",
    "verify_trail",
]
