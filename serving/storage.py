"""Where the service keeps things: the one database engine factory and the one private-file writer.

Databases. :func:`make_engine` is the only place an engine is made, for the audit store, the case store
and the console's sessions alike: PostgreSQL by URL, or SQLite in WAL mode with one durability for all
(``synchronous=FULL``: a committed answer, event or decision survives a power cut), a busy timeout,
foreign keys, and ``BEGIN`` under the caller's control (``execution_options(sqlite_begin="IMMEDIATE")``
serialises writers across processes).

Files. The stores hold birth dates, offences and health flags, the console's store holds session and
anti-forgery secrets, and the key and token files are secrets, so they are created with mode 0600
whatever the umask, and the folders this module creates with 0700. A file that already exists keeps its
mode (an operator may have chosen another); :func:`warn_if_open` says so in the log.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

__all__ = [
    "append_private_line",
    "create_private_file",
    "ensure_private_sqlite",
    "make_engine",
    "warn_if_open",
    "write_private_file",
]

log = logging.getLogger(__name__)
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
BUSY_TIMEOUT_S = 30
SQLITE_PRAGMAS = (
    "journal_mode=WAL",
    f"busy_timeout={BUSY_TIMEOUT_S * 1000}",
    "foreign_keys=ON",
    "synchronous=FULL",
    "cache_size=-65536",  # up to 64 MiB of pages per connection: imports and reviews read millions of events
)


def make_engine(url: str, *, create: bool = True) -> Engine:
    """An engine for ``url``. For a SQLite file: created first with mode 0600 (with ``create``), WAL, one
    durability, busy timeout, foreign keys, and ``BEGIN`` as ``execution_options(sqlite_begin=...)`` says
    (``DEFERRED`` by default)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if create:
        ensure_private_sqlite(url)
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # pysqlite must not emit BEGIN itself; _on_begin does
        for pragma in SQLITE_PRAGMAS:
            dbapi_conn.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get('sqlite_begin', 'DEFERRED')}")

    return engine


def _parent(path: Path) -> None:
    if not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)


def create_private_file(path: Path | str) -> bool:
    """Create ``path`` empty with mode 0600 unless it exists; True if this call created it."""
    path = Path(path)
    _parent(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        warn_if_open(path)
        return False
    os.fchmod(fd, PRIVATE_FILE)  # the umask may have removed bits, never added: make it exact
    os.close(fd)
    return True


def write_private_file(path: Path | str, data: bytes, *, replace: bool) -> None:
    """Write ``data`` atomically to ``path`` with mode 0600; with ``replace=False`` fail if it exists.

    Raises
    ------
    FileExistsError
        With ``replace=False``, if ``path`` exists (another process may have just created it).
    """
    path = Path(path)
    _parent(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # atomic, and fails if the file exists
    finally:
        tmp.unlink(missing_ok=True)


def append_private_line(path: Path | str, line: str) -> None:
    """Append one line to ``path`` (created 0600) in one ``O_APPEND`` write, flushed to disk."""
    path = Path(path)
    _parent(path)
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_private_sqlite(url: str) -> None:
    """For a SQLite file URL, create the database file 0600 before SQLite does (its WAL and shared
    memory files take the database file's mode); other URLs are left alone."""
    parsed = make_url(url)
    if (
        parsed.get_backend_name() == "sqlite"
        and parsed.database
        and parsed.database != ":memory:"
        and not parsed.database.startswith("file:")
    ):
        create_private_file(parsed.database)


def warn_if_open(path: Path | str) -> None:
    """Log a warning if others than the owner may read or write ``path``."""
    mode = Path(path).stat().st_mode & 0o777
    if mode & 0o077:
        log.warning("%s is open to others (mode %o); run chmod 600 on it", path, mode)
