"""``riskctl backup`` and ``riskctl restore`` (issue 23): a consistent copy while writes go on, a restore that
verifies the trail against the latest signed checkpoint before touching the home, and never loses a file."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cases_support import subset
from service_support import write_auth
from typer.testing import CliRunner

from features.cli import CliError
from features.schema import CaseTables
from features.vocab import Stage
from serving.audit import AuditStore, checkpointer_for, open_store, verify_trail
from serving.cases import CaseStore
from serving.cli import app, backup_home, check_backup, restore_home
from serving.settings import ServiceSettings, get_settings

SECRET = "5e" * 32


def model_event(audit: AuditStore, i: int) -> None:
    audit.add_model_event(
        event="promotion_override",
        stage=Stage.INTAKE.value,
        model_name="reoffence-intake",
        model_version=str(i),
        reason=f"test write {i}",
        detail={"i": i},
        actor="tester",
    )


def open_trail(settings: ServiceSettings) -> AuditStore:
    return open_store(settings, auth_secret=SECRET)


def sign(settings: ServiceSettings, audit: AuditStore) -> None:
    checkpointer_for(settings, audit).sign()


@pytest.fixture
def home(tmp_path: Path, cohort: CaseTables) -> ServiceSettings:
    """A home with a case store of 300 persons, a trail of 40 records and a signed checkpoint."""
    settings = get_settings(home=tmp_path / "home")
    write_auth(settings.home)
    store = CaseStore.open(settings)
    store.import_tables(subset(cohort, 300))
    store.close()
    audit = open_trail(settings)
    for i in range(40):
        model_event(audit, i)
    sign(settings, audit)
    audit.close()
    return settings


@pytest.fixture
def writing(home: ServiceSettings) -> Iterator[list[int]]:
    """Writes to the trail and new checkpoints, on and on in another thread, for as long as the test runs."""
    stop, written = threading.Event(), [0]

    def write() -> None:
        audit = open_trail(home)
        try:
            while not stop.is_set():
                model_event(audit, 1000 + written[0])
                written[0] += 1
                if written[0] % 10 == 0:
                    sign(home, audit)
        finally:
            audit.close()

    worker = threading.Thread(target=write)
    worker.start()
    while written[0] < 20:  # the writes are under way before the test goes on
        stop.wait(0.01)
    yield written
    stop.set()
    worker.join()


def test_a_backup_taken_while_writes_go_on_restores_and_verifies(
    home: ServiceSettings, writing: list[int], tmp_path: Path
) -> None:
    before = writing[0]
    manifest = backup_home(home, tmp_path / "backup")
    assert writing[0] > before  # the writes went on during the backup
    assert manifest["stores"]["cases"]["copied"] and manifest["stores"]["audit"]["copied"]
    for name in ("cases.db", "audit.db"):
        with sqlite3.connect(tmp_path / "backup" / name) as db:
            assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
    assert any(name.startswith("checkpoints/") for name in manifest["files"])
    assert (tmp_path / "backup" / "checkpoint-public-key.pem").is_file()
    assert oct((tmp_path / "backup").stat().st_mode & 0o777) == "0o700"

    fresh = get_settings(home=tmp_path / "fresh")
    said = restore_home(fresh, tmp_path / "backup")
    assert "records against" in said[0]
    restored = verify_trail(fresh.resolved_audit_url(), allow_newer=True)
    assert restored.ok and restored.checked >= 40 + 20
    with sqlite3.connect(fresh.home / "cases.db") as restored_cases, sqlite3.connect(home.home / "cases.db") as live:
        count = "select count(*) from persons"
        assert restored_cases.execute(count).fetchone() == live.execute(count).fetchone() == (300,)


def test_restore_refuses_a_live_home_and_with_force_moves_it_aside(home: ServiceSettings, tmp_path: Path) -> None:
    backup_home(home, tmp_path / "backup")
    audit = open_trail(home)
    model_event(audit, 99)  # the home moves on after its backup
    audit.close()
    with pytest.raises(CliError, match="the home has stores already"):
        restore_home(home, tmp_path / "backup")
    live = (home.home / "audit.db").read_bytes()
    said = restore_home(home, tmp_path / "backup", force=True)
    aside = next(home.home.glob("replaced-*"))
    assert (aside / "audit.db").read_bytes() == live  # nothing is lost: the replaced store is kept
    assert any(str(aside) in line for line in said)
    assert verify_trail(home.resolved_audit_url(), allow_newer=True).checked == 40


def test_a_changed_file_is_refused_and_nothing_is_written(home: ServiceSettings, tmp_path: Path) -> None:
    backup_home(home, tmp_path / "backup")
    cases = tmp_path / "backup" / "cases.db"
    cases.write_bytes(cases.read_bytes()[:-1] + b"\x01")
    with pytest.raises(CliError, match=r"cases\.db is not the file backed up"):
        check_backup(tmp_path / "backup")
    fresh = get_settings(home=tmp_path / "fresh")
    with pytest.raises(CliError):
        restore_home(fresh, tmp_path / "backup")
    assert not fresh.home.exists() or not any(fresh.home.rglob("*.db"))


def test_a_trail_rewritten_after_its_checkpoint_is_refused_even_with_a_matching_manifest(
    home: ServiceSettings, tmp_path: Path
) -> None:
    """Someone who can write the backup edits a record and the manifest's hashes: the signed checkpoint, which
    they cannot forge without the private key, still exposes it, and the home is left as it was."""
    import hashlib

    folder = tmp_path / "backup"
    backup_home(home, folder)
    with sqlite3.connect(folder / "audit.db") as db:
        table = next(t for (t,) in db.execute("select name from sqlite_master where type='table'") if "model" in t)
        columns = [r[1] for r in db.execute(f'pragma table_info("{table}")')]
        column = next(c for c in columns if c == "reason")
        changed = db.execute(f'update "{table}" set "{column}" = \'edited\' where rowid = 3').rowcount
        assert changed == 1, table
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["audit.db"]["sha256"] = hashlib.sha256((folder / "audit.db").read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    fresh = get_settings(home=tmp_path / "fresh")
    with pytest.raises(CliError, match="refused: the backed-up trail is broken"):
        restore_home(fresh, folder)
    assert not any(fresh.home.rglob("*.db")) and not any(fresh.home.rglob("*.restoring"))


def test_the_commands(home: ServiceSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISK_HOME", str(home.home))
    out = tmp_path / "cli-backup"
    result = CliRunner().invoke(app, ["backup", "--out", str(out)])
    assert result.exit_code == 0 and "cases: " in result.output and "manifest" in result.output, result.output
    again = CliRunner().invoke(app, ["backup", "--out", str(out)])
    assert again.exit_code == 2 and "not empty" in again.output
    refused = CliRunner().invoke(app, ["restore", str(out)])
    assert refused.exit_code == 2 and "--force" in refused.output
