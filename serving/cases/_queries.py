"""Reads of the case store that the API and the console show: tier decisions, a person's tier history, review
runs, and whose office an assessment belongs to.

Each returns plain dicts (one per row, columns by name), newest or oldest first as documented, so that
no room outside this one builds SQL on the case store's tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from serving.cases import _tables as t

if TYPE_CHECKING:
    from serving.cases._store import CaseStore


def pending_decisions(store: CaseStore, *, office: str) -> list[dict[str, Any]]:
    """The office's proposals waiting for a supervisor, oldest first."""
    d = t.decisions
    with store.read() as conn:
        rows = conn.execute(
            select(d).where((d.c.office == office) & (d.c.status == "proposed")).order_by(d.c.proposed_at)
        ).mappings()
        return [dict(r) for r in rows]


def decided_decisions(store: CaseStore, *, office: str, limit: int = 20) -> list[dict[str, Any]]:
    """The office's latest approved or rejected decisions, newest first."""
    d = t.decisions
    with store.read() as conn:
        rows = conn.execute(
            select(d)
            .where((d.c.office == office) & (d.c.status != "proposed"))
            .order_by(d.c.decided_at.desc())
            .limit(limit)
        ).mappings()
        return [dict(r) for r in rows]


def person_decisions(store: CaseStore, person_id: str) -> list[dict[str, Any]]:
    """Every tier decision about one person, newest proposal first."""
    d = t.decisions
    with store.read() as conn:
        rows = conn.execute(select(d).where(d.c.person_id == person_id).order_by(d.c.proposed_at.desc())).mappings()
        return [dict(r) for r in rows]


def review_runs(store: CaseStore, *, office: str, limit: int = 24) -> list[dict[str, Any]]:
    """The office's stored review runs (id, date, when, who, how many, superseded by, backdated), newest first."""
    r = t.review_runs
    with store.read() as conn:
        rows = conn.execute(
            select(r.c.run_id, r.c.as_of, r.c.created_at, r.c.actor, r.c.count, r.c.superseded_by, r.c.backdated)
            .where(r.c.office == office)
            .order_by(r.c.created_at.desc())
            .limit(limit)
        ).mappings()
        return [dict(x) for x in rows]


def assessment_office(store: CaseStore, assessment_id: str) -> str | None:
    """The office of the person behind an assessment the case store indexed (scored by id or in a review);
    None for one it does not know (a record posted to ``/score``, or an unknown id)."""
    a, p = t.assessments, t.persons
    with store.read() as conn:
        office = conn.execute(
            select(p.c.office).join(a, a.c.person_id == p.c.person_id).where(a.c.assessment_id == assessment_id)
        ).scalar()
        return None if office is None else str(office)


def tier_history(store: CaseStore, person_id: str) -> list[dict[str, Any]]:
    """The person's tiers over time, oldest first.

    First the tier they started the term with (``how``: ``arrival``, ``export``, or ``start`` once a decision
    has replaced the record of which), then each approved decision since (``how``: ``decision``, with its
    date, reason code and who decided).
    """
    d = t.decisions
    with store.read() as conn:
        person = conn.execute(
            select(t.persons.c.supervision_start, t.tiers.c.tier, t.tiers.c.source)
            .join(t.tiers, t.tiers.c.person_id == t.persons.c.person_id)
            .where(t.persons.c.person_id == person_id)
        ).first()
        approved = [
            dict(r)
            for r in conn.execute(
                select(d).where((d.c.person_id == person_id) & (d.c.status == "approved")).order_by(d.c.decided_at)
            ).mappings()
        ]
    if person is None:
        return []
    start, current, source = person
    first = approved[0]["from_tier"] if approved else current
    how = source if not approved and source != "decision" else "start"  # arrival / export no longer known
    out: list[dict[str, Any]] = [{"date": start, "tier": first, "how": how, "reason_code": None, "by": None}]
    for row in approved:
        out.append(
            {
                "date": str(row["decided_at"])[:10],
                "tier": row["to_tier"],
                "how": "decision",
                "reason_code": row["reason_code"],
                "by": row["decided_by"],
            }
        )
    return out


def office_name(store: CaseStore, office: str) -> str | None:
    """The office's name as the latest export gave it (``persons.office_name``), or None."""
    p = t.persons
    with store.read() as conn:
        found = conn.execute(
            select(p.c.office_name).where((p.c.office == office) & p.c.office_name.is_not(None)).limit(1)
        ).scalar()
    return None if found is None else str(found)
