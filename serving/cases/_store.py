"""The case store: canonical records kept current, current tiers, assessments made from them.

:class:`CaseStore` opens (and migrates) the database and answers the reads the case flows need:
a person's record, the roll of an office at a date, events, current tiers and the assessments
made through the case store. Writes go through one transaction each (``BEGIN IMMEDIATE`` on
SQLite), so a refused request writes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError
from sqlalchemy import Connection, and_, false, func, insert, select
from sqlalchemy.engine import make_url

from features.schema import PERSON_COLUMNS, CaseTables
from features.vocab import EventType, Stage
from serving.audit import AuditStore
from serving.cases import _tables as t
from serving.cases._db import migrate, read_events, schema_drift
from serving.cases._errors import CaseError
from serving.cases._import import ImportSummary, import_tables
from serving.scoring import message
from serving.scoring.schemas import EventRecord, ScoreRequest
from serving.settings import ServiceSettings, get_settings
from serving.storage import make_engine

logger = logging.getLogger(__name__)

CHUNK = 5000  # ids per IN (...) list: under SQLite's limit of bound parameters


def now_text() -> str:
    """The current UTC time as stored (ISO 8601, microseconds)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


class CaseStore:
    """The canonical tables of the people on supervision, with tiers, decisions and review runs.

    Parameters
    ----------
    url
        SQLAlchemy URL: ``sqlite:///var/cases.db`` (the file is created with mode 0600) or
        ``postgresql+psycopg://...``. The schema is migrated to the newest revision on open.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        for attempt in (1, 2):  # two processes opening a new store at once: the loser finds it done
            try:
                migrate(self.engine)
                break
            except Exception:
                if attempt == 2:
                    raise
        logger.info("case store at %s", make_url(url).render_as_string(hide_password=True))

    @classmethod
    def open(cls, settings: ServiceSettings | None = None) -> CaseStore:
        """The store of ``settings`` (``RISK_CASES_URL``, default ``<RISK_HOME>/cases.db``)."""
        return cls((settings or get_settings()).resolved_cases_url())

    def schema_drift(self) -> list[Any]:
        """How the database's schema differs from the tables this code declares (empty: none)."""
        return schema_drift(self.engine)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction (``BEGIN IMMEDIATE`` on SQLite): all of it or nothing."""
        with self.engine.connect() as conn:
            conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only connection in one transaction (one consistent snapshot)."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    # ------------------------------------------------------------------ import
    def import_tables(
        self,
        tables: CaseTables,
        *,
        source: str = "",
        files: dict[str, str] | None = None,
        audit: AuditStore | None = None,
        actor: str = "",
    ) -> ImportSummary:
        """Load validated canonical tables: upsert persons, add new events, upsert outcomes (all or nothing);
        chained in ``audit`` with the files' SHA-256 (``files``) and the counts."""
        return import_tables(self, tables, source=source, files=files, audit=audit, actor=actor)

    # ------------------------------------------------------------------ reads
    def offices(self) -> list[str]:
        """Every office that has someone in the store."""
        with self.read() as conn:
            return sorted(
                conn.execute(select(t.persons.c.office).where(t.persons.c.office.is_not(None)).distinct()).scalars()
            )

    def check_office(self, office: str) -> None:
        """Raise :class:`CaseError` (404) unless someone in the store belongs to ``office``."""
        with self.read() as conn:
            found = conn.execute(select(t.persons.c.person_id).where(t.persons.c.office == office).limit(1)).first()
        if found is None:
            raise CaseError(
                404,
                f"unknown office {office!r}: nobody in the case store belongs to it",
                loc=["office"],
                zh=f"未知的司法所 {office!r}：案件库中无该所人员",
            )

    def person(self, person_id: str, *, conn: Connection | None = None) -> dict[str, Any]:
        """One person's record with ``office`` and ``tier`` (current); :class:`CaseError` 404 if unknown."""
        stmt = (
            select(t.persons, t.tiers.c.tier)
            .outerjoin(t.tiers, t.tiers.c.person_id == t.persons.c.person_id)
            .where(t.persons.c.person_id == person_id)
        )
        if conn is None:
            with self.read() as own:
                row = own.execute(stmt).mappings().first()
        else:
            row = conn.execute(stmt).mappings().first()
        if row is None:
            raise CaseError(
                404,
                f"unknown person_id {person_id!r}: not in the case store",
                loc=["person_id"],
                zh=f"未知的人员编号 {person_id!r}：案件库中无此人",
            )
        return dict(row)

    def offices_of(self, person_ids: Sequence[str]) -> dict[str, str | None]:
        """The office of each of ``person_ids`` the store holds (the others are left out)."""
        ids = list(dict.fromkeys(person_ids))
        out: dict[str, str | None] = {}
        # on every posted /score: the driver's own SQL (a third of the Core statement's cost per call)
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        with self.engine.connect() as conn:
            for i in range(0, len(ids), CHUNK):
                part = ids[i : i + CHUNK]
                rows = conn.exec_driver_sql(
                    f"SELECT person_id, office FROM persons WHERE person_id IN ({', '.join([mark] * len(part))})",
                    tuple(part),
                )
                out.update({pid: office for pid, office in rows})
        return out

    def persons_frame(
        self, *, office: str | None = None, person_ids: Sequence[str] | None = None, on_roll: dt.date | None = None
    ) -> pd.DataFrame:
        """Persons (canonical columns, ``office``, current ``tier``), as a DataFrame with datetime64 dates.

        With ``on_roll``, only those under supervision on that date (the term covers it and they were
        not revoked before it), selected in the database.
        """
        stmt = select(t.persons, t.tiers.c.tier).outerjoin(t.tiers, t.tiers.c.person_id == t.persons.c.person_id)
        if office is not None:
            stmt = stmt.where(t.persons.c.office == office)
        if on_roll is not None:
            revoked = select(t.outcomes.c.person_id).where(
                and_(t.outcomes.c.revocation_date.is_not(None), t.outcomes.c.revocation_date < on_roll)
            )
            stmt = stmt.where(
                t.persons.c.supervision_start <= on_roll,
                t.persons.c.supervision_end >= on_roll,
                t.persons.c.person_id.not_in(revoked),
            )
        with self.read() as conn:
            if person_ids is None:
                frame = _frame(conn, stmt)
            else:
                ids = list(person_ids)
                parts = [
                    _frame(conn, stmt.where(t.persons.c.person_id.in_(ids[i : i + CHUNK])))
                    for i in range(0, len(ids), CHUNK)
                ]
                frame = pd.concat(parts, ignore_index=True) if parts else _frame(conn, stmt.where(false()))
        for col in t.PERSON_DATES:
            frame[col] = pd.to_datetime(frame[col])
        return frame

    def events_frame(self, person_ids: Sequence[str]) -> pd.DataFrame:
        """Events (``person_id``, ``date``, ``event_type``, ``value``) of the persons, oldest first."""
        with self.read() as conn:
            frame = read_events(conn, person_ids, chunk=CHUNK)
        return frame.sort_values(["person_id", "date"], kind="stable", ignore_index=True)

    def roll(self, office: str | None, as_of: dt.date) -> pd.DataFrame:
        """The persons on supervision on ``as_of`` (term covers the date, not revoked before it)."""
        frame = self.persons_frame(office=office, on_roll=as_of)
        return frame.sort_values("person_id", ignore_index=True)

    def assessments_frame(self, person_ids: Sequence[str]) -> pd.DataFrame:
        """The assessments made through the case store for these persons, oldest first."""
        ids = list(person_ids)
        with self.read() as conn:
            parts = [
                _frame(conn, select(t.assessments).where(t.assessments.c.person_id.in_(ids[i : i + CHUNK])))
                for i in range(0, len(ids), CHUNK)
            ]
            if not parts:
                parts = [_frame(conn, select(t.assessments).where(false()))]
        frame = pd.concat(parts, ignore_index=True)
        frame["as_of"] = pd.to_datetime(frame["as_of"])
        return frame.sort_values(["person_id", "as_of", "created_at"], kind="stable", ignore_index=True)

    def assessment(self, assessment_id: str, *, conn: Connection) -> dict[str, Any] | None:
        """One indexed assessment, or None."""
        row = conn.execute(select(t.assessments).where(t.assessments.c.assessment_id == assessment_id)).mappings()
        found = row.first()
        return dict(found) if found else None

    # ------------------------------------------------------------------ writes
    def record_event(
        self,
        person_id: str,
        *,
        date: dt.date,
        event_type: str,
        value: float | None = None,
        actor: str,
        as_of: dt.date | None = None,
        audit: AuditStore | None = None,
    ) -> dict[str, Any]:
        """Add one dated event, validated as the canonical table's; refused (nothing written) with the field.

        Once committed, the event is chained in ``audit`` (who recorded what, for whom, when); an event
        committed but not chained (a crash between) is chained when the service reconciles at start.

        ``as_of`` is the date the caseworker records it on (default today): an event dated after it, or
        before the person's birth, is refused. The outcomes' end of follow-up (the date the last import's
        outcomes are known to) does not bound it: events happen after an export is made.
        """
        today = dt.date.today()
        if as_of is not None and as_of > today:
            raise CaseError(
                422,
                f"event of {person_id!r}, field 'as_of': {as_of} is after today ({today})",
                loc=["as_of"],
                zh=f"{person_id!r} 的事件，字段 as_of：{as_of} 晚于今天（{today}）",
            )
        as_of = as_of or today
        try:
            ev = EventRecord.model_validate({"date": date, "event_type": event_type, "value": value})
        except ValidationError as err:
            e = err.errors(include_url=False)[0]
            field = ".".join(str(p) for p in e["loc"]) or "event"
            raise CaseError(
                422,
                f"event of {person_id!r}, field '{field}': {message(e, 'en', path=False)}",
                loc=[field],
                zh=f"{person_id!r} 的事件，字段 {field}：{message(e, 'zh', path=False)}",
            ) from None
        with self.write() as conn:
            person = self.person(person_id, conn=conn)
            if ev.date < person["birth_date"]:
                raise CaseError(
                    422,
                    f"event of {person_id!r}, field 'date': {ev.date} is before birth ({person['birth_date']})",
                    loc=["date"],
                    zh=f"{person_id!r} 的事件，字段 date：{ev.date} 早于出生日期",
                )
            if ev.date > as_of:
                raise CaseError(
                    422,
                    f"event of {person_id!r}, field 'date': {ev.date} is after as_of {as_of}",
                    loc=["date"],
                    zh=f"{person_id!r} 的事件，字段 date：{ev.date} 晚于记录日期 {as_of}",
                )
            row = dict(
                person_id=person_id,
                date=ev.date,
                event_type=EventType(ev.event_type).value,
                value=ev.value,
                source="recorded",
                recorded_by=actor,
                recorded_at=now_text(),
            )
            key = conn.execute(insert(t.events).values(**row)).inserted_primary_key
            assert key is not None
            event_id = key[0]
        logger.info("event %s recorded for a person by %s", row["event_type"], actor)
        recorded = {"event_id": int(event_id), **row}
        if audit is not None:
            chain_event(audit, recorded, office=person["office"])
        return recorded

    def score_request(
        self,
        person_id: str,
        *,
        stage: Stage | str,
        as_of: dt.date | None = None,
        lang: str = "zh",
        today: dt.date | None = None,
    ) -> ScoreRequest:
        """The score request of one person from the stored record (events up to the assessment date).

        The assessment is dated ``as_of``, by default the day it is made (``today``), or the end of
        the term for a person whose term has ended: never after today, never outside the term
        (design.md, "Dates, rules and offices"). A stage whose due window (review policy) has not
        opened by that date is refused with the date it opens; nothing is scored.
        """
        from serving.cases._policy import ReviewPolicy

        with self.read() as conn:  # the record and its revocation, in one snapshot
            person = self.person(person_id, conn=conn)
            revoked = conn.execute(
                select(t.outcomes.c.revocation_date).where(t.outcomes.c.person_id == person_id)
            ).scalar()
        stage = Stage(stage)
        today = today or dt.date.today()
        if as_of is not None and as_of > today:
            raise CaseError(
                422,
                f"person {person_id!r}, field 'as_of': {as_of} is after today ({today}): an assessment "
                "is dated on or before the day it is made",
                loc=["as_of"],
                zh=f"人员 {person_id!r}，字段 as_of：{as_of} 晚于今天（{today}），评估日期不能晚于评估当天",
            )
        start, end = person["supervision_start"], person["supervision_end"]
        last = min(end, revoked) if revoked is not None else end  # a revocation ends the term
        day = as_of if as_of is not None else min(today, last)
        if revoked is not None and day > revoked:
            raise CaseError(
                409,
                f"person {person_id!r}: supervision was revoked on {revoked}; no assessment can be dated {day}",
                loc=["as_of"],
                zh=f"人员 {person_id!r}：已于{revoked}撤销缓刑/假释，不能以{day}为评估日期",
            )
        opens, _ = ReviewPolicy.load().due.window(stage).dates(start, end)
        if day < opens:
            raise CaseError(
                409,
                f"person {person_id!r}: the {stage.en} opens on {opens} (review policy); it cannot be made on {day}",
                loc=["stage"],
                zh=f"人员 {person_id!r}：{stage.zh}自{opens}起方可进行（评估与研判策略），{day}不能评估",
            )
        with self.read() as conn:
            rows = conn.execute(
                select(t.events.c.date, t.events.c.event_type, t.events.c.value)
                .where(t.events.c.person_id == person_id)
                .order_by(t.events.c.date)
            ).all()
        body: dict[str, Any] = {
            "person": {c: person[c] for c in PERSON_COLUMNS},
            "stage": stage.value,
            "as_of": day,
            "lang": lang,
        }
        body["events"] = [{"date": d, "event_type": e, "value": v} for d, e, v in rows if d <= day]
        try:
            return ScoreRequest.model_validate(body)
        except ValidationError as err:
            e = err.errors(include_url=False)[0]
            field = ".".join(str(p) for p in e["loc"]) or "as_of"
            raise CaseError(
                422, f"person {person_id!r}, field '{field}': {e['msg'].removeprefix('Value error, ')}", loc=[field]
            ) from None

    def note_assessments(self, rows: list[dict[str, Any]], *, conn: Connection | None = None) -> None:
        """Index assessments made from the case store (their full records are in the audit trail)."""
        if not rows:
            return
        if conn is not None:
            conn.execute(insert(t.assessments), rows)
            return
        with self.write() as own:
            own.execute(insert(t.assessments), rows)

    def outcomes_frame(self) -> pd.DataFrame:
        """Every outcome (``person_id``, ``reoffence_date``, ``revocation_date``, ``followup_end``; datetime64 dates)
        as last imported: what revalidation joins the stored assessments with."""
        cols = t.outcomes.c
        with self.read() as conn:
            frame = _frame(conn, select(cols.person_id, cols.reoffence_date, cols.revocation_date, cols.followup_end))
        for col in ("reoffence_date", "revocation_date", "followup_end"):
            frame[col] = pd.to_datetime(frame[col])
        return frame

    def review_assessment_ids(self) -> set[str]:
        """The ids of the assessments a review meeting made (review scores, never a stage's formal assessment)."""
        with self.read() as conn:
            found = conn.execute(select(t.assessments.c.assessment_id).where(t.assessments.c.run_id.is_not(None)))
            return {str(a) for a in found.scalars()}

    def counts(self) -> dict[str, int]:
        """Rows per table (for the CLI and the benchmark)."""
        with self.read() as conn:
            return {
                name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
                for name, table in (
                    ("persons", t.persons),
                    ("events", t.events),
                    ("outcomes", t.outcomes),
                    ("decisions", t.decisions),
                    ("review_runs", t.review_runs),
                )
            }


def _frame(conn: Connection, stmt: Any) -> pd.DataFrame:
    result = conn.execute(stmt)
    return pd.DataFrame(result.all(), columns=list(result.keys()))


def chain_event(audit: AuditStore, event: dict[str, Any], *, office: str, late: bool = False) -> None:
    """Chain one committed event recorded by a user (its case-store id, date, type, value, who and when);
    ``late``: chained by the reconciliation, after the event was committed."""
    audit.add_case_event(
        kind="event_recorded",
        office=office,
        person_id=str(event["person_id"]),
        detail={
            "event_id": int(event["event_id"]),
            "date": str(event["date"]),
            "event_type": str(event["event_type"]),
            "value": event["value"],
            "recorded_at": str(event["recorded_at"]),
            **({"late": True} if late else {}),
        },
        actor=str(event["recorded_by"] or "unknown"),
    )


def as_date(value: Any) -> dt.date:
    """A date from a Timestamp, datetime64 or date."""
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, dt.datetime):
        return value.date()
    if not isinstance(value, dt.date):
        raise TypeError(f"not a date: {value!r}")
    return value
