"""Alembic environment of the case store: runs on the connection :func:`serving.cases._db.migrate` passes."""

from __future__ import annotations

from alembic import context

from serving.cases._tables import VERSION_TABLE, metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
