"""The decision report: tier changes proposed, approved and rejected, and the override rate, for a period."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from serving.cases import _tables as t
from serving.cases._schemas import DecisionReport, ReportRow

if TYPE_CHECKING:
    from serving.cases._store import CaseStore


def decision_report(store: CaseStore, *, start: dt.date, end: dt.date, office: str | None = None) -> DecisionReport:
    """Decisions proposed from ``start`` to ``end`` (inclusive), by office, caseworker and reason code, and the
    step-downs the supervisors deferred ("not now"), by reason.

    An override is an approved decision whose new tier differs from the model's tier by risk in the
    assessment it refers to; the override rate is overrides / approved.
    """
    stmt = select(t.decisions).where(
        (t.decisions.c.proposed_at >= start.isoformat())
        & (t.decisions.c.proposed_at < (end + dt.timedelta(days=1)).isoformat())
    )
    if office is not None:
        stmt = stmt.where(t.decisions.c.office == office)
    deferrals = select(t.step_down_deferrals.c.reason_code, t.step_down_deferrals.c.office).where(
        (t.step_down_deferrals.c.created_at >= start.isoformat())
        & (t.step_down_deferrals.c.created_at < (end + dt.timedelta(days=1)).isoformat())
    )
    if office is not None:
        deferrals = deferrals.where(t.step_down_deferrals.c.office == office)
    with store.read() as conn:
        rows = [dict(r) for r in conn.execute(stmt).mappings()]
        deferred = Counter(code for code, _ in conn.execute(deferrals).all())
    return DecisionReport(
        step_downs_deferred=dict(sorted(deferred.items())),
        start=start,
        end=end,
        office=office,
        total=_count("all", rows),
        by_office=_group(rows, lambda r: r["office"]),
        by_caseworker=_group(rows, lambda r: r["proposed_by"]),
        by_reason=_group(rows, lambda r: r["reason_code"]),
    )


def _group(rows: list[dict[str, Any]], key: Callable[[dict[str, Any]], str]) -> list[ReportRow]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    return [_count(k, groups[k]) for k in sorted(groups)]


def _count(key: str, rows: list[dict[str, Any]]) -> ReportRow:
    approved = [r for r in rows if r["status"] == "approved"]
    overrides = sum(r["to_tier"] != r["tier_by_risk"] for r in approved)
    return ReportRow(
        key=key,
        proposed=len(rows),
        approved=len(approved),
        rejected=sum(r["status"] == "rejected" for r in rows),
        pending=sum(r["status"] == "proposed" for r in rows),
        overrides=overrides,
        override_rate=overrides / len(approved) if approved else None,
    )
