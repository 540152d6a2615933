"""Checking an audit store against signed checkpoints, without the service."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from serving.audit._chain import Expectations, verify_trail
from serving.audit._checkpoint import Checkpoint, CheckpointError
from serving.audit._records import VerifyResult
from serving.audit._tables import GENESIS


def expectations(checkpoints: Sequence[Checkpoint], public_key: Ed25519PublicKey) -> Expectations:
    """What ``checkpoints`` sign, per chain (seq -> (hash, checkpoint); an empty chain as seq 0), each
    signature checked, with the key to check the record signatures (:class:`Expectations`).

    Raises
    ------
    CheckpointError
        If a signature does not hold (or another key signed), a checkpoint signs an empty chain with a
        hash, or two checkpoints sign different hashes for one record.
    """
    heads: dict[str, dict[int, tuple[str, str]]] = {}
    longest: dict[str, tuple[int, str]] = {}
    for checkpoint in checkpoints:
        checkpoint.verify(public_key)
        for chain, head in checkpoint.chains.items():
            length, last = int(head["length"]), str(head["last_hash"])
            if length == 0 and last != GENESIS:
                raise CheckpointError(f"{checkpoint.describe()} signs an empty {chain} chain with a hash")
            earlier = heads.setdefault(chain, {}).get(length)
            if earlier is not None and earlier[0] != last:
                raise CheckpointError(
                    f"{checkpoint.describe()} and {earlier[1]} sign different hashes for {chain} seq {length}"
                )
            heads[chain][length] = (last, checkpoint.describe())
            if length >= longest.get(chain, (-1, ""))[0]:
                longest[chain] = (length, last)
    return Expectations(
        heads=heads,
        latest=longest if checkpoints else None,
        public_key=public_key,
    )


def verify_against(
    url: str, checkpoints: Sequence[Checkpoint], public_key: Ed25519PublicKey, *, allow_newer: bool = False
) -> VerifyResult:
    """Verify the store at ``url`` (read only) against signed checkpoints.

    Every record must chain, every signed head must match the record at its position, and the store
    must hold at least as many records as the latest checkpoint signed; records after it are a break
    unless ``allow_newer`` (a service still running appends after its latest checkpoint).

    Raises
    ------
    CheckpointError
        If a checkpoint's signature does not hold with ``public_key``.
    """
    if not checkpoints:
        raise CheckpointError("no checkpoint to verify against")
    return verify_trail(url, expect=expectations(checkpoints, public_key), allow_newer=allow_newer)
