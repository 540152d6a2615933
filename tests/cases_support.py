"""Shared set-up of the case store tests: store URLs (SQLite, and PostgreSQL when configured), small exports."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from features.schema import CURRENT_TIER_COLUMN, CaseTables

PG_URL = os.environ.get("RISK_TEST_POSTGRES_URL")
BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(
            not PG_URL, reason="RISK_TEST_POSTGRES_URL is not set: PostgreSQL case store tests skipped"
        ),
    ),
]


def store_url(backend: str, tmp_path: Path) -> tuple[str, Callable[[], None]]:
    """A fresh store URL and a cleanup callable (PostgreSQL: a schema of its own, dropped afterwards)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'cases.db'}", lambda: None
    from sqlalchemy import create_engine, text

    assert PG_URL is not None
    schema = f"cases_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}", drop


def subset(tables: CaseTables, n: int, *, current_tier: bool = False) -> CaseTables:
    """The first ``n`` persons with their events and outcomes.

    Without ``current_tier`` the export carries no tiers (everyone arrives strict), as most case tests
    assume; with it, the cohort's ``current_tier`` column is kept.
    """
    persons = tables.persons.head(n)
    if not current_tier:
        persons = persons.drop(columns=[CURRENT_TIER_COLUMN], errors="ignore")
    keep = tables.persons["person_id"].head(n)
    events = tables.events[tables.events["person_id"].astype(str).isin(keep)].copy()
    events["person_id"] = events["person_id"].astype(str)
    outcomes = tables.outcomes[tables.outcomes["person_id"].isin(keep)] if tables.outcomes is not None else None
    return CaseTables(
        persons.reset_index(drop=True),
        events.reset_index(drop=True),
        None if outcomes is None else outcomes.reset_index(drop=True),
    )


def person_row(
    person_id: str, *, start: str, end: str, office: str = "t1", birth: str = "1990-01-01"
) -> dict[str, Any]:
    """A hand-built canonical person."""
    return {
        "person_id": person_id,
        "sex": "male",
        "birth_date": pd.Timestamp(birth),
        "education": "tertiary",
        "employment": "employed",
        "marital": "married",
        "local": True,
        "supervision_type": "probation",
        "offence": "theft",
        "sentence_months": 12.0,
        "supervision_start": pd.Timestamp(start),
        "supervision_end": pd.Timestamp(end),
        "prior_convictions": 0,
        "prior_supervisions": 0,
        "flag_mental_illness": False,
        "flag_serious_illness": False,
        "flag_three_withouts": False,
        "flag_gang": False,
        "flag_drug_use": False,
        "flag_abscond_tendency": False,
        "office": office,
    }


def hand_tables(rows: list[dict[str, Any]]) -> CaseTables:
    events = pd.DataFrame(
        {
            "person_id": [rows[0]["person_id"]],
            "date": [rows[0]["supervision_start"]],
            "event_type": ["report_late"],
            "value": [float("nan")],
        }
    )
    return CaseTables(pd.DataFrame(rows), events, None)


def index_row(
    assessment_id: str,
    person_id: str,
    *,
    stage: str,
    as_of: dt.date,
    probability: float = 0.05,
    band: str = "low",
    tier_by_risk: str = "ordinary",
) -> dict[str, Any]:
    return dict(
        assessment_id=assessment_id,
        person_id=person_id,
        stage=stage,
        as_of=as_of,
        probability=probability,
        band=band,
        tier_by_risk=tier_by_risk,
        tier=tier_by_risk,
        rule_id=None,
        model="reoffence-x:1",
        actor="test",
        created_at=dt.datetime.now(dt.UTC).isoformat(),
        run_id=None,
    )
