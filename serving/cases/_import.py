"""Import of canonical tables into the case store: validated, all or nothing, idempotent.

Persons are upserted by ``person_id`` (a changed field updates the row), outcomes likewise, and
events are added only when new: an event is its (person, date, type, value), counted as a
multiset, so an export that repeats what the store has adds nothing, and two identical events
of one day in the export are two events. Re-importing the same export changes nothing and the
summary says so.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import uuid
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Table, bindparam, insert, select, update

from features.schema import (
    CURRENT_TIER_COLUMN,
    OPTIONAL_PERSON_COLUMNS,
    PERSON_COLUMNS,
    CaseTables,
    DataValidationError,
    validate_tables,
)
from features.vocab import Tier
from serving.audit import AuditStore
from serving.cases import _tables as t
from serving.cases._db import bulk_insert, read_events, sql_dates
from serving.cases._errors import CaseError


class Writable(Protocol):
    """What an import needs of the case store: one write transaction (:meth:`CaseStore.write`)."""

    def write(self) -> AbstractContextManager[Connection]: ...


logger = logging.getLogger(__name__)

STORED_PERSON_COLUMNS = [*PERSON_COLUMNS, *OPTIONAL_PERSON_COLUMNS]
OUTCOME_DATES = ("reoffence_date", "revocation_date", "followup_end")


@dataclass(frozen=True)
class ImportSummary:
    """What an import changed (all zero but ``*_unchanged`` when the export was already in the store)."""

    import_id: str | None
    persons_added: int
    persons_updated: int
    persons_unchanged: int
    events_added: int
    events_already_stored: int
    outcomes_added: int
    outcomes_updated: int
    outcomes_unchanged: int

    @property
    def changed(self) -> bool:
        """Whether the import wrote anything."""
        return bool(
            self.persons_added
            or self.persons_updated
            or self.events_added
            or self.outcomes_added
            or self.outcomes_updated
        )

    def text(self) -> str:
        """One line for the operator."""
        if not self.changed:
            return (
                f"nothing changed: the export is already in the case store ({self.persons_unchanged:,} persons, "
                f"{self.events_already_stored:,} events)"
            )
        return (
            f"persons: {self.persons_added:,} added, {self.persons_updated:,} updated, "
            f"{self.persons_unchanged:,} unchanged; events: {self.events_added:,} added, "
            f"{self.events_already_stored:,} already stored; outcomes: {self.outcomes_added:,} added, "
            f"{self.outcomes_updated:,} updated"
        )


def read_dir(path: Path | str) -> CaseTables:
    """The canonical tables of an export folder: ``persons``, ``events`` and optional ``outcomes``, each
    ``.parquet`` or ``.csv`` (not validated here)."""
    path = Path(path)
    frames: dict[str, pd.DataFrame | None] = {}
    for name in ("persons", "events", "outcomes"):
        parquet, csv = path / f"{name}.parquet", path / f"{name}.csv"
        if parquet.exists():
            frames[name] = pd.read_parquet(parquet)
        elif csv.exists():
            frames[name] = pd.read_csv(
                csv, dtype={"person_id": str, "office": str, "event_type": str}, keep_default_na=True
            )
        elif name == "outcomes":
            frames[name] = None
        else:
            raise CaseError(422, f"{path}: no {name}.parquet or {name}.csv", loc=[name])
    persons, events = frames["persons"], frames["events"]
    assert persons is not None and events is not None
    return CaseTables(persons, events, frames["outcomes"])


def file_hashes(path: Path | str) -> dict[str, str]:
    """The SHA-256 of each canonical table's file in an export folder (what :func:`read_dir` reads)."""
    path, found = Path(path), {}
    for name in ("persons", "events", "outcomes"):
        for suffix in (".parquet", ".csv"):
            file = path / f"{name}{suffix}"
            if file.exists():
                digest = hashlib.sha256()
                with file.open("rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        digest.update(block)
                found[file.name] = digest.hexdigest()
                break
    return found


def import_tables(
    store: Writable,
    tables: CaseTables,
    *,
    source: str = "",
    files: dict[str, str] | None = None,
    audit: AuditStore | None = None,
    actor: str = "",
) -> ImportSummary:
    """Validate ``tables`` and write them in one transaction; :class:`CaseError` (422) names the first problems.

    An import that changed something is kept in ``imports`` with its counts and its files' SHA-256
    (``files``, :func:`file_hashes`), and chained in the audit trail (``audit``) once committed; an import
    committed but not chained (a crash between) is chained when the service reconciles at start.
    """
    try:
        tables = validate_tables(tables)
    except DataValidationError as err:
        first = err.problems[0]
        raise CaseError(
            422,
            f"import refused, nothing written: {err}",
            loc=[first.table, first.row if first.row is not None else "", first.field],
        ) from None
    persons, import_id = _persons(tables.persons), str(uuid.uuid4())
    with store.write() as conn:
        stored = _stored_persons(conn)
        p_added, p_updated, p_same = _upsert_persons(conn, persons, stored, tiers=_export_tiers(tables.persons))
        e_added, e_known = _add_events(conn, tables.events, fresh=stored.empty, import_id=import_id)
        o_added, o_updated, o_same = _upsert_outcomes(conn, tables.outcomes)
        summary = ImportSummary(None, p_added, p_updated, p_same, e_added, e_known, o_added, o_updated, o_same)
        if summary.changed:
            summary = ImportSummary(import_id, *list(asdict(summary).values())[1:])
            conn.execute(
                insert(t.imports).values(
                    import_id=summary.import_id,
                    source=source,
                    created_at=dt.datetime.now(dt.UTC).isoformat(),
                    summary=json.dumps({**asdict(summary), "files": dict(files or {}), "actor": actor}),
                )
            )
    logger.info("import from %s: %s", source or "tables", summary.text())
    if audit is not None and summary.changed:
        chain_import(audit, asdict(summary), source=source, files=files or {}, actor=actor or "import")
    return summary


def chain_import(
    audit: AuditStore, counts: dict[str, Any], *, source: str, files: dict[str, str], actor: str, late: bool = False
) -> None:
    """Chain a committed import in the audit trail: its id, source, files' SHA-256 and counts
    (:class:`ImportSummary` as a dict); ``late``: chained by the reconciliation, after the import."""
    detail = {"import_id": counts["import_id"], "source": source, "files": files, "counts": counts}
    audit.add_case_event(
        kind="import", office="", person_id=None, detail=detail | ({"late": True} if late else {}), actor=actor
    )


def _persons(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for optional in OPTIONAL_PERSON_COLUMNS:
        if optional not in out.columns:
            out[optional] = None
        out[optional] = out[optional].astype(object).where(out[optional].notna(), None)
    out["person_id"] = out["person_id"].astype(str)
    return out[STORED_PERSON_COLUMNS].reset_index(drop=True)


def _stored_persons(conn: Connection) -> pd.DataFrame:
    result = conn.execute(select(*(t.persons.c[c] for c in STORED_PERSON_COLUMNS)))
    frame = pd.DataFrame(result.all(), columns=STORED_PERSON_COLUMNS)
    for col in t.PERSON_DATES:
        frame[col] = pd.to_datetime(frame[col])
    return frame


def _records(frame: pd.DataFrame, date_columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows as dicts of plain Python values (dates as ``date``, NaT/NaN as None)."""
    columns: dict[str, list[Any]] = {}
    for col in frame.columns:
        values = frame[col]
        if col in date_columns:
            columns[col] = [None if pd.isna(v) else v.date() for v in values]
        elif values.dtype.kind in "fiub":
            columns[col] = [None if isinstance(v, float) and v != v else v for v in values.tolist()]
        else:
            columns[col] = [None if v is None or (isinstance(v, float) and v != v) else v for v in values.tolist()]
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def _driver_columns(conn: Connection, frame: pd.DataFrame, date_columns: tuple[str, ...]) -> list[list[Any]]:
    """The frame's columns as the driver takes them (:func:`sql_dates` for dates; NaT and NaN as None)."""
    out = []
    for col in frame.columns:
        if col in date_columns:
            days = frame[col].to_numpy(dtype="datetime64[D]")
            missing = np.isnat(days).tolist()
            values = sql_dates(conn, np.where(np.isnat(days), np.datetime64("1970-01-01"), days))
            out.append([None if m else v for v, m in zip(values, missing, strict=True)])
        else:
            out.append([None if v is None or (isinstance(v, float) and v != v) else v for v in frame[col].tolist()])
    return out


def _insert_frame(conn: Connection, table: Table, frame: pd.DataFrame, date_columns: tuple[str, ...]) -> None:
    bulk_insert(conn, table, list(frame.columns), zip(*_driver_columns(conn, frame, date_columns), strict=True))


def _export_tiers(frame: pd.DataFrame) -> pd.Series:
    """The current tier each person has in the export (``current_tier``), by person id; empty if none."""
    if CURRENT_TIER_COLUMN not in frame.columns:
        return pd.Series(dtype=object)
    tiers = frame.set_index(frame["person_id"].astype(str))[CURRENT_TIER_COLUMN]
    return tiers[tiers.notna()].astype(str)


def _upsert_persons(
    conn: Connection, persons: pd.DataFrame, stored: pd.DataFrame, *, tiers: pd.Series
) -> tuple[int, int, int]:
    """Insert new persons (with their current tier), update changed ones; (added, updated, unchanged).

    A new person's current tier is the export's when it carries one (source ``export``), else strict
    (source ``arrival``: nobody in the store has been assessed yet). A known person's tier follows a
    changed export tier unless it was set by a decision taken here, which the export cannot know.
    """
    known = persons["person_id"].isin(stored["person_id"]).to_numpy()
    new = persons[~known]
    today = pd.Timestamp(dt.date.today())
    if len(new):
        _insert_frame(conn, t.persons, new, t.PERSON_DATES)
        exported = new["person_id"].map(tiers)
        arrival = pd.DataFrame(
            {
                "person_id": new["person_id"],
                "tier": exported.fillna(Tier.STRICT.value),
                "since": new["supervision_start"].where(exported.isna(), today),
                "decision_id": None,
                "source": np.where(exported.isna(), "arrival", "export"),
            }
        )
        _insert_frame(conn, t.tiers, arrival, ("since",))
    if len(tiers) and known.any():
        current = conn.execute(
            select(t.tiers.c.person_id, t.tiers.c.tier, t.tiers.c.source).where(t.tiers.c.source != "decision")
        ).all()
        moved = [
            {"pid": pid, "tier": tiers[pid]} for pid, tier, _ in current if pid in tiers.index and tiers[pid] != tier
        ]
        if moved:
            conn.execute(
                update(t.tiers)
                .where(t.tiers.c.person_id == bindparam("pid"))
                .values(tier=bindparam("tier"), since=dt.date.today(), source="export"),
                moved,
            )
    old = persons[known].set_index("person_id")
    before = stored.set_index("person_id").loc[old.index, old.columns]
    differs = ~((old == before) | (old.isna() & before.isna())).all(axis=1)
    changed = old[differs.to_numpy()].reset_index()
    if len(changed):
        rows = [{**r, "pid": r.pop("person_id")} for r in _records(changed, t.PERSON_DATES)]
        stmt = update(t.persons).where(t.persons.c.person_id == bindparam("pid"))
        conn.execute(stmt, rows)
    return len(new), len(changed), int(known.sum()) - len(changed)


def _unseen(events: pd.DataFrame, have: pd.DataFrame) -> np.ndarray:
    """Which export events the store does not hold yet, counting identical events as a multiset.

    An event is its (person, day, type, value). Stored rows come first in one grouping over both, so an
    export row's running count within its group is S + r (S stored copies, r copies earlier in the
    export): the row is new when r >= S, i.e. when the running count is at least 2S.
    """
    both = pd.concat([have, events], ignore_index=True)
    value = both["value"].to_numpy(dtype=float)
    missing = np.isnan(value)
    keys = pd.DataFrame(
        {
            "person": pd.factorize(both["person_id"].astype(str))[0],
            "day": both["date"].to_numpy(dtype="datetime64[D]").astype(np.int64),
            "type": pd.factorize(both["event_type"].astype(str))[0],
            "missing": missing,
            "value": np.where(missing, 0.0, value),
            "stored": np.arange(len(both)) < len(have),
        }
    )
    groups = keys.groupby(["person", "day", "type", "missing", "value"], sort=False)
    running = groups.cumcount().to_numpy()[len(have) :]
    stored = groups["stored"].transform("sum").to_numpy()[len(have) :]
    return running >= 2 * stored


def _add_events(conn: Connection, events: pd.DataFrame, *, fresh: bool, import_id: str) -> tuple[int, int]:
    """Insert the events the store does not hold yet (as a multiset); (added, already stored)."""
    events = events[["person_id", "date", "event_type", "value"]].reset_index(drop=True)
    if fresh:
        new = events
    else:
        have = read_events(conn, events["person_id"].astype(str).unique().tolist())
        new = events[_unseen(events, have)]
    if len(new):
        person = new["person_id"].astype(str)
        if not person.is_monotonic_increasing:  # in person order the person_id index grows at its end
            new, person = new.iloc[np.argsort(person.to_numpy(), kind="stable")], person.sort_values(kind="stable")
        value = new["value"].to_numpy(dtype=float)
        n = len(new)
        bulk_insert(
            conn,
            t.events,
            ["person_id", "date", "event_type", "value", "source", "import_id"],
            zip(
                person.to_numpy(dtype=object).tolist(),
                sql_dates(conn, new["date"].to_numpy()),
                new["event_type"].astype(str).to_numpy(dtype=object).tolist(),
                [None if v != v else v for v in value.tolist()],
                ["import"] * n,
                [import_id] * n,
                strict=True,
            ),
        )
    return len(new), len(events) - len(new)


def _upsert_outcomes(conn: Connection, outcomes: pd.DataFrame | None) -> tuple[int, int, int]:
    if outcomes is None or outcomes.empty:
        return 0, 0, 0
    outcomes = outcomes[["person_id", *OUTCOME_DATES]].assign(person_id=lambda f: f["person_id"].astype(str))
    result = conn.execute(select(t.outcomes))
    stored = pd.DataFrame(result.all(), columns=["person_id", *OUTCOME_DATES])
    for col in OUTCOME_DATES:
        stored[col] = pd.to_datetime(stored[col])
    known = outcomes["person_id"].isin(stored["person_id"]).to_numpy()
    if (~known).any():
        _insert_frame(conn, t.outcomes, outcomes[~known], OUTCOME_DATES)
    old = outcomes[known].set_index("person_id")
    before = stored.set_index("person_id").loc[old.index, old.columns]
    changed = old[(~((old == before) | (old.isna() & before.isna())).all(axis=1)).to_numpy()].reset_index()
    if len(changed):
        rows = [{**r, "pid": r.pop("person_id")} for r in _records(changed, OUTCOME_DATES)]
        conn.execute(update(t.outcomes).where(t.outcomes.c.person_id == bindparam("pid")), rows)
    return int((~known).sum()), len(changed), int(known.sum()) - len(changed)
