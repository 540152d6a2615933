"""Signed checkpoints expose someone who can write to the audit database (design.md, "Tamper evidence").

Each rewrite below leaves a chain that verifies on its own (every hash recomputed, the head updated):
only the signed checkpoints show it.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from serving.audit import (
    AuditRecord,
    AuditStore,
    CheckpointError,
    CheckpointLog,
    VerifyResult,
    load_or_create_key,
    load_public_key,
    public_path,
    read_checkpoints,
    record_hash,
    sign_head,
    verify_against,
    verify_trail,
)

SECRET = "0f" * 32
Trail = tuple[str, Path, list[AuditRecord], Path, Path]  # the ``trail`` fixture: (url, db, rows, checkpoints file, key)
COLUMNS = (
    "seq",
    "assessment_id",
    "created_at",
    "person_key",
    "stage",
    "model_name",
    "model_version",
    "policy_version",
    "request_json",
    "response_json",
    "explanation_json",
    "actor",
    "prev_hash",
    "record_hash",
)


def record(i: int) -> dict[str, Any]:
    return dict(
        assessment_id=str(uuid.uuid4()),
        person_id=f"P{i}",
        stage="midterm",
        model_name="m",
        model_version="1",
        policy_version="p",
        request={"person": {"person_id": f"P{i}"}},
        response={"person_id": f"P{i}", "probability": 0.1 * i, "tier": "ordinary"},
    )


@pytest.fixture()
def trail(tmp_path: Path) -> Trail:
    """Six records, checkpoints signed after the third and the sixth; (url, db, rows, checkpoints file, key)."""
    db = tmp_path / "audit.db"
    url = f"sqlite:///{db}"
    store = AuditStore(url, secret=SECRET)
    key = load_or_create_key(tmp_path / "keys" / "signing.pem")
    log = CheckpointLog(tmp_path / "checkpoints")
    rows = [store.append_assessment(**record(i)) for i in range(3)]
    log.append(sign_head(store.head(), key))
    rows += [store.append_assessment(**record(i)) for i in range(3, 6)]
    log.append(sign_head(store.head(), key))
    store.close()
    return url, db, rows, log.path, public_path(tmp_path / "keys" / "signing.pem")


def rows_of(db: Path) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(db)) as con:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute(f"SELECT {', '.join(COLUMNS)} FROM assessments ORDER BY seq")]


def rewrite(db: Path, rows: list[dict[str, Any]]) -> None:
    """Replace the table by ``rows``, rehashing every row and the head consistently (a careful forger)."""
    prev = "0" * 64
    for seq, row in enumerate(rows, 1):
        row.update(seq=seq, prev_hash=prev)
        row["record_hash"] = prev = record_hash({k: v for k, v in row.items() if k != "record_hash"})
    with closing(sqlite3.connect(db)) as con:
        con.execute("DELETE FROM assessments")
        con.executemany(
            f"INSERT INTO assessments ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
            [tuple(r[c] for c in COLUMNS) for r in rows],
        )
        con.execute(
            "UPDATE audit_chain_head SET length = ?, last_hash = ? WHERE chain = 'assessments'", (len(rows), prev)
        )
        con.commit()


def check(trail: Trail, **kw: bool) -> VerifyResult:
    url, _, _, cp_file, pub = trail
    return verify_against(url, read_checkpoints(cp_file), load_public_key(pub), **kw)


def test_an_intact_trail_verifies_against_its_checkpoints(trail: Trail) -> None:
    result = check(trail)
    assert result.ok and result.checked == 6


def test_append_and_head_update_is_detected(trail: Trail) -> None:
    url, db, _, _, _ = trail
    rows = rows_of(db)
    forged = dict(rows[-1], assessment_id=str(uuid.uuid4()), response_json='{"tier":"strict"}')
    rewrite(db, [*rows, forged])
    assert verify_trail(url).ok  # the chain alone cannot tell
    result = check(trail)
    assert not result.ok and result.first_broken == forged["assessment_id"]
    assert result.problem is not None
    assert "not covered by the checkpoint" in result.problem
    assert check(trail, allow_newer=True).ok  # a running service appends after its latest checkpoint


def test_delete_last_and_head_update_is_detected(trail: Trail) -> None:
    url, db, _, _, _ = trail
    rewrite(db, rows_of(db)[:-1])
    assert verify_trail(url).ok
    result = check(trail, allow_newer=True)
    assert not result.ok and result.first_broken == "assessments seq 6"
    assert result.problem is not None
    assert "signed 6 records, the store has 5" in result.problem


def test_edit_and_rehash_of_every_later_row_is_detected(trail: Trail) -> None:
    url, db, rows, _, _ = trail
    table = rows_of(db)
    table[4]["response_json"] = table[4]["response_json"].replace('"ordinary"', '"strict"')
    rewrite(db, table)
    assert verify_trail(url).ok
    result = check(trail, allow_newer=True)
    # the checkpoint after the third record still matches: the rewrite is in records 4 to 6
    assert not result.ok and result.first_broken == rows[3].assessment_id
    assert result.problem is not None
    assert "records seq 4 to 6 were rewritten" in result.problem


def test_a_forged_insertion_is_named_as_the_forged_record(trail: Trail) -> None:
    _, db, _, _, _ = trail
    table = rows_of(db)
    forged = dict(table[1], assessment_id=str(uuid.uuid4()), seq=3, prev_hash=table[1]["record_hash"])
    forged["record_hash"] = record_hash({k: v for k, v in forged.items() if k != "record_hash"})
    with closing(sqlite3.connect(db)) as con:  # shift the later records, keeping their links
        for seq in range(6, 2, -1):
            con.execute("UPDATE assessments SET seq = ? WHERE seq = ?", (seq + 1, seq))
        con.execute(
            f"INSERT INTO assessments ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
            tuple(forged[c] for c in COLUMNS),
        )
        con.commit()
    store = AuditStore(f"sqlite:///{db}", secret=SECRET)
    result = store.verify()
    store.close()
    assert not result.ok and result.first_broken == forged["assessment_id"]
    assert result.problem is not None and "was inserted" in result.problem
    assert check(trail).first_broken == forged["assessment_id"]


def test_an_altered_or_foreign_checkpoint_is_refused(trail: Trail, tmp_path: Path) -> None:
    url, _, _, cp_file, pub = trail
    lines = cp_file.read_text().splitlines()
    altered = json.loads(lines[-1])
    altered["chains"]["assessments"]["length"] = 5
    bad = tmp_path / "altered.jsonl"
    bad.write_text(json.dumps(altered) + "\n")
    with pytest.raises(CheckpointError, match="signature does not hold"):
        verify_against(url, read_checkpoints(bad), load_public_key(pub))
    other = load_or_create_key(tmp_path / "other.pem")
    with pytest.raises(CheckpointError, match="not by the given public key"):
        verify_against(url, read_checkpoints(cp_file), other.public_key())


def test_riskctl_audit_checkpoint_and_verify_without_the_service(
    trail: Trail, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from serving.cli import app

    url, db, rows, _, _ = trail
    home = tmp_path / "home"
    monkeypatch.setenv("RISK_HOME", str(home))
    monkeypatch.setenv("RISK_AUDIT_URL", url)
    runner = CliRunner()
    signed = runner.invoke(app, ["audit", "checkpoint"])
    assert signed.exit_code == 0, signed.output
    cp_file = home / "checkpoints" / "checkpoints.jsonl"
    pub = home / "keys" / "checkpoint-ed25519.pem.pub"
    args = ["audit", "verify", "--checkpoint", str(cp_file), "--public-key", str(pub)]
    ok = runner.invoke(app, args)
    assert ok.exit_code == 0 and "intact" in ok.output, ok.output
    table = rows_of(db)
    table[1]["actor"] = "someone else"
    rewrite(db, table)
    broken = runner.invoke(app, args)
    assert broken.exit_code == 1 and rows[0].assessment_id in broken.output.replace("\n", ""), broken.output
    assert (
        runner.invoke(
            app, ["audit", "verify", "--checkpoint", str(cp_file), "--public-key", str(tmp_path / "missing.pem")]
        ).exit_code
        == 2
    )
