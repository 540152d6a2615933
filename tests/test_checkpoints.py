"""The trail against someone who can write to the audit database (design.md, "Tamper evidence" and
"Tamper evidence, continued"): every attack below is detected offline against the auditor's own anchors
(a copy of the checkpoint stream and of the public key), naming the forged record, and no signing path
signs a state it did not verify.

Each forger here knows the hash recipe and rewrites consistently (every later hash and the chain head),
so the chain alone cannot tell; only the record signatures and the signed checkpoints can.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trail_support import record
from typer.testing import CliRunner

from serving.audit import (
    CHAIN_TABLES,
    AuditRecord,
    AuditStore,
    Checkpointer,
    CheckpointError,
    CheckpointLog,
    LocalSigner,
    SigningRefused,
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
GENESIS = "0" * 64
Trail = tuple[str, Path, list[AuditRecord], Path, Path]  # the ``trail`` fixture: (url, db, rows, checkpoints file, key)


def columns(table: str) -> list[str]:
    return [c.name for c in CHAIN_TABLES[{"decision_steps": "decisions", "case_events": "cases"}.get(table, table)].c]


def rows_of(db: Path, table: str = "assessments") -> list[dict[str, Any]]:
    with closing(sqlite3.connect(db)) as con:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute(f"SELECT * FROM {table} ORDER BY seq")]


def rewrite(db: Path, rows: list[dict[str, Any]], *, table: str = "assessments", chain: str = "assessments") -> None:
    """Replace ``table`` by ``rows``, rehashing every row and the head consistently (a careful forger who
    cannot sign: each row keeps the signature it had, of its old hash)."""
    prev, names = GENESIS, columns(table)
    for seq, row in enumerate(rows, 1):
        row.update(seq=seq, prev_hash=prev)
        row["record_hash"] = prev = record_hash({k: row.get(k) for k in names if k != "record_sig"})
    with closing(sqlite3.connect(db)) as con:
        con.execute(f"DELETE FROM {table}")
        con.executemany(
            f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
            [tuple(r.get(c) for c in names) for r in rows],
        )
        con.execute("UPDATE audit_chain_head SET length = ?, last_hash = ? WHERE chain = ?", (len(rows), prev, chain))
        con.commit()


@pytest.fixture()
def trail(tmp_path: Path) -> Trail:
    """Six signed records, checkpoints after the third and the sixth; (url, db, rows, checkpoints file, public key)."""
    db = tmp_path / "audit.db"
    url = f"sqlite:///{db}"
    key = load_or_create_key(tmp_path / "keys" / "signing.pem")
    store = AuditStore(url, secret=SECRET, signer=LocalSigner(key))
    log = CheckpointLog(tmp_path / "checkpoints")
    rows = [store.append_assessment(**record(i)) for i in range(3)]
    log.append(sign_head(store.head(), key))
    rows += [store.append_assessment(**record(i)) for i in range(3, 6)]
    log.append(sign_head(store.head(), key))
    store.close()
    return url, db, rows, log.path, public_path(tmp_path / "keys" / "signing.pem")


def check(trail: Trail, **kw: bool) -> VerifyResult:
    url, _, _, cp_file, pub = trail
    return verify_against(url, read_checkpoints(cp_file), load_public_key(pub), **kw)


def test_an_intact_trail_verifies_against_its_checkpoints_naming_the_key(trail: Trail) -> None:
    result = check(trail)
    assert result.ok and result.checked == 6
    assert result.key_id == read_checkpoints(trail[3])[-1].key_id
    assert all(r.record_sig for r in trail[2])


def test_records_appended_while_stopped_are_named(trail: Trail) -> None:
    url, db, _, _, _ = trail
    rows = rows_of(db)
    forged = dict(rows[-1], assessment_id=str(uuid.uuid4()), response_json='{"tier":"strict"}', record_sig=None)
    rewrite(db, [*rows, forged])
    assert verify_trail(url).ok  # the chain alone cannot tell
    for allow_newer in (False, True):  # stopped, or still running: either way the record is not the service's
        result = check(trail, allow_newer=allow_newer)
        assert not result.ok and result.first_broken == forged["assessment_id"]
        assert result.problem is not None and "was not written by the service" in result.problem
        assert result.checked == 6
    assert "after the checkpoint of" in str(check(trail).problem) and "not covered by it" in str(check(trail).problem)


def test_a_genuine_record_after_the_latest_checkpoint_is_counted(trail: Trail, tmp_path: Path) -> None:
    url, *_ = trail
    store = AuditStore(url, secret=SECRET, signer=LocalSigner(load_or_create_key(tmp_path / "keys" / "signing.pem")))
    store.append_assessment(**record(7))
    store.close()
    newer = check(trail, allow_newer=True)
    assert newer.ok and newer.newer["assessments"] == 1 and newer.checked == 7
    stopped = check(trail)
    assert not stopped.ok and "1 record(s) after seq 6 are not covered" in str(stopped.problem)


def test_delete_last_and_head_update_is_detected(trail: Trail) -> None:
    url, db, _, _, _ = trail
    rewrite(db, rows_of(db)[:-1])
    assert verify_trail(url).ok
    result = check(trail, allow_newer=True)
    assert not result.ok and result.first_broken == "assessments seq 6"
    assert "signed 6 records, the store has 5" in str(result.problem)


def test_a_consistent_rewrite_names_the_record_and_counts_right(trail: Trail) -> None:
    url, db, rows, _, _ = trail
    table = rows_of(db)
    table[4]["response_json"] = table[4]["response_json"].replace('"ordinary"', '"strict"')
    rewrite(db, table)
    assert verify_trail(url).ok
    result = check(trail, allow_newer=True)
    assert not result.ok and result.first_broken == rows[4].assessment_id  # record 5, not the range 4 to 6
    assert f"record {rows[4].assessment_id} (seq 5) was rewritten" in str(result.problem)
    assert result.checked == 4


def test_a_forged_insertion_is_named_as_the_forged_record(trail: Trail) -> None:
    _, db, _, _, _ = trail
    table = rows_of(db)
    names = columns("assessments")
    forged = dict(table[1], assessment_id=str(uuid.uuid4()), seq=3, prev_hash=table[1]["record_hash"], record_sig=None)
    forged["record_hash"] = record_hash({k: forged[k] for k in names if k != "record_sig"})
    with closing(sqlite3.connect(db)) as con:  # shift the later records, keeping their links
        for seq in range(6, 2, -1):
            con.execute("UPDATE assessments SET seq = ? WHERE seq = ?", (seq + 1, seq))
        con.execute(
            f"INSERT INTO assessments ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
            tuple(forged[c] for c in names),
        )
        con.commit()
    store = AuditStore(f"sqlite:///{db}", secret=SECRET)
    result = store.verify()
    store.close()
    assert not result.ok and result.first_broken == forged["assessment_id"]
    assert "was inserted" in str(result.problem)
    assert check(trail).first_broken == forged["assessment_id"]
    # the same insertion rehashed consistently: the signatures name it
    rewrite(db, [*table[:2], forged, *table[2:]])
    result = check(trail, allow_newer=True)
    assert result.first_broken == forged["assessment_id"] and result.checked == 2


@pytest.mark.parametrize(
    ("chain", "table"), [("overrides", "overrides"), ("decisions", "decision_steps"), ("cases", "case_events")]
)
def test_an_insertion_into_an_empty_chain_is_detected(trail: Trail, chain: str, table: str) -> None:
    """The checkpoints signed this chain empty: one forged row (seq 1, correct hash, head updated) is found."""
    url, db, rows, _, _ = trail
    assert all(c["chains"][chain]["length"] == 0 for c in map(json.loads, trail[3].read_text().splitlines()))
    fields = {
        "overrides": dict(override_id=str(uuid.uuid4()), assessment_id=rows[0].assessment_id, tier="ordinary"),
        "decision_steps": dict(
            step_id=str(uuid.uuid4()),
            decision_id=str(uuid.uuid4()),
            assessment_id=rows[0].assessment_id,
            person_key="k",
            step="approved",
            office="o",
            from_tier="strict",
            to_tier="ordinary",
            reason_code="other",
            text="t",
        ),
        "case_events": dict(event_id=str(uuid.uuid4()), kind="import", office="", person_key="", detail_json="{}"),
    }[table]
    names = columns(table)
    forged = {n: "x" for n in names} | fields | {"created_at": "2026-01-01", "reason": "r", "actor": "someone"}
    rewrite(db, [{k: forged.get(k) for k in names if k != "record_sig"}], table=table, chain=chain)
    assert verify_trail(url).ok
    for allow_newer in (False, True):
        result = check(trail, allow_newer=allow_newer)
        assert not result.ok and result.first_broken == forged[names[1]], result.problem
        assert result.checked == 6


def test_an_unknown_chain_in_the_head_table_is_refused(trail: Trail) -> None:
    _, db, _, _, _ = trail
    with closing(sqlite3.connect(db)) as con:
        con.execute("INSERT INTO audit_chain_head VALUES ('shadow', 0, ?)", (GENESIS,))
        con.commit()
    assert "unknown chain 'shadow'" in str(check(trail).problem)


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


def test_a_swapped_checkpoint_file_and_public_key_fail_against_the_pinned_key(trail: Trail, tmp_path: Path) -> None:
    """The forger rewrites the trail, makes a key of their own, signs the forged heads and replaces the home's
    checkpoint file and public key: verification with those passes, with the auditor's own copy of the
    public key it is refused, naming the key."""
    url, db, _, cp_file, pub = trail
    pinned = load_public_key(pub)
    table = rows_of(db)
    table[1]["actor"] = "someone else"
    rewrite(db, table)
    theirs = load_or_create_key(tmp_path / "forger.pem")
    store = AuditStore(url, secret=SECRET)
    cp_file.write_text(sign_head(store.head(), theirs).to_json() + "\n")
    pub.write_bytes(public_path(tmp_path / "forger.pem").read_bytes())
    store.close()
    assert check(trail).ok  # the home's own anchors are the forger's now
    with pytest.raises(CheckpointError, match="not by the given public key"):
        verify_against(url, read_checkpoints(cp_file), pinned)


def _checkpointer(url: str, tmp_path: Path, cp_dir: Path) -> tuple[AuditStore, Checkpointer]:
    key = load_or_create_key(tmp_path / "keys" / "signing.pem")
    store = AuditStore(url, secret=SECRET, signer=LocalSigner(key))
    return store, Checkpointer(store, store.signer, CheckpointLog(cp_dir), interval_s=0, name="test")  # type: ignore[arg-type]


def test_no_signing_path_signs_forged_records(trail: Trail, tmp_path: Path) -> None:
    """Periodic, shutdown and on-demand signing verify first: forged rows appended while the service was
    stopped are never covered by a signature; the refusal is kept until an auditor resolves it."""
    url, db, _, cp_file, _ = trail
    rows = rows_of(db)
    rewrite(db, [*rows, dict(rows[-1], assessment_id=str(uuid.uuid4()), record_sig=None)])
    store, signer = _checkpointer(url, tmp_path, cp_file.parent)
    before = cp_file.read_text()
    with pytest.raises(SigningRefused, match="not written by the service"):
        signer.sign()
    signer.stop()  # the shutdown hook
    signer._quietly()  # a periodic tick
    assert cp_file.read_text() == before
    refused = signer.refused()
    assert len(refused) == 1 and "not written by the service" in refused[0]["problem"]
    signer.refusals.resolve(by="auditor", note="restored from backup")
    assert signer.refused() == []
    store.close()


def test_no_signing_path_signs_a_consistent_rewrite(trail: Trail, tmp_path: Path) -> None:
    url, db, rows, cp_file, _ = trail
    table = rows_of(db)
    table[4]["actor"] = "someone else"
    rewrite(db, table)
    store, signer = _checkpointer(url, tmp_path, cp_file.parent)
    before = cp_file.read_text()
    for full in (False, True):  # from the latest checkpoint, and every record
        with pytest.raises(SigningRefused) as refused:
            signer.sign(full=full)
        assert refused.value.result is not None and refused.value.result.first_broken == rows[4].assessment_id
    signer.stop()
    assert cp_file.read_text() == before
    store.close()


def test_the_signer_refuses_a_head_it_did_not_sign(tmp_path: Path) -> None:
    """Even if the service's own check were fooled, the signer signs only heads it signed as records."""
    from serving.audit import SignerError

    key = load_or_create_key(tmp_path / "k.pem")
    signer = LocalSigner(key)
    genuine = signer.sign_records("assessments", [(1, "a" * 64)])[0]
    signer.sign_checkpoint({"assessments": (1, "a" * 64)}, proofs={"assessments": genuine}, signer="t")
    with pytest.raises(SignerError, match="not a record this signer signed"):
        signer.sign_checkpoint({"assessments": (2, "b" * 64)}, proofs={"assessments": genuine}, signer="t")
    with pytest.raises(SignerError, match="not a record this signer signed"):  # a forged proof
        LocalSigner(key).sign_checkpoint({"assessments": (1, "a" * 64)}, proofs={"assessments": "AAAA"}, signer="t")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(2, 12), data=st.data())
def test_any_rewritten_record_is_named_with_the_right_count(
    tmp_path_factory: pytest.TempPathFactory, n: int, data: st.DataObject
) -> None:
    """For any trail and any record edited and rehashed onward, the verifier names that record and counts
    the records before it, whatever the checkpoints in between."""
    tmp = tmp_path_factory.mktemp("rw")
    key = load_or_create_key(tmp / "k.pem")
    store = AuditStore(f"sqlite:///{tmp / 'a.db'}", secret=SECRET, signer=LocalSigner(key))
    log = CheckpointLog(tmp / "cp")
    marks = set(data.draw(st.lists(st.integers(1, n), max_size=3)))
    for i in range(1, n + 1):
        store.append_assessment(**record(i))
        if i in marks:
            log.append(sign_head(store.head(), key))
    log.append(sign_head(store.head(), key))
    store.close()
    k = data.draw(st.integers(1, n))
    db = tmp / "a.db"
    table = rows_of(db)
    table[k - 1]["actor"] = "forger"
    rewrite(db, table)
    result = verify_against(f"sqlite:///{db}", log.read(), key.public_key(), allow_newer=True)
    assert not result.ok and result.first_broken == table[k - 1]["assessment_id"] and result.checked == k - 1


def test_riskctl_audit_checkpoint_and_verify_without_the_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from serving.cli import app

    home = tmp_path / "home"
    monkeypatch.setenv("RISK_HOME", str(home))
    from serving.audit import open_store
    from serving.auth import load_or_create
    from serving.settings import get_settings

    auth, _ = load_or_create(get_settings().resolved_auth_file())
    store = open_store(get_settings(), auth_secret=auth.audit_secret)
    rows = [store.append_assessment(**record(i)) for i in range(4)]
    store.close()
    runner = CliRunner()
    signed = runner.invoke(app, ["audit", "checkpoint"])
    assert signed.exit_code == 0 and "verified and signed" in signed.output, signed.output
    auditor = tmp_path / "auditor"  # the auditor's own anchors, copied off the host
    auditor.mkdir()
    cp_copy, pub_copy = auditor / "checkpoints.jsonl", auditor / "signer.pub"
    cp_copy.write_bytes((home / "checkpoints" / "checkpoints.jsonl").read_bytes())
    pub_copy.write_bytes((home / "keys" / "checkpoint-ed25519.pem.pub").read_bytes())
    args = ["audit", "verify", "--checkpoint", str(cp_copy), "--public-key", str(pub_copy)]
    ok = runner.invoke(app, args)
    key_id = read_checkpoints(cp_copy)[-1].key_id
    assert ok.exit_code == 0 and ok.output.startswith("intact: 4 records") and key_id in ok.output, ok.output
    assert "[" not in ok.output  # plain text in a pipe: no markup
    db = home / "audit.db"
    table = rows_of(db)
    table[1]["actor"] = "someone else"
    rewrite(db, table)
    broken = runner.invoke(app, args)
    assert broken.exit_code == 1 and broken.output.startswith("broken at " + rows[1].assessment_id), broken.output
    assert "1 record intact before it" in broken.output
    refused = runner.invoke(app, ["audit", "checkpoint"])
    assert refused.exit_code == 1 and refused.output.startswith("refused"), refused.output
    assert cp_copy.read_bytes() == (home / "checkpoints" / "checkpoints.jsonl").read_bytes()  # nothing signed
    missing = runner.invoke(app, ["audit", "verify", "--checkpoint", str(cp_copy), "--public-key", str(tmp_path / "x")])
    assert missing.exit_code == 2
