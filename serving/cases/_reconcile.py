"""The case store and the audit trail agree: what one holds of decisions, recorded events and imports,
the other holds too (design.md, "Tamper evidence, continued").

The two are separate databases, so each write goes first to the one that can replay it into the other:

- a decision step is chained in the trail inside the case store's transaction, before it commits: if the
  process dies between the two, the trail holds a step the case store lacks, and :func:`reconcile` applies
  it (the trail is the decisions' outbox: every field of the step is in it), if the step's signature
  holds: a step forged into the trail's database is reported, never applied;
- a recorded event or an import is committed to the case store first, then chained: if the process dies
  between, the case store holds what the trail lacks (with who and when), and :func:`reconcile` chains it.

The service reconciles at start (``apply=True``); ``riskctl audit verify`` and ``/verify`` report the
differences (``apply=False``); anything that cannot be replayed is reported, never guessed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, text, update

from serving.audit import AuditStore, DecisionStepRecord
from serving.cases import _tables as t
from serving.cases._import import chain_import
from serving.cases._store import CaseStore, chain_event

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Difference:
    """One thing the trail and the case store disagree on; ``applied`` if it was put right."""

    kind: str  # decision | event | import
    ref: str
    what: str
    applied: bool = False

    def text(self) -> str:
        return f"{self.kind} {self.ref}: {self.what}{' (put right)' if self.applied else ''}"


def reconcile(store: CaseStore, audit: AuditStore, *, apply: bool) -> list[Difference]:
    """Compare the case store with the trail; with ``apply``, put right what can be replayed.

    Returns every difference found (those put right marked ``applied``).
    """
    with store.write() if apply else store.read() as conn:
        if apply and conn.dialect.name == "postgresql":  # workers starting at once reconcile one at a time
            conn.execute(text("SELECT pg_advisory_xact_lock(7305422)"))
        found = _decisions(conn, store, audit, apply=apply)
        found += _events(conn, audit, apply=apply)
    for difference in found:
        log = logger.warning if difference.applied or not apply else logger.error
        log("case store and audit trail: %s", difference.text())
    return found


def _decisions(conn: Connection, store: CaseStore, audit: AuditStore, *, apply: bool) -> list[Difference]:
    steps: dict[str, list[DecisionStepRecord]] = defaultdict(list)
    found: list[Difference] = []
    for step in audit.all_decision_steps():
        if audit.is_authentic("decisions", step):
            steps[step.decision_id].append(step)
        else:  # a step someone wrote into the trail's database: never applied (the verifier names it too)
            found.append(
                Difference("decision", step.decision_id, f"step {step.step} (seq {step.seq}) not signed by the service")
            )
    rows = {r["decision_id"]: dict(r) for r in conn.execute(select(t.decisions)).mappings()}
    for decision_id, chained in steps.items():
        last, row = chained[-1], rows.get(decision_id)
        if row is None:
            proposed = next((s for s in chained if s.step == "proposed"), None)
            indexed = store.assessment(proposed.assessment_id, conn=conn) if proposed is not None else None
            if proposed is None or indexed is None:
                found.append(
                    Difference(
                        "decision", decision_id, f"{last.step} in the trail, not in the case store (person unknown)"
                    )
                )
                continue
            row = dict(
                decision_id=decision_id,
                person_id=indexed["person_id"],
                office=proposed.office,
                assessment_id=proposed.assessment_id,
                from_tier=proposed.from_tier,
                to_tier=proposed.to_tier,
                tier_by_risk=indexed["tier_by_risk"],
                reason_code=proposed.reason_code,
                reason=proposed.text,
                status="proposed",
                proposed_by=proposed.actor,
                proposed_at=proposed.created_at,
                decided_by=None,
                decided_at=None,
                comment=None,
            )
            if apply:
                conn.execute(insert(t.decisions).values(**row))
            found.append(Difference("decision", decision_id, "proposed in the trail, not in the case store", apply))
        if last.step in ("approved", "rejected") and row["status"] == "proposed":
            if apply:
                _apply_decided(conn, row, last)
            found.append(
                Difference(
                    "decision",
                    decision_id,
                    f"{last.step} in the trail by {last.actor} at {last.created_at}, still proposed in the case store",
                    apply,
                )
            )
        elif row["status"] != last.step:
            found.append(
                Difference("decision", decision_id, f"{row['status']} in the case store, {last.step} in the trail")
            )
    for decision_id, row in rows.items():
        if decision_id not in steps:
            found.append(Difference("decision", decision_id, f"{row['status']} in the case store, not in the trail"))
    return found


def _apply_decided(conn: Any, row: dict[str, Any], step: DecisionStepRecord) -> None:
    """Write a decision's approval or rejection as the trail holds it (and, approved, the new tier)."""
    conn.execute(
        update(t.decisions)
        .where(t.decisions.c.decision_id == row["decision_id"])
        .values(status=step.step, decided_by=step.actor, decided_at=step.created_at, comment=step.text)
    )
    row.update(status=step.step)
    if step.step == "approved":
        conn.execute(
            update(t.tiers)
            .where(t.tiers.c.person_id == row["person_id"])
            .values(
                tier=step.to_tier,
                since=dt.datetime.fromisoformat(step.created_at).date(),
                decision_id=row["decision_id"],
                source="decision",
            )
        )


def _events(conn: Connection, audit: AuditStore, *, apply: bool) -> list[Difference]:
    chained_events = {int(e.detail["event_id"]) for e in audit.case_events(kind="event_recorded", limit=None)}
    chained_imports = {str(e.detail.get("import_id")) for e in audit.case_events(kind="import", limit=None)}
    found: list[Difference] = []
    recorded = (
        conn.execute(
            select(t.events, t.persons.c.office)
            .join(t.persons, t.persons.c.person_id == t.events.c.person_id)
            .where(t.events.c.source == "recorded")
            .order_by(t.events.c.event_id)
        )
        .mappings()
        .all()
    )
    imports = conn.execute(select(t.imports).order_by(t.imports.c.created_at)).mappings().all()
    for event in recorded:
        if int(event["event_id"]) in chained_events:
            continue
        if apply:
            chain_event(audit, dict(event), office=str(event["office"]), late=True)
        found.append(
            Difference(
                "event",
                str(event["event_id"]),
                f"recorded by {event['recorded_by']} at {event['recorded_at']}, not in the trail",
                apply,
            )
        )
    for row in imports:
        if row["import_id"] in chained_imports:
            continue
        summary = json.loads(row["summary"])
        if apply:
            files, actor = summary.pop("files", {}), str(summary.pop("actor", "") or "import")
            chain_import(audit, summary, source=row["source"], files=files, actor=actor, late=True)
        found.append(Difference("import", row["import_id"], f"of {row['created_at']}, not in the trail", apply))
    return found
