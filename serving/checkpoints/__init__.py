"""Signed checkpoints of the audit trail (design.md, "Tamper evidence").

The hash chains of :mod:`serving.audit` show an edited, deleted or inserted record to anyone who
cannot rewrite every later record and the chain head. To expose someone who can write to the
database, the service signs each chain's head (length and last hash) with an Ed25519 key kept outside
the database (:func:`load_or_create_key`, a PEM file of mode 0600), at an interval, on shutdown and
on demand, and appends the signed :class:`Checkpoint` to an append-only file
(:class:`CheckpointLog`) that the database's writer cannot silently replace; ``/verify`` returns one
too. An auditor checks the trail against a checkpoint file with the public key alone, without the
service (:func:`verify_against`, ``riskctl audit verify --checkpoint FILE --public-key FILE``).
"""

from serving.checkpoints._checkpoint import Checkpoint, CheckpointError, CheckpointLog, read_checkpoints, sign_head
from serving.checkpoints._keys import key_id, load_or_create_key, load_public_key, public_key_pem
from serving.checkpoints._signer import Checkpointer
from serving.checkpoints._verify import expectations, verify_against

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "CheckpointLog",
    "Checkpointer",
    "expectations",
    "key_id",
    "load_or_create_key",
    "load_public_key",
    "public_key_pem",
    "read_checkpoints",
    "sign_head",
    "verify_against",
]
