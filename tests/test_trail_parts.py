"""The trail's other guarantees (design.md, "Tamper evidence, continued"): the key held by a separate signer,
personal data at rest, recorded events and imports chained, and decisions written once across the trail and
the case store even when the process is killed between the two writes."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from cases_support import BACKENDS, hand_tables, index_row, person_row, store_url
from trail_support import record, rewrite, rows_of
from typer.testing import CliRunner

from serving.audit import (
    AuditStore,
    Checkpointer,
    CheckpointLog,
    RecordCipher,
    SignerClient,
    SignerError,
    SignerService,
    SigningRefused,
    open_store,
    serve_signer,
    verify_against,
    verify_trail,
)
from serving.auth import Principal, Role
from serving.cases import CaseError, CaseStore, DecisionOut, approve, propose, reconcile
from serving.settings import ServiceSettings

SECRET = "0f" * 32
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def signer_socket() -> Iterator[tuple[Path, SignerService]]:
    """A separate signer on a Unix socket (its key and checkpoint stream in a folder of its own)."""
    folder = Path(tempfile.mkdtemp(prefix="sig", dir="/tmp"))  # a Unix socket path is at most 107 bytes
    service = SignerService(folder / "key.pem", folder / "stream")
    path = folder / "s.sock"
    thread = threading.Thread(target=serve_signer, args=(service, path), daemon=True)
    thread.start()
    for _ in range(200):
        if path.is_socket():
            break
        time.sleep(0.01)
    yield path, service


def test_a_separate_signer_holds_the_key_and_signs_only_what_it_signed(
    signer_socket: tuple[Path, SignerService], tmp_path: Path
) -> None:
    path, service = signer_socket
    client = SignerClient(path)
    assert client.key_id == service.signer.key_id
    home = tmp_path / "home"
    settings = ServiceSettings(home=home, signer_socket=path)
    store = open_store(settings, auth_secret=SECRET)
    rows = [store.append_assessment(**record(i)) for i in range(3)]
    assert all(r.record_sig for r in rows)
    checkpointer = Checkpointer(store, client, CheckpointLog(home / "checkpoints"), interval_s=0, name="t")
    signed = checkpointer.sign()
    assert signed is not None and signed.key_id == client.key_id
    assert not list(home.rglob("*.pem")), "no private key in the service's home"
    stream = service.log.read()  # the signer's own stream, out of the service's reach
    assert [c.to_dict() for c in stream] == [signed.to_dict()]
    assert verify_against(audit_url(home), stream, client.public_key()).ok
    with pytest.raises(SignerError, match="not a record this signer signed"):
        client.sign_checkpoint({"assessments": (9, "c" * 64)}, proofs={}, signer="forger")
    with pytest.raises(SignerError, match="unknown op"):
        client._ask({"op": "give me the key"})
    with pytest.raises(SignerError, match="already listening"):
        serve_signer(service, path)
    store.close()


def audit_url(home: Path) -> str:
    return f"sqlite:///{(home / 'audit.db').resolve()}"


def test_personal_data_is_encrypted_at_rest_and_read_back_as_answered(tmp_path: Path) -> None:
    key_file = RecordCipher.create(tmp_path / "outside" / "audit.key")
    settings = ServiceSettings(home=tmp_path / "home", audit_encryption_key_file=key_file)
    store = open_store(settings, auth_secret=SECRET)
    answer = b'{"person_id":"P1","probability":0.1,"tier":"ordinary"}'
    stored = store.append_assessment(**(record(1) | {"response": answer}))
    db = tmp_path / "home" / "audit.db"
    with closing(sqlite3.connect(db)) as con:
        raw = con.execute("SELECT request_json, response_json, explanation_json FROM assessments").fetchone()
    assert all(value.startswith("enc:v1:") for value in raw)
    assert b"1990-01-01" not in db.read_bytes() and b"birth_date" not in db.read_bytes()
    back = store.get(stored.assessment_id)
    assert back is not None and back.request["person"]["birth_date"] == "1990-01-01"
    assert back.response_json.encode() == answer.replace(b'"P1"', f'"{store.person_key("P1")}"'.encode())
    assert verify_trail(audit_url(tmp_path / "home")).ok  # the chain verifies without the key
    other = AuditStore(audit_url(tmp_path / "home"), secret=SECRET, cipher=RecordCipher(os.urandom(32)))
    with pytest.raises(ValueError, match="encrypted with key"):
        other.get(stored.assessment_id)
    plain = AuditStore(audit_url(tmp_path / "home"), secret=SECRET)
    found = plain.get(stored.assessment_id)
    assert found is not None
    with pytest.raises(ValueError, match="encrypted at rest"):
        _ = found.request
    for s in (store, other, plain):
        s.close()


def test_the_person_id_secret_can_live_outside_the_home(tmp_path: Path) -> None:
    secret_file = tmp_path / "secrets" / "audit-secret"
    secret_file.parent.mkdir()
    secret_file.write_text("ab" * 32 + "\n")
    secret_file.chmod(0o600)
    settings = ServiceSettings(home=tmp_path / "home", audit_secret_file=secret_file)
    store = open_store(settings, auth_secret=SECRET)
    assert store.person_key("P1") == AuditStore("sqlite://", secret="ab" * 32).person_key("P1")
    store.close()
    secret_file.write_text("not hex")
    with pytest.raises(ValueError, match="at least 32 hex digits"):
        open_store(settings, auth_secret=SECRET)


@pytest.fixture(params=BACKENDS)
def stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[CaseStore, AuditStore, dict[str, str], ServiceSettings]]:
    """A case store with persons A and B of office t1, each with a signed, indexed assessment (SQLite, and
    PostgreSQL when ``RISK_TEST_POSTGRES_URL`` is set)."""
    cases_url, drop_cases = store_url(request.param, tmp_path)
    audit_url, drop_audit = store_url(request.param, tmp_path) if request.param != "sqlite" else (None, lambda: None)
    request.addfinalizer(drop_cases)
    request.addfinalizer(drop_audit)
    settings = ServiceSettings(home=tmp_path / "home", cases_url=cases_url, audit_url=audit_url)
    cases = CaseStore.open(settings)
    cases.import_tables(
        hand_tables([person_row(p, start="2024-01-01", end="2025-01-01") for p in "AB"]),
        audit=None,
    )
    audit = open_store(settings, auth_secret=SECRET)
    ids = {}
    for pid in "AB":
        ids[pid] = str(uuid.uuid4())
        audit.append_assessment(**(record(0) | {"assessment_id": ids[pid], "person_id": pid}))
        cases.note_assessments([index_row(ids[pid], pid, stage="midterm", as_of=dt.date(2024, 7, 2))])
    yield cases, audit, ids, settings
    cases.close()
    audit.close()


CW = Principal(Role.CASEWORKER, "wang", "t1")
SUP = Principal(Role.SUPERVISOR, "li", "t1")


def propose_a(cases: CaseStore, audit: AuditStore, ids: dict[str, str]) -> DecisionOut:
    """A caseworker's proposal of ordinary for person A, on A's assessment."""
    return propose(
        cases,
        audit,
        principal=CW,
        person_id="A",
        to_tier="ordinary",
        reason_code="risk_assessment",
        reason="low risk at the mid-term assessment",
        assessment_id=ids["A"],
    )


def test_recorded_events_and_imports_are_chained_and_reconciled(
    stores: tuple[CaseStore, AuditStore, dict[str, str], ServiceSettings],
) -> None:
    cases, audit, _, _ = stores
    found = reconcile(cases, audit, apply=False)  # the import above was not chained (audit=None)
    assert [d.kind for d in found] == ["import"]
    event = cases.record_event("A", date=dt.date(2024, 7, 1), event_type="police_penalty", actor="wang", audit=audit)
    chained = audit.case_events(kind="event_recorded")
    assert len(chained) == 1 and chained[0].person_key == audit.person_key("A") and chained[0].actor == "wang"
    assert chained[0].detail["event_id"] == event["event_id"] and chained[0].detail["event_type"] == "police_penalty"
    assert "A" not in chained[0].detail_json  # keyed, never the raw id
    # an event committed but not chained (the process died between the two writes)
    cases.record_event("B", date=dt.date(2024, 7, 2), event_type="report_missed", actor="zhao")
    pending = reconcile(cases, audit, apply=False)
    assert sorted(d.kind for d in pending) == ["event", "import"] and not any(d.applied for d in pending)
    applied = reconcile(cases, audit, apply=True)
    assert all(d.applied for d in applied)
    assert reconcile(cases, audit, apply=False) == []
    late = audit.case_events(kind="event_recorded")[0]
    assert late.actor == "zhao" and late.person_key == audit.person_key("B") and late.detail["late"]
    assert "late" not in chained[0].detail  # chained when it was written
    imports = audit.case_events(kind="import")
    assert len(imports) == 1 and imports[0].detail["counts"]["persons_added"] == 2


_KILLED = """
import os, sys
sys.path[:0] = [{repo!r}, {tests!r}]
from serving.audit import open_store
from serving.auth import Principal, Role
from serving.cases import CaseStore, approve
from serving.cases import _decisions
from serving.settings import ServiceSettings

settings = ServiceSettings(home={home!r}, cases_url={cases_url!r}, audit_url={audit_url!r})
cases, audit = CaseStore.open(settings), open_store(settings, auth_secret={secret!r})
chain = _decisions._chain


def chain_then_die(*args, **kwargs):
    chain(*args, **kwargs)  # the step is in the trail ...
    os._exit(9)  # ... and the process dies before the case store commits


_decisions._chain = chain_then_die
approve(cases, audit, principal=Principal(Role.SUPERVISOR, "li", "t1"), decision_id={decision!r}, comment="agreed")
"""


def test_a_kill_between_the_two_writes_of_a_decision_is_reconciled(
    stores: tuple[CaseStore, AuditStore, dict[str, str], ServiceSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    cases, audit, ids, settings = stores
    reconcile(cases, audit, apply=True)
    proposal = propose_a(cases, audit, ids)
    script = _KILLED.format(
        repo=str(REPO),
        tests=str(REPO / "tests"),
        home=str(settings.home),
        cases_url=settings.cases_url,
        audit_url=settings.audit_url,
        secret=SECRET,
        decision=proposal.decision_id,
    )
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True)
    assert done.returncode == 9, done.stderr
    assert [s.step for s in audit.decision_steps(proposal.decision_id)] == ["proposed", "approved"]
    assert cases.person("A")["tier"] == "strict"  # the case store did not commit
    differs = reconcile(cases, audit, apply=False)
    assert len(differs) == 1 and "still proposed in the case store" in differs[0].what
    monkeypatch.setenv("RISK_HOME", str(settings.home))
    for name in ("cases_url", "audit_url"):
        if getattr(settings, name):
            monkeypatch.setenv(f"RISK_{name.upper()}", getattr(settings, name))
    from serving.cli import app

    verify = CliRunner().invoke(app, ["audit", "verify", "--cases"])
    assert verify.exit_code == 1 and "still proposed in the case store" in verify.output, verify.output
    reconcile(cases, audit, apply=True)  # what the service does at start
    assert cases.person("A")["tier"] == "ordinary"
    assert reconcile(cases, audit, apply=False) == []
    with pytest.raises(CaseError, match="already approved"):  # approved once, not twice
        approve(cases, audit, principal=SUP, decision_id=proposal.decision_id, comment="twice")
    verify = CliRunner().invoke(app, ["audit", "verify", "--cases"])
    assert verify.exit_code == 0 and "agrees with the trail" in verify.output, verify.output


def test_a_forged_decision_step_is_never_signed(
    stores: tuple[CaseStore, AuditStore, dict[str, str], ServiceSettings],
) -> None:
    """A forger adds an 'approved' step to the trail (hash right, head updated): the service's signing
    refuses it, and the reconciliation at start reports it but never applies it to the case store."""
    cases, audit, ids, settings = stores
    url = settings.resolved_audit_url()
    checkpointer = Checkpointer(audit, audit.signer, CheckpointLog(settings.home / "cp"), interval_s=0)  # type: ignore[arg-type]
    proposal = propose_a(cases, audit, ids)  # a genuine proposal awaiting the supervisor
    checkpointer.sign()
    rows = rows_of(url, "decisions")
    forged = dict(
        step_id=str(uuid.uuid4()),
        decision_id=proposal.decision_id,  # its approval, forged
        assessment_id=ids["A"],
        created_at=dt.datetime.now(dt.UTC).isoformat(),
        person_key=audit.person_key("A"),
        step="approved",
        office="t1",
        from_tier="strict",
        to_tier="ordinary",
        reason_code="risk_assessment",
        text="",
        actor="li",
    )
    rewrite(url, "decisions", [*rows, forged])
    with pytest.raises(SigningRefused, match="was not written by the service"):
        checkpointer.sign()
    found = reconcile(cases, audit, apply=True)
    assert [d.what for d in found if d.kind == "decision"] == ["step approved (seq 2) not signed by the service"]
    assert cases.person("A")["tier"] == "strict"  # not applied
