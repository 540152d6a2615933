"""``riskctl backup`` and ``riskctl restore``: a consistent online copy of a home, and its way back.

A backup holds the case store and the audit trail (SQLite's online backup API: each file a consistent
snapshot taken while the service keeps writing), the signed checkpoint files (and the signing refusals kept
beside them), the public key that checks them, and a ``manifest.json`` with each file's SHA-256. The
checkpoints are copied *before* the trail, so every checkpoint in a backup covers records the backup holds.
The secrets (``auth.json``: tokens and the HMAC secret of person ids; the private signing key; the key that
encrypts stored requests, if set) are not in it: they belong to the secrets manager, and a backup that
carried them would let whoever reads it forge checkpoints. A store on PostgreSQL is not copied: the manifest
and the command say the ``pg_dump`` that backs it up.

A restore checks every file against the manifest and the trail against the latest signed checkpoint (with
the backup's public key) before anything in the home is touched, refuses a home that has stores unless
``--force``, and then moves what it replaces aside (``<home>/replaced-<time>/``), never deleting it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.engine import make_url

from features.cli import CliError, console
from serving.settings import ServiceSettings, get_settings

MANIFEST = "manifest.json"
FORMAT = 1
PUBLIC_KEY = "checkpoint-public-key.pem"
CHECKPOINTS = "checkpoints"


@dataclass(frozen=True)
class Store:
    """One database of a home: its name in a backup, its URL, and its file when it is SQLite."""

    name: str
    url: str

    @property
    def file(self) -> Path | None:
        parsed = make_url(self.url)
        return Path(parsed.database) if parsed.get_backend_name() == "sqlite" and parsed.database else None

    def pg_dump(self, out: Path) -> str:
        """The command that backs up this store when it is PostgreSQL (the password is left to ~/.pgpass)."""
        url = make_url(self.url).set(drivername="postgresql", password=None)
        dump = out / f"{self.name}.dump"
        return f"pg_dump --format=custom --file {dump} '{url.render_as_string(hide_password=False)}'"


def stores(settings: ServiceSettings) -> list[Store]:
    return [Store("cases", settings.resolved_cases_url()), Store("audit", settings.resolved_audit_url())]


# ----------------------------------------------------------------------------------------------- backup
def backup_home(settings: ServiceSettings, out: Path) -> dict[str, Any]:
    """Copy the home of ``settings`` into the new folder ``out`` (made whole or not at all); its manifest."""
    from serving.audit import public_path

    if out.exists() and any(out.iterdir()):
        raise CliError(f"{out} is not empty: a backup goes into a new folder")
    partial = out.with_name(f".{out.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(mode=0o700, parents=True)
    try:
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "stores": {},
            "files": {},
        }
        # the checkpoints first: every checkpoint copied then covers records the trail's copy holds
        folder = settings.resolved_checkpoint_dir()
        for source in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:  # signing refusals too
            _copy_file(source, partial / CHECKPOINTS / source.name)
        public = public_path(settings.resolved_signing_key_file())
        if public.is_file():
            _copy_file(public, partial / PUBLIC_KEY)
        for store in stores(settings):
            manifest["stores"][store.name] = _backup_store(store, partial, out)
        manifest["files"] = {
            str(path.relative_to(partial)): {"sha256": _sha256(path), "bytes": path.stat().st_size}
            for path in sorted(partial.rglob("*"))
            if path.is_file()
        }
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        (partial / MANIFEST).chmod(0o600)
        if out.exists():
            out.rmdir()
        partial.rename(out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return manifest


def _backup_store(store: Store, folder: Path, out: Path) -> dict[str, Any]:
    if store.file is None:
        return {"kind": "postgresql", "copied": False, "back_up_with": store.pg_dump(out)}
    if not store.file.is_file():
        return {"kind": "sqlite", "copied": False, "why": f"no {store.file}"}
    target = folder / f"{store.name}.db"
    source = sqlite3.connect(store.file, timeout=30)  # read only by use (read-only mode cannot open a WAL's index)
    copy = sqlite3.connect(target)
    try:
        # one step (pages=-1): a consistent snapshot of the source as of one read transaction; in WAL mode the
        # service's writers go on meanwhile (a step-by-step copy restarts whenever the source is written to)
        source.backup(copy, pages=-1)
        copy.execute("pragma journal_mode=delete")  # one self-contained file (the service sets WAL again on open)
        rows = {
            table: copy.execute(f'select count(*) from "{table}"').fetchone()[0]
            for (table,) in copy.execute("select name from sqlite_master where type = 'table'")
        }
    finally:
        copy.close()
        source.close()
    target.chmod(0o600)
    return {"kind": "sqlite", "copied": True, "file": target.name, "rows": rows}


def _copy_file(source: Path, target: Path) -> None:
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    target.chmod(0o600)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------- restore
def check_backup(folder: Path) -> dict[str, Any]:
    """The manifest of a backup whose every file is there with its recorded SHA-256 (else a refusal)."""
    try:
        manifest: dict[str, Any] = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CliError(f"{folder} is not a backup: {MANIFEST} cannot be read ({exc})") from None
    if manifest.get("format") != FORMAT:
        raise CliError(f"{folder / MANIFEST}: format {manifest.get('format')!r}, this version reads {FORMAT}")
    for name, recorded in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            raise CliError(f"{folder}: {name} is missing")
        if _sha256(path) != recorded["sha256"]:
            raise CliError(f"{folder}: {name} is not the file backed up (its SHA-256 differs from the manifest's)")
    return manifest


def verify_backup_trail(folder: Path, trail: Path) -> str:
    """Verify the trail file ``trail`` against the latest signed checkpoint of each checkpoint file of the
    backup ``folder``, with its public key; a refusal naming the first broken record. Returns what was checked."""
    from serving.audit import CheckpointError, RefusalLog, load_public_key, read_checkpoints, verify_against

    refusals = RefusalLog(folder / CHECKPOINTS).path.name  # kept beside the checkpoints, not checkpoints
    files = sorted(f for f in (folder / CHECKPOINTS).glob("*.jsonl") if f.name != refusals)
    if not files or not (folder / PUBLIC_KEY).is_file():
        raise CliError(f"{folder}: no signed checkpoint or no public key to verify the trail against")
    key = load_public_key(folder / PUBLIC_KEY)
    said = []
    for file in files:
        try:
            latest = read_checkpoints(file)[-1:]
            # records after the latest checkpoint are the service's writes after it signed: they must chain
            result = verify_against(f"sqlite:///{trail}", latest, key, allow_newer=True)
        except (CheckpointError, ValueError) as exc:
            raise CliError(f"refused: the trail cannot be verified against {file.name}: {exc}") from None
        if not result.ok:
            raise CliError(f"refused: the backed-up trail is broken at {result.first_broken}: {result.problem}")
        said.append(f"{result.checked:,} records against {file.name} (signed {latest[0].signed_at})")
    return "; ".join(said)


def restore_home(settings: ServiceSettings, folder: Path, *, force: bool = False) -> list[str]:
    """Restore the backup ``folder`` into the home of ``settings``; the lines that say what was done."""
    from serving.audit import public_path

    manifest = check_backup(folder)
    targets = {s.name: s for s in stores(settings)}
    copied = {name: info for name, info in manifest["stores"].items() if info.get("copied")}
    for name in copied:
        if targets[name].file is None:
            raise CliError(f"the backup's {name} store is SQLite and this home's is {targets[name].url.split(':')[0]}")
    live = [t.file for name, t in targets.items() if name in copied and t.file is not None and t.file.exists()]
    checkpoint_dir = settings.resolved_checkpoint_dir()
    live += sorted(checkpoint_dir.glob("*.jsonl")) if checkpoint_dir.is_dir() else []
    if live and not force:
        raise CliError(
            f"refused: the home has stores already ({', '.join(map(str, live))}); stop the service and restore "
            "with --force (what is replaced is moved aside, not deleted)"
        )
    staged = {name: _stage(folder / info["file"], targets[name].file) for name, info in copied.items()}
    try:
        said = [verify_backup_trail(folder, staged["audit"])] if "audit" in staged else []
    except BaseException:
        for path in staged.values():
            path.unlink(missing_ok=True)
        raise
    aside = settings.home / f"replaced-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}"
    for name, path in staged.items():
        target = targets[name].file
        assert target is not None
        for old in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):  # a stale WAL would be replayed
            _move_aside(old, aside)
        path.replace(target)
        said.append(f"{name} store restored to {target}")
    for old in sorted(checkpoint_dir.glob("*.jsonl")) if checkpoint_dir.is_dir() else []:
        _move_aside(old, aside)
    for file in sorted((folder / CHECKPOINTS).glob("*.jsonl")):
        _copy_file(file, checkpoint_dir / file.name)
    public = public_path(settings.resolved_signing_key_file())
    if (folder / PUBLIC_KEY).is_file() and not public.exists():
        _copy_file(folder / PUBLIC_KEY, public)
    elif (folder / PUBLIC_KEY).is_file() and public.read_bytes() != (folder / PUBLIC_KEY).read_bytes():
        said.append(
            f"note: this home signs with another key than the restored checkpoints'; give auditors both public keys "
            f"({public} and {folder / PUBLIC_KEY})"
        )
    for name, info in manifest["stores"].items():
        if info.get("kind") == "postgresql":
            said.append(
                f"{name} store is PostgreSQL: restore its dump with pg_restore (backed up with: {info['back_up_with']})"
            )
    if aside.exists():
        said.append(f"what was replaced is in {aside}")
    return said


def _stage(source: Path, target: Path | None) -> Path:
    """A copy of a backed-up database beside its target, for verifying before it replaces anything."""
    assert target is not None
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".{target.name}.restoring")
    shutil.copyfile(source, staged)
    staged.chmod(0o600)
    return staged


def _move_aside(path: Path, aside: Path) -> None:
    if path.exists():
        aside.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.replace(aside / path.name)


# ----------------------------------------------------------------------------------------------- commands
def backup(out: Annotated[Path, typer.Option("--out", help="a new folder for the backup")]) -> None:
    """Copy the case store, the audit trail, the signed checkpoints and the public key, while the service runs.

    SQLite stores are copied with SQLite's online backup (a consistent snapshot of each); a PostgreSQL store is
    not copied: the command says the pg_dump that backs it up. Secrets (auth.json, the private signing key) are
    not copied: back them up with your secrets manager.
    """
    settings = get_settings()
    manifest = backup_home(settings, out)
    for name, info in manifest["stores"].items():
        if info.get("copied"):
            console.print(f"{name}: {sum(info['rows'].values()):,} rows -> {out / info['file']}", markup=False)
        elif info["kind"] == "postgresql":
            console.print(f"{name}: PostgreSQL, not copied; back it up with: {info['back_up_with']}", markup=False)
        else:
            console.print(f"{name}: not copied ({info['why']})", markup=False)
    checkpoints = [f for f in manifest["files"] if f.startswith(CHECKPOINTS)]
    console.print(f"{len(checkpoints)} checkpoint file(s), manifest {out / MANIFEST}", markup=False)


def restore(
    folder: Annotated[Path, typer.Argument(help="a folder written by riskctl backup")],
    force: Annotated[bool, typer.Option("--force", help="replace the stores of a home that has them")] = False,
) -> None:
    """Restore a backup into RISK_HOME after checking every file and the trail against its signed checkpoints.

    Stop the service first. Refuses a home that has stores unless --force; what is replaced is moved aside.
    """
    for line in restore_home(get_settings(), folder, force=force):
        console.print(line, markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("backup")(backup)
    app.command("restore")(restore)
