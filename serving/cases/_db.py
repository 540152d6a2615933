"""Migrations and raw bulk reads and writes of the case store (its engine: :func:`serving.storage.make_engine`)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, Table

logger = logging.getLogger(__name__)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (Alembic ``upgrade head``), in one transaction."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("serving.cases") / "migrations"))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    logger.debug("case store schema at head")


def schema_drift(engine: Engine) -> list[Any]:
    """How the database's schema differs from the tables the code declares (Alembic's ``compare_metadata``;
    empty when the migrations build exactly those tables)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from serving.cases._tables import VERSION_TABLE, metadata

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        diff: list[Any] = compare_metadata(context, metadata)
        return diff


def sql_dates(conn: Connection, days: np.ndarray) -> list[Any]:
    """``datetime64`` dates as the driver takes them for a ``DATE`` column: ISO text on SQLite (what
    SQLAlchemy's SQLite ``Date`` stores and reads back), ``datetime.date`` elsewhere."""
    days = np.asarray(days, dtype="datetime64[D]")
    if conn.dialect.name == "sqlite":
        text: list[Any] = np.datetime_as_string(days, unit="D").tolist()
        return text
    ordinals = (days.astype(np.int64) + dt.date(1970, 1, 1).toordinal()).tolist()
    return [dt.date.fromordinal(d) for d in ordinals]


def bulk_insert(conn: Connection, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Insert many rows through the driver's ``executemany`` (values as the driver takes them).

    SQLAlchemy's own ``executemany`` processes each parameter of each row in Python: for a few million
    events that was most of an import's time. Dates must come from :func:`sql_dates`.
    """
    quote = conn.dialect.identifier_preparer.quote
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join([mark] * len(columns))})"
    )
    data = rows if isinstance(rows, list) else list(rows)
    if data:
        conn.exec_driver_sql(sql, data)


def read_events(conn: Connection, person_ids: Sequence[str], *, chunk: int = 5000) -> pd.DataFrame:
    """Events (``person_id``, ``date``, ``event_type``, ``value``) of the persons, as raw driver rows.

    SQLAlchemy's per-value result processing was most of the time of reading millions of events; the
    dates (ISO text on SQLite, dates elsewhere) are converted once, vectorised.
    """
    cols = ["person_id", "date", "event_type", "value"]
    quote = conn.dialect.identifier_preparer.quote
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    ids = list(person_ids)
    rows: list[Any] = []
    cursor = conn.connection.cursor()  # the DBAPI cursor, in this connection's transaction: plain tuples
    try:
        for i in range(0, len(ids), chunk):
            part = ids[i : i + chunk]
            cursor.execute(
                f"SELECT {', '.join(quote(c) for c in cols)} FROM {quote('events')} "
                f"WHERE {quote('person_id')} IN ({', '.join([mark] * len(part))})",
                tuple(part),
            )
            rows += cursor.fetchall()
    finally:
        cursor.close()
    frame = pd.DataFrame.from_records(rows, columns=cols)
    frame["date"] = pd.to_datetime(frame["date"])
    frame["value"] = frame["value"].astype(float)
    return frame
