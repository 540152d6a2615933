"""Promotion history per registered version, kept, never overwritten; and the rollback of a stage's champion.

Every decision about a version adds one entry to its history: a numbered tag ``gate_history.<n>`` holding
a JSON object (the latest decision's own tags, ``gate_decision`` and ``gate.<criterion>``, are replaced
by the next decision; the history is not). An entry says

- ``at``, ``by``: when, and who (an override's named user, else the operating-system user);
- ``event``: ``promoted``, ``refused``, ``override``, ``rolled_back`` (the champion was taken from it) or
  ``restored`` (it became the champion again by a rollback);
- ``alias`` the version got, ``champion_before`` (the champion when it was decided), ``previous``: the
  version a rollback of it returns the champion to;
- ``criteria`` (each criterion's verdict: pass, warn, FAIL), ``gate_version``, and the written
  ``reason`` of an override or a rollback.

:func:`rollback` returns a stage's ``@champion`` to the version it replaced, with a written reason.
``riskctl models list --history`` shows the entries; ``riskctl promote --rollback`` records the rollback
in the audit trail first, then here.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evaluation import relink_figures
from training.cards import REPORT_DIR_TAG, local_link, publish_card, with_section

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

HISTORY_PREFIX = "gate_history."
#: events after which the version holds ``@champion``
CHAMPION_EVENTS = ("promoted", "override", "restored")
#: the longest reason kept in an entry (a tag's value is bounded; the audit trail keeps it whole)
REASON_CHARS = 1500


class RollbackError(RuntimeError):
    """A rollback that cannot be made (no champion, no earlier champion recorded); nothing was changed."""


def history_of(tags: Mapping[str, str]) -> list[dict[str, Any]]:
    """A version's history entries from its tags, oldest first."""
    entries = []
    for key, value in tags.items():
        if key.startswith(HISTORY_PREFIX) and key[len(HISTORY_PREFIX) :].isdigit():
            entries.append((int(key[len(HISTORY_PREFIX) :]), json.loads(value)))
    return [entry for _, entry in sorted(entries, key=lambda pair: pair[0])]


def previous_of(version: str, tags: Mapping[str, str]) -> str | None:
    """The version a rollback of ``version`` returns to: the ``previous`` of its latest entry that made it the
    champion (None when it never was, or there was none before it)."""
    held = [e for e in history_of(tags) if e.get("event") in CHAMPION_EVENTS]
    if not held:
        return None
    previous = held[-1].get("previous")
    return None if previous in (None, version) else str(previous)


def add_entry(client: MlflowClient, name: str, version: str, tags: Mapping[str, str], entry: dict[str, Any]) -> None:
    """Append ``entry`` to the history of ``name`` ``version`` (whose tags are ``tags``).

    A promotion's ``previous`` is the champion it replaced or, for the champion decided again, the one it
    had replaced before.
    """
    entry = dict(entry)
    if entry.get("event") in ("promoted", "override") and "previous" not in entry:
        before = entry.get("champion_before")
        entry["previous"] = before if before not in (None, version) else previous_of(version, tags)
    if "reason" in entry:
        entry["reason"] = str(entry["reason"])[:REASON_CHARS]
    numbers = [int(k[len(HISTORY_PREFIX) :]) for k in tags if k.startswith(HISTORY_PREFIX)]
    key = f"{HISTORY_PREFIX}{max(numbers, default=0) + 1:03d}"
    client.set_model_version_tag(name, version, key, json.dumps(entry, sort_keys=True, ensure_ascii=False))


@dataclass(frozen=True)
class Rollback:
    """A rollback of a stage's champion: from which version to which, when, by whom and why."""

    stage: str
    model_name: str
    from_version: str
    to_version: str
    reason: str
    by: str
    at: str

    def describe(self) -> str:
        return (
            f"{self.model_name}: @champion returned from version {self.from_version} to version {self.to_version} "
            f"by {self.by} at {self.at}: {self.reason}"
        )


def plan_rollback(
    client: MlflowClient, name: str, alias: str, current: Any, *, stage: str, reason: str, by: str
) -> Rollback:
    """The rollback of ``name``'s ``alias`` (held by ``current``, a model version or None) to the version it
    replaced; nothing is written.

    Raises
    ------
    RollbackError
        If no version holds the alias, or its history names no earlier champion that still exists.
    """
    reason, by = " ".join(reason.split()), " ".join(by.split())
    if not reason:
        raise RollbackError("a rollback needs a written reason")
    if current is None:
        raise RollbackError(f"{name} has no @{alias}: there is nothing to roll back")
    previous = previous_of(str(current.version), current.tags or {})
    if previous is None:
        raise RollbackError(
            f"{name} version {current.version} (@{alias}) has no earlier champion recorded in its promotion history"
        )
    try:
        client.get_model_version(name, previous)
    except Exception as err:
        raise RollbackError(f"{name} version {previous}, the earlier champion, cannot be read: {err}") from err
    at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return Rollback(stage, name, str(current.version), previous, reason, by, at)


def apply_rollback(client: MlflowClient, plan: Rollback, alias: str) -> None:
    """Record the rollback in both versions' histories, then move ``alias`` to the earlier champion."""
    name = plan.model_name
    left, back = (client.get_model_version(name, v) for v in (plan.from_version, plan.to_version))
    common = {"at": plan.at, "by": plan.by, "reason": plan.reason[:REASON_CHARS]}
    add_entry(
        client,
        name,
        plan.from_version,
        left.tags or {},
        {**common, "event": "rolled_back", "alias": "", "to_version": plan.to_version},
    )
    restored = {
        **common,
        "event": "restored",
        "alias": alias,
        "from_version": plan.from_version,
        "previous": previous_of(plan.to_version, back.tags or {}),
    }
    add_entry(client, name, plan.to_version, back.tags or {}, restored)
    client.set_model_version_tag(
        name, plan.from_version, "gate_rolled_back", f"{plan.at} by {plan.by}: {plan.reason}"[:5000]
    )
    client.set_registered_model_alias(name, alias, plan.to_version)
    for version, line in (
        (plan.from_version, f"Rolled back at {plan.at} by {plan.by}: @{alias} returned to version {plan.to_version}."),
        (
            plan.to_version,
            f"Restored as @{alias} at {plan.at} by {plan.by}, a rollback of version {plan.from_version}.",
        ),
    ):
        _card_note(client, name, version, [line, "", f"Reason: {plan.reason}"])


def _card_note(client: MlflowClient, name: str, version: str, lines: list[str]) -> None:
    """The card's "Rollback" section, in the registry, the run and the report folder alike."""
    mv = client.get_model_version(name, version)
    card = with_section(relink_figures(mv.description or "", local_link), "Rollback", lines)
    folder = (mv.tags or {}).get(REPORT_DIR_TAG)
    publish_card(
        client,
        name=name,
        version=version,
        run_id=str(mv.run_id),
        card=card,
        report_dir=Path(folder) if folder else None,
    )


__all__ = [
    "CHAMPION_EVENTS",
    "HISTORY_PREFIX",
    "Rollback",
    "RollbackError",
    "add_entry",
    "apply_rollback",
    "history_of",
    "plan_rollback",
    "previous_of",
]
