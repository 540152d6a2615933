"""Walking the hash chains: each chain in ``seq`` order, each record's hash recomputed
(:func:`serving.audit.recipe.record_hash`), each link checked, and the heads of signed checkpoints
(``expect``) held against what is stored. Used by :meth:`AuditStore.verify` and, without the service, by
:func:`verify_trail` (``riskctl audit verify``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import Connection, Engine, select
from sqlalchemy.engine import make_url

from serving.audit import recipe
from serving.audit._records import VerifyResult
from serving.audit._tables import CHAINS, GENESIS, assessments, chain_head
from serving.storage import make_engine

logger = logging.getLogger(__name__)

#: For each chain, seq -> (record_hash, what signed it): the heads of signed checkpoints (serving.audit).
Expectations = Mapping[str, Mapping[int, tuple[str, str]]]
_FOLLOWS_KEPT = 4096  # recent links remembered to name an inserted record


def _walk(
    conn: Connection,
    chain: str,
    head: tuple[int, str] | None,
    expect: Mapping[int, tuple[str, str]],
    *,
    allow_newer: bool,
) -> tuple[int, str | None, str | None]:
    """Check one chain: (records checked, first broken, problem).

    ``expect`` holds signed heads (seq -> hash); records after the last one are accepted only with
    ``allow_newer`` (a running service appends after its latest checkpoint; a stopped one must not).
    """
    table, id_col = CHAINS[chain]
    stmt = select(table).order_by(table.c.seq)
    beside = "assessment_id" in table.c and table is not assessments  # overrides and decision steps refer to one
    if beside:
        stmt = (
            select(table, assessments.c.seq.label("_assessment_seq"))
            .outerjoin(assessments, table.c.assessment_id == assessments.c.assessment_id)
            .order_by(table.c.seq)
        )
    prev, n, names = GENESIS, 0, [str(c.name) for c in table.columns]  # str, not quoted_name: see recipe.record_hash
    follows: dict[str, str] = {}  # record hash -> id of the record linked after it
    unsigned: str | None = None  # first record after the last checkpoint that matched
    signed_to = 0
    # a signed head that does not match is reported after the walk, unless the walk finds the cause
    # on the way: a record inserted before it (the forged record is named, not the first unsigned one)
    pending: tuple[int, str | None, str] | None = None
    for row in conn.execute(stmt.execution_options(yield_per=1000)).mappings():
        rid, stored = row[id_col], {name: row[name] for name in names}
        if row["seq"] != n + 1:
            return pending or (n, rid, f"seq {n + 1} is missing before seq {row['seq']} (row deleted or inserted)")
        if row["prev_hash"] != prev:
            if row["prev_hash"] in follows:  # it links past the records before it: those were inserted
                forged = follows[row["prev_hash"]]
                return (
                    n,
                    forged,
                    (
                        f"record {forged} was inserted: the record after it ({rid}, seq {n + 1}) "
                        "links to the record before it"
                    ),
                )
            return pending or (
                n,
                rid,
                "prev_hash does not link to the record before (row deleted, inserted or reordered)",
            )
        if recipe.record_hash(stored) != row["record_hash"]:
            return pending or (n, rid, "content does not match record_hash (row edited)")
        if beside and row["_assessment_seq"] is None:
            return pending or (n, rid, f"its assessment {row['assessment_id']} is missing")
        follows[prev] = rid
        if len(follows) > _FOLLOWS_KEPT:
            del follows[next(iter(follows))]
        prev, n, unsigned = row["record_hash"], n + 1, unsigned or rid
        if n in expect and pending is None:
            signed_hash, signer = expect[n]
            if signed_hash != prev:
                pending = (
                    n,
                    unsigned,
                    (
                        f"records seq {signed_to + 1} to {n} were rewritten: {signer} signed "
                        f"record seq {n} as {signed_hash[:16]}..., the store has {prev[:16]}..."
                    ),
                )
            unsigned, signed_to = None, n
    if pending:
        return pending
    if head is None or tuple(head) != (n, prev):
        length = head[0] if head else 0
        return (
            n,
            f"{chain} seq {min(n, length) + 1}",
            (f"chain head records {length} rows, found {n} (rows deleted from the end or head altered)"),
        )
    last_signed = max(expect, default=0)
    if n < last_signed:
        return (
            n,
            f"{chain} seq {n + 1}",
            (
                f"{expect[last_signed][1]} signed {last_signed} records, the store has "
                f"{n} (records deleted from the end, head rewritten)"
            ),
        )
    if n > last_signed and expect and not allow_newer:
        return (
            n,
            unsigned,
            (
                f"{n - last_signed} record(s) after seq {last_signed} are not covered by "
                f"{expect[last_signed][1]} (appended after it)"
            ),
        )
    return n, None, None


def verify_engine(engine: Engine, *, expect: Expectations, allow_newer: bool) -> VerifyResult:
    checked = 0
    with engine.connect() as conn:
        if engine.dialect.name != "sqlite":
            conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            heads = {c: (n, h) for c, n, h in conn.execute(select(chain_head))}
            for chain in CHAINS:
                n, broken, problem = _walk(
                    conn, chain, heads.get(chain), expect.get(chain, {}), allow_newer=allow_newer
                )
                checked += n
                if problem:
                    logger.warning("audit chain broken at %s: %s", broken, problem)
                    return VerifyResult(False, checked, broken, f"{chain}: {problem}", heads)
    return VerifyResult(True, checked, heads=heads)


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
        return verify_engine(engine, expect=expect or {}, allow_newer=allow_newer)
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
