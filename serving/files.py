"""Files only their owner may read: the audit store, the case store, keys, tokens, checkpoints.

The stores hold birth dates, offences and health flags, and the key and token files are secrets, so
they are created with mode 0600 whatever the umask, and the folders this module creates with 0700.
A file that already exists keeps its mode (an operator may have chosen another); :func:`warn_if_open`
says so in the log.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from sqlalchemy.engine import make_url

__all__ = ["append_private_line", "create_private_file", "ensure_private_sqlite", "warn_if_open", "write_private_file"]

log = logging.getLogger(__name__)
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


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
