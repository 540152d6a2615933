"""A copied or moved ``RISK_HOME`` uses its own artifacts, never the original's.

MLflow records artifact locations as absolute URIs (it resolves a relative path against the
working directory when the experiment is created), so a copy of ``RISK_HOME`` would read and write
the original's ``mlartifacts``. For the embedded store (SQLite under ``RISK_HOME``, artifacts in
``RISK_HOME/mlartifacts``) :func:`relocate_local_store` re-points every recorded location that
ends in another ``.../mlartifacts`` at this home's folder before MLflow is used: experiments, runs,
registered model versions and logged models. A tracking server or an explicit tracking URI is
left alone.
"""

from __future__ import annotations

import logging
import sqlite3

from features.settings import Settings

log = logging.getLogger(__name__)
MARKER = "/mlartifacts"
#: (table, column) pairs that hold artifact URIs in MLflow's SQL schema (missing ones are skipped)
COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("model_versions", "source"),
    ("model_versions", "storage_location"),
    ("logged_models", "artifact_location"),
)


def relocate_local_store(settings: Settings) -> int:
    """Rewrite artifact URIs of another ``.../mlartifacts`` to this home's; returns the rows changed."""
    db = settings.home / "mlflow.db"
    if settings.resolved_tracking_uri() != f"sqlite:///{db.resolve()}" or not db.is_file():
        return 0
    root = settings.artifact_location()
    changed = 0
    with sqlite3.connect(db) as con:
        tables = {row[0] for row in con.execute("select name from sqlite_master where type = 'table'")}
        present = [(t, c) for t, c in COLUMNS if t in tables and c in _columns(con, t)]
        old_roots = set()
        for table, column in present:
            for (value,) in con.execute(
                f"select distinct {column} from {table} where {column} like ?", (f"%{MARKER}%",)
            ):
                prefix = value[: value.index(MARKER) + len(MARKER)]
                if prefix != root:
                    old_roots.add(prefix)
        for old in sorted(old_roots):
            for table, column in present:
                cur = con.execute(
                    f"update {table} set {column} = ? || substr({column}, ?) where substr({column}, 1, ?) = ?",
                    (root, len(old) + 1, len(old), old),
                )
                changed += cur.rowcount
            log.info("re-pointed MLflow artifact locations from %s to %s", old, root)
    return changed


def _columns(con: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in con.execute(f"pragma table_info({table})")}
