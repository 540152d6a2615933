"""A forger with write access to the audit database (any SQLAlchemy URL): reads a chain's rows and writes
them back rehashed consistently, as someone who knows the hash recipe but cannot ask the signer would."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import create_engine, delete, insert, select, text

from serving.audit import CHAIN_TABLES, record_hash

GENESIS = "0" * 64


def record(i: int) -> dict[str, Any]:
    """Fields of a small assessment record of person ``P<i>`` (``AuditStore.append_assessment``)."""
    return dict(
        assessment_id=str(uuid.uuid4()),
        person_id=f"P{i}",
        stage="midterm",
        model_name="m",
        model_version="1",
        policy_version="p",
        request={"person": {"person_id": f"P{i}", "birth_date": "1990-01-01"}},
        response={"person_id": f"P{i}", "probability": 0.1 * i, "tier": "ordinary"},
        explanation={"base_value": -2.0},
    )


def rows_of(url: str, chain: str) -> list[dict[str, Any]]:
    """Every stored row of ``chain``, in seq order."""
    table = CHAIN_TABLES[chain]
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(table).order_by(table.c.seq)).mappings()]
    finally:
        engine.dispose()


def rewrite(url: str, chain: str, rows: list[dict[str, Any]]) -> None:
    """Replace ``chain``'s rows by ``rows``, renumbered, relinked, rehashed and the head updated; each row
    keeps the signature it had (of its old hash), or none."""
    table = CHAIN_TABLES[chain]
    names = [c.name for c in table.c]
    prev = GENESIS
    for seq, row in enumerate(rows, 1):
        row.update(seq=seq, prev_hash=prev)
        row["record_hash"] = prev = record_hash({k: row.get(k) for k in names if k != "record_sig"})
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(delete(table))
            if rows:
                conn.execute(insert(table), [{k: r.get(k) for k in names} for r in rows])
            conn.execute(
                text("UPDATE audit_chain_head SET length = :n, last_hash = :h WHERE chain = :c"),
                {"n": len(rows), "h": prev, "c": chain},
            )
    finally:
        engine.dispose()
