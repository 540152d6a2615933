"""Alembic migrations of the case store, applied by :class:`serving.cases.CaseStore` when it opens."""
