"""The audit store on PostgreSQL: the same guarantees as on SQLite.

Runs when ``RISK_TEST_POSTGRES_URL`` names an empty database the tests may fill, e.g.
``postgresql+psycopg://postgres@127.0.0.1:5432/audit_test`` (needs the ``postgres`` extra:
``pip install -e '.[postgres]'``). Each test works in its own schema, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

URL = os.environ.get("RISK_TEST_POSTGRES_URL", "")
if not URL:
    pytest.skip("RISK_TEST_POSTGRES_URL is not set: PostgreSQL audit-store tests skipped", allow_module_level=True)
pytest.importorskip("psycopg", reason="psycopg is not installed (pip install -e '.[postgres]')")

from sqlalchemy import create_engine, text  # noqa: E402

from serving.audit import AuditStore  # noqa: E402

SECRET = "0f" * 32


@pytest.fixture()
def url() -> Iterator[str]:
    """The test database with a fresh schema first on the search path."""
    schema = f"audit_{uuid.uuid4().hex[:12]}"
    admin = create_engine(URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in URL else "?"
    yield f"{URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def record(person_id: str = "PID-1", **changes: Any) -> dict[str, Any]:
    rec = dict(
        assessment_id=str(uuid.uuid4()),
        person_id=person_id,
        stage="midterm",
        model_name="reoffence-midterm",
        model_version="3",
        policy_version="2026.11-1",
        request={"person": {"person_id": person_id}, "events": []},
        response={"person_id": person_id, "probability": 0.12},
        explanation={"base_value": -3.1},
    )
    rec.update(changes)
    return rec


def test_round_trip_keyed_ids_and_overrides(url: str) -> None:
    store = AuditStore(url, secret=SECRET)
    stored = store.append_assessment(**record())
    store.add_override(stored.assessment_id, tier="strict", reason="new threat reported by the family", actor="alice")
    [again] = store.by_person("PID-1")
    assert again.record_hash == stored.record_hash
    assert again.request["person"]["person_id"] == store.person_key("PID-1") != "PID-1"
    assert [o.tier for o in again.overrides] == ["strict"]
    assert store.verify().ok
    store.close()


def test_a_batch_is_one_transaction(url: str) -> None:
    store = AuditStore(url, secret=SECRET)
    first = record()
    store.append_many([first])
    with pytest.raises(ValueError, match="already stored"):
        store.append_many([record(), record(assessment_id=first["assessment_id"])])
    assert store.count() == 1 and store.verify().ok
    store.close()


def test_concurrent_appends_keep_one_intact_chain(url: str) -> None:
    stores = [AuditStore(url, secret=SECRET) for _ in range(4)]  # four engines: as several workers would
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: stores[i % 4].append_assessment(**record(f"P{i}")), range(120)))
    result = stores[0].verify()
    assert result.ok and result.checked == 120
    assert stores[0].head()["assessments"][0] == 120
    for s in stores:
        s.close()


def test_verify_names_an_edited_and_a_deleted_row(url: str) -> None:
    store = AuditStore(url, secret=SECRET)
    rows = [store.append_assessment(**record(f"P{i}")) for i in range(5)]
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE assessments SET model_version = '4' WHERE seq = 2"))
    result = store.verify()
    assert not result.ok and result.first_broken == rows[1].assessment_id and "edited" in (result.problem or "")
    with engine.begin() as conn:
        conn.execute(text("UPDATE assessments SET model_version = '3' WHERE seq = 2"))
        conn.execute(text("DELETE FROM assessments WHERE seq = 4"))
    result = store.verify()
    assert not result.ok and result.first_broken == rows[4].assessment_id
    engine.dispose()
    store.close()


# the attacks of tests/test_checkpoints.py, on PostgreSQL: each detected against the auditor's own anchors


def _signed_trail(url: str, tmp_path: Any) -> tuple[AuditStore, Any, list[Any]]:
    from serving.audit import Checkpointer, CheckpointLog, LocalSigner, load_or_create_key

    key = load_or_create_key(tmp_path / "k.pem")
    store = AuditStore(url, secret=SECRET, signer=LocalSigner(key))
    rows = [store.append_assessment(**record(f"P{i}")) for i in range(6)]
    checkpointer = Checkpointer(store, store.signer, CheckpointLog(tmp_path / "cp"), interval_s=0, name="pg")  # type: ignore[arg-type]
    checkpointer.sign()
    return store, checkpointer, rows


def test_attacks_are_detected_and_never_signed_on_postgres(url: str, tmp_path: Any) -> None:
    from trail_support import rewrite, rows_of

    from serving.audit import SigningRefused, verify_against

    store, checkpointer, rows = _signed_trail(url, tmp_path)
    anchors = checkpointer.log.read(), checkpointer.public_key()

    # insertion into the empty overrides chain
    forged = dict(
        override_id=str(uuid.uuid4()),
        assessment_id=rows[0].assessment_id,
        created_at="2026-01-01",
        tier="ordinary",
        reason="r",
        actor="someone",
    )
    rewrite(url, "overrides", [forged])
    result = verify_against(url, *anchors)
    assert not result.ok and result.first_broken == forged["override_id"]
    with pytest.raises(SigningRefused):
        checkpointer.sign()
    rewrite(url, "overrides", [])

    # a consistent rewrite of record 3: named, with the right count, and never signed
    table = rows_of(url, "assessments")
    table[2]["actor"] = "forger"
    rewrite(url, "assessments", table)
    result = verify_against(url, *anchors, allow_newer=True)
    assert not result.ok and result.first_broken == rows[2].assessment_id and result.checked == 2
    before = checkpointer.log.path.read_text()
    with pytest.raises(SigningRefused):
        checkpointer.sign(full=True)
    checkpointer.stop()
    assert checkpointer.log.path.read_text() == before
    store.close()
