"""The case store's Alembic migrations build exactly the tables the code declares, on SQLite and PostgreSQL.

A change to the tables without a migration (or a migration without the change) shows here as drift, not
later as a store that a new release cannot read.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cases_support import BACKENDS, store_url

from serving.cases import CaseStore


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_migrations_build_the_declared_tables(backend: str, tmp_path: Path) -> None:
    url, drop = store_url(backend, tmp_path)
    store = CaseStore(url)
    try:
        assert store.schema_drift() == []
    finally:
        store.close()
        drop()


@pytest.mark.parametrize("backend", BACKENDS)
def test_drift_is_seen(backend: str, tmp_path: Path) -> None:
    """The check can fail: an index the code declares, dropped from the database, is reported."""
    url, drop = store_url(backend, tmp_path)
    store = CaseStore(url)
    try:
        with store.write() as conn:
            conn.exec_driver_sql("DROP INDEX ix_events_person_id")
        drift = store.schema_drift()
        assert [d[0] for d in drift] == ["add_index"] and drift[0][1].name == "ix_events_person_id"
    finally:
        store.close()
        drop()
