"""Benchmark of the audit trail's verification (issue 22's target: 1,000,000 records verified in at most
60 s on 2 cores): ``python benchmarks/bench_trail.py --records 1000000``.

Builds a trail of ``--records`` signed assessment records in a temporary SQLite file (records of the size
the service stores: a person record with events, an answer with reasons, an explanation; written in
batches of ``--batch`` through :class:`serving.audit.AuditStore` with a local signer, checkpoints after
each tenth), then times, each ``--repeat`` times (median):

- the offline verification against the checkpoints and the public key (``riskctl audit verify``);
- the check before signing (from the latest checkpoint, with the records after it: one batch);
- naming a record rewritten in the middle of the trail (every later record rehashed; put back after).

``--work DIR --reuse`` times a trail built before in ``DIR`` (building a million records takes about 15
minutes on a quiet machine).

Figures are wall-clock seconds on a shared machine: compare runs side by side.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from serving.audit import (
    AuditStore,
    Checkpointer,
    CheckpointLog,
    LocalSigner,
    load_or_create_key,
    record_hash,
    verify_against,
)

SECRET = "5e" * 32


def record(i: int) -> dict[str, Any]:
    """An assessment record of the size the service stores (about 3 KB)."""
    events = [{"date": f"2024-0{1 + k % 9}-1{k % 9}", "event_type": "report_late", "value": None} for k in range(12)]
    reasons = [{"feature": f"feature_{k}", "value": k * 0.5, "contribution": 0.01 * k} for k in range(8)]
    return dict(
        assessment_id=str(uuid.uuid4()),
        person_id=f"S{i:07d}",
        stage="midterm",
        model_name="reoffence-midterm",
        model_version="3",
        policy_version="2026.12-1",
        request={"person": {"person_id": f"S{i:07d}", "birth_date": "1990-01-01", "sex": "M"}, "events": events},
        response={"person_id": f"S{i:07d}", "probability": 0.12, "band": {"code": "medium"}, "reasons": reasons},
        explanation={"base_value": -2.1, "features": {f"f{k}": [k, 0.01] for k in range(40)}},
        actor="caseworker",
    )


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None, help="folder to build the trail in (default: a temp one)")
    parser.add_argument(
        "--reuse", action="store_true", help="time the trail already built in --work (building 1,000,000 takes long)"
    )
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-trail-"))
    url = f"sqlite:///{work / 'audit.db'}"
    key = load_or_create_key(work / "key.pem")
    store = AuditStore(url, secret=SECRET, signer=LocalSigner(key))
    checkpointer = Checkpointer(store, store.signer, CheckpointLog(work / "cp"), interval_s=0, name="bench")  # type: ignore[arg-type]
    if args.reuse and store.count():
        args.records = store.count() - args.batch
        print(f"reusing {store.count():,} signed records in {work}")
    else:
        build(store, checkpointer, records=args.records, batch=args.batch)
        size = (work / "audit.db").stat().st_size / 1e6
        print(f"built {args.records + args.batch:,} signed records ({size:,.0f} MB) in {work}")

    checkpoints, public = checkpointer.log.read(), checkpointer.public_key()
    full, result = timed(lambda: verify_against(url, checkpoints, public, allow_newer=True), args.repeat)
    assert result.ok, result.problem
    rate = result.checked / full
    print(f"offline verification: {result.checked:,} records in {full:.1f} s (median of {args.repeat}), {rate:,.0f}/s")
    tail, verified = timed(lambda: checkpointer.verify(full=False)[0], args.repeat)
    assert verified.ok, verified.problem
    print(f"check before signing (from the latest checkpoint): {verified.checked:,} records in {tail:.2f} s")

    middle = args.records // 2
    original = rewrite_from(url, middle, actor="forger")
    named, broken = timed(lambda: verify_against(url, checkpoints, public, allow_newer=True), args.repeat)
    rewrite_from(url, middle, actor=original)  # put it back: the trail verifies again (--reuse)
    assert not broken.ok and broken.checked == middle - 1, broken.problem
    print(f"a rewrite from record {middle:,} on: named in {named:.1f} s ({str(broken.problem)[:90]}...)")
    store.close()


def build(store: AuditStore, checkpointer: Checkpointer, *, records: int, batch: int) -> None:
    """Append ``records`` signed records in batches, a checkpoint after each tenth, and one batch after the last."""
    every = max(1, records // 10)
    for low in range(0, records, batch):
        store.append_many([record(i) for i in range(low, min(low + batch, records))])
        if (low + batch) % every < batch:
            checkpointer.sign()
    checkpointer.sign()
    store.append_many([record(records + i) for i in range(batch)])  # after the latest checkpoint


def rewrite_from(url: str, seq: int, *, actor: str) -> str:
    """A forger's consistent rewrite: record ``seq``'s actor set, every later record and the head rehashed
    (their signatures kept: the forger cannot sign). Returns the actor it had."""
    engine = create_engine(url)
    with engine.begin() as conn:
        names = [r[1] for r in conn.execute(text("PRAGMA table_info(assessments)"))]
        rows = [
            dict(zip(names, r, strict=True))
            for r in conn.execute(text("SELECT * FROM assessments WHERE seq >= :s ORDER BY seq"), {"s": seq})
        ]
        before, prev = rows[0]["actor"], rows[0]["prev_hash"]
        rows[0]["actor"] = actor
        for row in rows:
            row["prev_hash"] = prev
            row["record_hash"] = prev = record_hash({k: v for k, v in row.items() if k != "record_sig"})
        conn.execute(
            text(
                "UPDATE assessments SET actor = :actor, prev_hash = :prev_hash, record_hash = :record_hash "
                "WHERE seq = :seq"
            ),
            rows,
        )
        conn.execute(text("UPDATE audit_chain_head SET last_hash = :h WHERE chain = 'assessments'"), {"h": prev})
    engine.dispose()
    return str(before)


if __name__ == "__main__":
    main()
