"""Walking the hash chains: each chain in ``seq`` order, each record's hash recomputed
(:func:`serving.audit.recipe.record_hash`), each link checked, the heads of signed checkpoints held
against what is stored, and the record signatures checked where no checkpoint vouches for a record.

What is checked, per chain:

- every record links to the one before and hashes to its stored hash (an edit, a deletion, an
  insertion or a reordering breaks it);
- every checkpoint's head matches the record at its position, an empty chain in a checkpoint
  included; when a rewrite makes a head differ, the record signatures in the range since the previous
  checkpoint name the first forged record (a record the signer did not sign);
- records after the latest checkpoint are a break unless ``allow_newer`` (a running service appends
  after its latest checkpoint); then they are counted, and each must carry the signer's signature. A
  chain the latest checkpoint lacks (one added since) counts as signed empty: all its records are newer;
- the chain head table agrees with the records and holds no unknown chain.

Used by :meth:`AuditStore.verify`, by the service before it signs (:class:`serving.audit.Checkpointer`,
incrementally from the latest checkpoint it trusts) and, without the service, by :func:`verify_trail`
(``riskctl audit verify``).
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, Engine, select
from sqlalchemy.engine import make_url

from serving.audit import recipe
from serving.audit._keys import key_id
from serving.audit._records import VerifyResult
from serving.audit._signing import record_signature_holds
from serving.audit._tables import CHAINS, GENESIS, assessments, chain_head
from serving.storage import make_engine

logger = logging.getLogger(__name__)

_FOLLOWS_KEPT = 4096  # recent links remembered to name an inserted record


@dataclass(frozen=True)
class Expectations:
    """What the signed checkpoints say, and the key that signed them and every record.

    ``heads`` holds, per chain, seq -> (record hash, which checkpoint signed it), an empty chain as seq 0;
    ``latest`` the longest head any checkpoint signed, per chain (None: no checkpoint; workers sign
    concurrently, so the last line of a checkpoint file need not be the longest); ``public_key`` checks
    the record signatures (None: not checked).
    """

    heads: Mapping[str, Mapping[int, tuple[str, str]]] = field(default_factory=dict)
    latest: Mapping[str, tuple[int, str]] | None = None
    public_key: Ed25519PublicKey | None = None

    def signed_by(self, chain: str) -> str:
        """How messages name the checkpoint that signed the most records of ``chain``."""
        if self.latest is None or chain not in self.latest:
            return "any checkpoint"
        return self.heads[chain][self.latest[chain][0]][1]

    @property
    def key_id(self) -> str | None:
        return key_id(self.public_key) if self.public_key is not None else None


class _Walked(NamedTuple):
    intact: int  # records found intact before the break (all, if none)
    broken: str | None
    problem: str | None
    newer: int = 0
    head_sig: str | None = None


def _signature_fails(key: Ed25519PublicKey | None, chain: str, seq: int, record_hash: str, sig: Any) -> str | None:
    """Why a record's signature does not hold (None if it holds or no key is given)."""
    if key is None:
        return None
    if not sig:
        return "it carries no signature"
    if not record_signature_holds(key, chain, seq, record_hash, sig):
        return "its signature does not hold"
    return None


def _first_unsigned(
    conn: Connection, chain: str, low: int, high: int, key: Ed25519PublicKey | None
) -> tuple[int, str, str] | None:
    """The first record with seq in (low, high] whose signature fails: (seq, id, why), or None."""
    if key is None:
        return None
    table, id_col = CHAINS[chain]
    stmt = (
        select(table.c.seq, table.c[id_col], table.c.record_hash, table.c.record_sig)
        .where(table.c.seq > low, table.c.seq <= high)
        .order_by(table.c.seq)
    )
    for row in conn.execute(stmt.execution_options(yield_per=1000)).mappings():
        why = _signature_fails(key, chain, row["seq"], row["record_hash"], row["record_sig"])
        if why:
            return int(row["seq"]), str(row[id_col]), why
    return None


def _walk(
    conn: Connection,
    chain: str,
    head: tuple[int, str] | None,
    exp: Expectations,
    *,
    allow_newer: bool,
    start: int = 0,
) -> _Walked:
    """Check one chain from record ``start`` + 1 (``start`` > 0: a checkpointed seq trusted as far as its
    signed hash, whose record is checked against it)."""
    table, id_col = CHAINS[chain]
    signed = exp.heads.get(chain, {})
    latest = exp.latest
    last_signed = (latest[chain][0] if chain in latest else 0) if latest is not None else None
    key = exp.public_key
    names = [str(c.name) for c in table.columns]  # str, not quoted_name: see recipe.record_hash
    beside = "assessment_id" in table.c and table is not assessments  # overrides and decision steps refer to one
    stmt = select(table).where(table.c.seq > start).order_by(table.c.seq)
    if beside:
        stmt = (
            select(table, assessments.c.seq.label("_assessment_seq"))
            .outerjoin(assessments, table.c.assessment_id == assessments.c.assessment_id)
            .where(table.c.seq > start)
            .order_by(table.c.seq)
        )
    prev, n, signed_to, head_sig = GENESIS, 0, 0, None
    if start:
        at_start = conn.execute(select(table).where(table.c.seq == start)).mappings().first()
        want = signed[start][0]
        if (
            at_start is None
            or at_start["record_hash"] != want
            or recipe.record_hash({k: at_start[k] for k in names}) != want
        ):
            found = _first_unsigned(conn, chain, 0, start, key)
            rid = found[1] if found else f"{chain} seq {start}"
            return _Walked(
                (found[0] - 1) if found else 0,
                rid,
                f"record seq {start} is not what {signed[start][1]} signed (rewritten before it)",
            )
        prev, n, signed_to, head_sig = want, start, start, at_start["record_sig"]
    follows: dict[str, str] = {}  # record hash -> id of the record linked after it
    newer = 0
    hashed = [name for name in names if name not in recipe.UNHASHED]
    result = conn.execute(stmt.execution_options(yield_per=1000))
    cols = list(result.keys())  # rows by position: a million rows are read in the time of a few lookups each
    i_seq, i_prev, i_hash, i_sig, i_id = (
        cols.index(c) for c in ("seq", "prev_hash", "record_hash", "record_sig", id_col)
    )
    i_beside = cols.index("_assessment_seq") if beside else -1
    pick = operator.itemgetter(*(cols.index(name) for name in hashed))
    for row in result:
        rid, row_prev, row_hash = row[i_id], row[i_prev], row[i_hash]
        if row[i_seq] != n + 1:
            return _Walked(n, rid, f"seq {n + 1} is missing before seq {row[i_seq]} (row deleted or inserted)")
        if row_prev != prev:
            if row_prev in follows:  # it links past the records before it: those were inserted
                forged = follows[row_prev]
                return _Walked(
                    n - 1,
                    forged,
                    f"record {forged} was inserted: the record after it ({rid}, seq {n + 1}) links to the record "
                    "before it",
                )
            return _Walked(n, rid, "prev_hash does not link to the record before (row deleted, inserted or reordered)")
        if recipe.stored_hash(dict(zip(hashed, pick(row), strict=True))) != row_hash:
            return _Walked(n, rid, "content does not match record_hash (row edited)")
        if beside and row[i_beside] is None:
            return _Walked(n, rid, f"its assessment {row[cols.index('assessment_id')]} is missing")
        if n + 1 > (last_signed or 0):  # no checkpoint vouches for it: its signature must (if a key is given)
            newer += last_signed is not None
            why = _signature_fails(key, chain, n + 1, row_hash, row[i_sig])
            if why:
                where = f"after {exp.signed_by(chain)}" if last_signed is not None else "no checkpoint covers it"
                covered = "" if allow_newer or last_signed is None else ", not covered by it,"
                return _Walked(
                    n, rid, f"record {rid} (seq {n + 1}, {where}){covered} was not written by the service: {why}"
                )
        follows[prev] = rid
        if len(follows) > _FOLLOWS_KEPT:
            del follows[next(iter(follows))]
        prev, n, head_sig = row_hash, n + 1, row[i_sig]
        if n in signed:
            signed_hash, who = signed[n]
            if signed_hash != prev:
                found = _first_unsigned(conn, chain, signed_to, n, key)
                differs = f"{who} signed record seq {n} as {signed_hash[:16]}..., the store has {prev[:16]}..."
                if found is not None:
                    return _Walked(
                        found[0] - 1,
                        found[1],
                        f"record {found[1]} (seq {found[0]}) was rewritten or inserted: {found[2]}; {differs}",
                    )
                return _Walked(
                    signed_to,
                    f"{chain} seq {signed_to + 1}",
                    f"records seq {signed_to + 1} to {n} were rewritten (no record signatures to tell which): "
                    f"{differs}",
                )
            signed_to = n
    if head is None or tuple(head) != (n, prev):
        length = head[0] if head else 0
        return _Walked(
            n,
            f"{chain} seq {min(n, length) + 1}",
            f"chain head records {length} rows, found {n} (rows deleted from the end or head altered)",
        )
    if last_signed is not None and n < last_signed:
        return _Walked(
            n,
            f"{chain} seq {n + 1}",
            f"{exp.signed_by(chain)} signed {last_signed} records, the store has {n} (records deleted from the end, "
            "head rewritten)",
        )
    if newer and not allow_newer:
        first = (last_signed or 0) + 1
        first_id = conn.execute(select(table.c[id_col]).where(table.c.seq == first)).scalar()
        return _Walked(
            last_signed or 0,
            str(first_id) if first_id is not None else f"{chain} seq {first}",
            f"{newer} record(s) after seq {last_signed} are not covered by {exp.signed_by(chain)} (appended after it)",
        )
    return _Walked(n, None, None, newer, head_sig)


def verify_engine(
    engine: Engine, *, expect: Expectations | None = None, allow_newer: bool, since: Mapping[str, int] | None = None
) -> VerifyResult:
    """Walk every chain in one consistent snapshot (see the module docstring).

    ``since``: per chain, a checkpointed seq to start after (its record is checked against the signed hash);
    the rest of the chain before it is not walked (the incremental check before signing).
    """
    exp = expect or Expectations()
    checked = 0
    newer: dict[str, int] = {}
    proofs: dict[str, str | None] = {}
    with engine.connect() as conn:
        if engine.dialect.name != "sqlite":
            conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            heads = {c: (n, h) for c, n, h in conn.execute(select(chain_head))}

            def broken(where: str | None, problem: str) -> VerifyResult:
                logger.info("audit chain broken at %s: %s", where, problem)  # the caller says it, and refuses
                return VerifyResult(False, checked, where, problem, heads, newer, proofs, exp.key_id)

            unknown = sorted(set(heads) - set(CHAINS))
            if unknown:
                return broken(f"{unknown[0]} seq 1", f"the chain head table holds an unknown chain {unknown[0]!r}")
            for chain in CHAINS:
                start = (since or {}).get(chain, 0)
                if start and start not in exp.heads.get(chain, {}):
                    start = 0
                walked = _walk(conn, chain, heads.get(chain), exp, allow_newer=allow_newer, start=start)
                checked += walked.intact - start if walked.intact >= start else walked.intact
                if walked.problem:
                    return broken(walked.broken, f"{chain}: {walked.problem}")
                newer[chain], proofs[chain] = walked.newer, walked.head_sig
    return VerifyResult(True, checked, heads=heads, newer=newer, head_proofs=proofs, key_id=exp.key_id)


def verify_trail(url: str, *, expect: Expectations | None = None, allow_newer: bool = False) -> VerifyResult:
    """Verify the audit store at ``url`` without the service and without its secret (read only).

    Raises
    ------
    FileNotFoundError
        If ``url`` names a SQLite file that does not exist (nothing is created).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        raise FileNotFoundError(f"no audit store at {parsed.database}")
    engine = make_engine(url, create=False)
    try:
        return verify_engine(engine, expect=expect, allow_newer=allow_newer)
    finally:
        engine.dispose()


def read_head(url: str) -> dict[str, tuple[int, str]]:
    """Length and last hash of each chain of the store at ``url``, read only."""
    engine = make_engine(url, create=False)
    try:
        with engine.connect() as conn:
            return {c: (n, h) for c, n, h in conn.execute(select(chain_head))}
    finally:
        engine.dispose()
