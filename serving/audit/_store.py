"""Tamper-evident audit store: assessments, tier decision steps and the earlier overrides (design.md, "The job").

Storage. SQLAlchemy Core on SQLite in WAL mode by default (``sqlite:///var/audit.db``) or PostgreSQL
by URL. Table ``assessments`` keeps exactly what was asked and answered; table ``overrides`` keeps
caseworkers' tier overrides of the earlier ``/override`` flow (kept readable); table
``decision_steps`` keeps each step of a tier decision (proposed, approved, rejected; serving/cases)
beside the assessment that prompted it, never in place of it.

Hash chains. One chain per table. Each row stores ``prev_hash`` (the ``record_hash`` of the row
before it in the same table; 64 zeros for the first) and ``record_hash`` = SHA-256 of the canonical
JSON (sorted keys, ``(",", ":")`` separators, ``ensure_ascii=False``) of every other stored column,
``seq`` and ``prev_hash`` included. ``seq`` is assigned by the store under the chain lock (1, 2,
3, ... without gaps), and table ``audit_chain_head`` keeps each chain's length and last hash,
updated in the same transaction as the append. :meth:`AuditStore.verify` walks each chain in
``seq`` order and so detects an edited field (hash mismatch), a deleted or inserted row (``seq``
gap, broken link), a reordered row (broken link) and rows deleted from the end (head mismatch).

Serialised appends. A per-URL process lock plus one transaction that reads the chain head and
inserts: ``BEGIN IMMEDIATE`` on SQLite (serialises writers across processes, readers go on in
WAL), ``SELECT ... FOR UPDATE`` of the head row on PostgreSQL.

Signed checkpoints. The hashes are not keyed: someone with write access who rewrites a row, every
later row and the head consistently is not detected by the chain alone. :class:`Checkpointer`
signs each chain's head with an Ed25519 key kept outside the database, and :meth:`AuditStore.verify`
and :func:`verify_trail` check the chains against those signed heads (``expect``): an edited and
rehashed record, records deleted from the end, and (for a stopped service) records appended after
the last checkpoint are breaks. A record inserted in the middle is named itself: the genuine record
after it still links to the one before it.

Person ids. The raw person id is never stored: the ``person_key`` column is HMAC-SHA256(secret,
person_id), and in both the request and the response every value under a key named
``person_id`` (at any depth, e.g. ``request["person"]["person_id"]``) is replaced by its key
before storing. The service hands the answer over as the JSON bytes it sends, and ``response_json``
is byte for byte what the client received except that each ``person_id`` value is its key (put the
raw id back in place of the key and the SHA-256 equals that of the client's copy).
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError

from features.vocab import Stage
from models.tier_policy import Tier
from serving.audit import recipe
from serving.storage import make_engine

logger = logging.getLogger(__name__)

GENESIS = "0" * 64
BUSY_TIMEOUT_S = 30
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()

metadata = MetaData()


def _hash_columns() -> tuple[Column, Column]:
    return Column("prev_hash", String(64), nullable=False), Column("record_hash", String(64), nullable=False)


assessments = Table(
    "assessments",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("assessment_id", String(36), nullable=False, unique=True),
    Column("created_at", String(40), nullable=False),
    Column("person_key", String(64), nullable=False, index=True),
    *(
        Column(name, Text, nullable=False)
        for name in (
            "stage",
            "model_name",
            "model_version",
            "policy_version",
            "request_json",
            "response_json",
            "explanation_json",
            "actor",
        )
    ),
    *_hash_columns(),
)
overrides = Table(
    "overrides",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("override_id", String(36), nullable=False, unique=True),
    Column("assessment_id", String(36), ForeignKey("assessments.assessment_id"), nullable=False, index=True),
    Column("created_at", String(40), nullable=False),
    *(Column(name, Text, nullable=False) for name in ("tier", "reason", "actor")),
    *_hash_columns(),
)
decision_steps = Table(  # each step of a tier decision (serving/cases): proposed, approved, rejected
    "decision_steps",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("step_id", String(36), nullable=False, unique=True),
    Column("decision_id", String(36), nullable=False, index=True),
    Column("assessment_id", String(36), ForeignKey("assessments.assessment_id"), nullable=False, index=True),
    Column("created_at", String(40), nullable=False),
    Column("person_key", String(64), nullable=False),
    *(
        Column(name, Text, nullable=False)
        for name in ("step", "office", "from_tier", "to_tier", "reason_code", "text", "actor")
    ),
    *_hash_columns(),
)
chain_head = Table(
    "audit_chain_head",
    metadata,
    Column("chain", String(32), primary_key=True),
    Column("length", Integer, nullable=False),
    Column("last_hash", String(64), nullable=False),
)
_CHAINS = {
    "assessments": (assessments, "assessment_id"),
    "overrides": (overrides, "override_id"),
    "decisions": (decision_steps, "step_id"),
}
#: Each hash chain's table (an independent auditor reads these columns to recompute the hashes).
CHAIN_TABLES: dict[str, Table] = {chain: table for chain, (table, _) in _CHAINS.items()}
_DECISION_STEPS = ("proposed", "approved", "rejected")
_RECORD_FIELDS = frozenset(
    {
        "assessment_id",
        "person_id",
        "stage",
        "model_name",
        "model_version",
        "policy_version",
        "request",
        "response",
        "explanation",
        "actor",
    }
)
_OPTIONAL_FIELDS = {"explanation": {}, "actor": ""}


@dataclass(frozen=True)
class OverrideRecord:
    """A stored tier override."""

    seq: int
    override_id: str
    assessment_id: str
    created_at: str
    tier: str
    reason: str
    actor: str
    prev_hash: str
    record_hash: str


@dataclass(frozen=True)
class DecisionStepRecord:
    """A stored step of a tier decision (the case store keeps the decision's state)."""

    seq: int
    step_id: str
    decision_id: str
    assessment_id: str
    created_at: str
    person_key: str
    step: str
    office: str
    from_tier: str
    to_tier: str
    reason_code: str
    text: str
    actor: str
    prev_hash: str
    record_hash: str


@dataclass(frozen=True)
class AuditRecord:
    """A stored assessment, with its overrides in the order they were recorded."""

    seq: int
    assessment_id: str
    created_at: str
    person_key: str
    stage: str
    model_name: str
    model_version: str
    policy_version: str
    request_json: str
    response_json: str
    explanation_json: str
    actor: str
    prev_hash: str
    record_hash: str
    overrides: tuple[OverrideRecord, ...] = ()

    @property
    def request(self) -> dict[str, Any]:
        """The stored request (person ids replaced by their keys)."""
        return json.loads(self.request_json)

    @property
    def response(self) -> dict[str, Any]:
        """The stored response, as it was returned."""
        return json.loads(self.response_json)

    @property
    def explanation(self) -> dict[str, Any]:
        """The full explanation stored beside the response (every feature's value and contribution)."""
        return json.loads(self.explanation_json)


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :meth:`AuditStore.verify`.

    ``first_broken`` is the id of the first record that fails, or ``"<table> seq <n>"`` for a
    record that is missing; ``problem`` says what failed.
    """

    ok: bool
    checked: int
    first_broken: str | None = None
    problem: str | None = None
    heads: dict[str, tuple[int, str]] | None = field(default=None, compare=False)  # of the snapshot checked


class AuditStore:
    """Append-only, hash-chained store of assessments and overrides.

    Parameters
    ----------
    url
        SQLAlchemy URL: ``sqlite:///path/audit.db`` (WAL mode) or ``postgresql+psycopg://...``.
    secret
        Key of the HMAC of person ids: bytes, or a hex string (``AuthConfig.audit_secret``);
        at least 16 bytes. Keep it: a new secret makes earlier records unreachable by person.
    """

    def __init__(self, url: str, *, secret: bytes | str) -> None:
        self._key = _secret_bytes(secret)
        self._engine = make_engine(url)
        self._sqlite = self._engine.dialect.name == "sqlite"
        with _LOCKS_GUARD:
            self._lock = _LOCKS.setdefault(url, threading.Lock())
        for attempt in (1, 2):  # workers starting at once: the loser retries and finds it all done
            try:
                with self._write() as conn:
                    metadata.create_all(conn)
                    have = set(conn.execute(select(chain_head.c.chain)).scalars())
                    for chain in _CHAINS.keys() - have:
                        conn.execute(insert(chain_head).values(chain=chain, length=0, last_hash=GENESIS))
                break
            except DBAPIError:
                if attempt == 2:
                    raise
        logger.info("audit store at %s", make_url(url).render_as_string(hide_password=True))

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def person_key(self, person_id: str) -> str:
        """HMAC-SHA256 of ``person_id`` under the store's secret (hex)."""
        return hmac.digest(self._key, str(person_id).encode("utf-8"), "sha256").hex()

    def append_assessment(
        self,
        *,
        assessment_id: str,
        person_id: str,
        stage: str,
        model_name: str,
        model_version: str,
        policy_version: str,
        request: dict,
        response: dict,
        explanation: dict | None = None,
        actor: str = "",
    ) -> AuditRecord:
        """Store one assessment (committed before returning).

        ``explanation`` holds what the response summarises (every feature's value and
        contribution); ``actor`` is the user who asked for the assessment.
        """
        return self.append_many(
            [
                dict(
                    assessment_id=assessment_id,
                    person_id=person_id,
                    stage=stage,
                    model_name=model_name,
                    model_version=model_version,
                    policy_version=policy_version,
                    request=request,
                    response=response,
                    explanation=explanation or {},
                    actor=actor,
                )
            ]
        )[0]

    def append_many(self, records: list[dict]) -> list[AuditRecord]:
        """Store a batch of assessments in one transaction (fields as :meth:`append_assessment`).

        Raises
        ------
        ValueError
            If a record lacks a field or has an unknown one, or an assessment id is repeated or
            already stored; nothing of the batch is stored then.
        """
        prepared = [self._prepare(i, rec) for i, rec in enumerate(records)]
        ids = [p["assessment_id"] for p in prepared]
        if len(set(ids)) != len(ids):
            raise ValueError("an assessment id is repeated within the batch")
        if not prepared:
            return []
        try:
            with self._write() as conn:
                rows = self._chain_rows(conn, "assessments", prepared)
                conn.execute(insert(assessments), rows)
        except IntegrityError as exc:
            raise ValueError(f"assessment id already stored (batch of {len(ids)} not stored)") from exc
        logger.debug("stored assessments seq %d-%d", rows[0]["seq"], rows[-1]["seq"])
        return [AuditRecord(**row) for row in rows]

    def add_override(self, assessment_id: str, *, tier: str, reason: str, actor: str) -> OverrideRecord:
        """Record a caseworker's tier override beside an assessment (which stays unchanged).

        Raises
        ------
        KeyError
            If no assessment has this id.
        ValueError
            If the tier is unknown or the reason or actor is empty.
        """
        tier, assessment_id = Tier(tier).value, _uuid_or_none(assessment_id) or str(assessment_id)
        if not (reason or "").strip():
            raise ValueError("an override needs a written reason")
        if not (actor or "").strip():
            raise ValueError("an override needs the actor who made it")
        fields = dict(
            override_id=str(uuid.uuid4()),
            assessment_id=assessment_id,
            tier=tier,
            reason=reason.strip(),
            actor=actor.strip(),
        )
        with self._write() as conn:
            found = conn.execute(select(assessments.c.seq).where(assessments.c.assessment_id == assessment_id))
            if found.first() is None:
                raise KeyError(f"no assessment {assessment_id!r}")
            row = self._chain_rows(conn, "overrides", [fields])[0]
            conn.execute(insert(overrides), [row])
        logger.info("override %s of assessment %s to %s by %s", row["override_id"], assessment_id, tier, actor)
        return OverrideRecord(**row)

    def add_decision_step(
        self,
        *,
        decision_id: str,
        step: str,
        assessment_id: str,
        person_id: str,
        office: str,
        from_tier: str,
        to_tier: str,
        reason_code: str,
        text: str,
        actor: str,
    ) -> DecisionStepRecord:
        """Chain one step of a tier decision beside the assessment that prompted it.

        ``text`` is the written reason (proposed) or the supervisor's comment (approved, rejected).

        Raises
        ------
        KeyError
            If no assessment has this id.
        ValueError
            If the step or a tier is unknown or the actor is empty.
        """
        if step not in _DECISION_STEPS:
            raise ValueError(f"unknown decision step {step!r}; known: {list(_DECISION_STEPS)}")
        if not (actor or "").strip():
            raise ValueError("a decision step needs the actor who took it")
        assessment_id = _uuid_or_none(assessment_id) or str(assessment_id)
        fields = dict(
            step_id=str(uuid.uuid4()),
            decision_id=str(uuid.UUID(str(decision_id))),
            assessment_id=assessment_id,
            person_key=self.person_key(person_id),
            step=step,
            office=str(office),
            from_tier=Tier(from_tier).value,
            to_tier=Tier(to_tier).value,
            reason_code=str(reason_code),
            text=str(text or ""),
            actor=actor.strip(),
        )
        with self._write() as conn:
            found = conn.execute(select(assessments.c.seq).where(assessments.c.assessment_id == assessment_id))
            if found.first() is None:
                raise KeyError(f"no assessment {assessment_id!r}")
            row = self._chain_rows(conn, "decisions", [fields])[0]
            conn.execute(insert(decision_steps), [row])
        logger.info("decision %s %s by %s", decision_id, step, actor)
        return DecisionStepRecord(**row)

    def decision_steps(self, decision_id: str) -> list[DecisionStepRecord]:
        """The stored steps of one decision, oldest first."""
        with self._engine.connect() as conn:
            rows = (
                conn.execute(
                    select(decision_steps)
                    .where(decision_steps.c.decision_id == str(decision_id))
                    .order_by(decision_steps.c.seq)
                )
                .mappings()
                .all()
            )
        return [DecisionStepRecord(**r) for r in rows]

    def get(self, assessment_id: str) -> AuditRecord | None:
        """The stored assessment with its overrides, or None."""
        key = _uuid_or_none(assessment_id)
        found = self._load(assessments.c.assessment_id == key) if key else []
        return found[0] if found else None

    def by_person(self, person_id: str) -> list[AuditRecord]:
        """Every stored assessment of a person (found by the keyed hash), oldest first."""
        return self._load(assessments.c.person_key == self.person_key(person_id))

    def recent(
        self,
        *,
        before_seq: int | None = None,
        limit: int = 100,
        since: str | None = None,
        until: str | None = None,
        stage: str | None = None,
        actor: str | None = None,
        decided: bool | None = None,
    ) -> list[AuditRecord]:
        """Stored assessments, newest first, with their overrides (the auditor's log, one page at a time).

        Parameters
        ----------
        before_seq
            Only records older than this ``seq`` (the next page starts after the last one shown).
        since, until
            Only records created on or after ``since`` and before ``until`` (ISO dates or times, UTC).
        stage, actor
            Only this stage, or this user's requests.
        decided
            True: only assessments with an override or a tier-decision step recorded beside them;
            False: only those without.
        """
        where = []
        if before_seq is not None:
            where.append(assessments.c.seq < before_seq)
        if since:
            where.append(assessments.c.created_at >= since)
        if until:
            where.append(assessments.c.created_at < until)
        if stage:
            where.append(assessments.c.stage == stage)
        if actor:
            where.append(assessments.c.actor == actor)
        if decided is not None:
            has = or_(
                assessments.c.assessment_id.in_(select(overrides.c.assessment_id)),
                assessments.c.assessment_id.in_(select(decision_steps.c.assessment_id)),
            )
            where.append(has if decided else ~has)
        return self._load(and_(true(), *where), newest_first=True, limit=limit)

    def steps_beside(self, assessment_ids: list[str]) -> dict[str, list[DecisionStepRecord]]:
        """The tier-decision steps recorded beside each of these assessments, oldest first."""
        if not assessment_ids:
            return {}
        with self._engine.connect() as conn:
            rows = (
                conn.execute(
                    select(decision_steps)
                    .where(decision_steps.c.assessment_id.in_(assessment_ids))
                    .order_by(decision_steps.c.seq)
                )
                .mappings()
                .all()
            )
        found: dict[str, list[DecisionStepRecord]] = {}
        for row in rows:
            found.setdefault(row["assessment_id"], []).append(DecisionStepRecord(**row))
        return found

    def count(self) -> int:
        """Number of stored assessments."""
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(assessments)).scalar_one())

    def head(self) -> dict[str, tuple[int, str]]:
        """Length and last hash of each chain, to copy somewhere tamper-proof."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(chain_head.c.chain, chain_head.c.length, chain_head.c.last_hash))
            return {chain: (length, last) for chain, length, last in rows}

    def verify(self, *, expect: Expectations | None = None, allow_newer: bool = True) -> VerifyResult:
        """Walk both chains in one consistent snapshot and report the first break.

        ``expect`` holds the heads of signed checkpoints (:mod:`serving.audit`): a record whose
        hash differs from a signed one, fewer records than signed, or (without ``allow_newer``) more
        records than the latest checkpoint signed, is a break.
        """
        return _verify_engine(self._engine, expect=expect or {}, allow_newer=allow_newer)

    # ------------------------------------------------------------------ internals
    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A serialised write transaction (process lock + BEGIN IMMEDIATE / FOR UPDATE)."""
        with self._lock, self._engine.connect() as conn:
            conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn

    def _prepare(self, i: int, rec: Mapping[str, Any]) -> dict[str, Any]:
        rec = {**_OPTIONAL_FIELDS, **rec}
        if set(rec) != _RECORD_FIELDS:
            raise ValueError(
                f"record {i}: missing {sorted(_RECORD_FIELDS - set(rec))}, unknown {sorted(set(rec) - _RECORD_FIELDS)}"
            )
        for name in ("person_id", "model_name", "model_version", "policy_version"):
            if not str(rec[name] or "").strip():
                raise ValueError(f"record {i}: {name} is empty")
        keyed: dict[str, str] = {}  # the record names its person up to three times: one HMAC

        def key_of(person_id: Any) -> str:
            text = str(person_id)  # the key is of the text: 1, 1.0 and True are different ids
            if text not in keyed:
                keyed[text] = self.person_key(text)
            return keyed[text]

        return dict(
            assessment_id=str(uuid.UUID(str(rec["assessment_id"]))),
            person_key=key_of(rec["person_id"]),
            stage=Stage(rec["stage"]).value,
            model_name=str(rec["model_name"]),
            model_version=str(rec["model_version"]),
            policy_version=str(rec["policy_version"]),
            request_json=recipe.canonical_keyed(rec["request"], key_of),
            response_json=recipe.answer_keyed(rec["response"], key_of),
            explanation_json=recipe.canonical_keyed(rec["explanation"], key_of),
            actor=str(rec["actor"] or ""),
        )

    @staticmethod
    def _chain_rows(conn: Connection, chain: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Give ``items`` their seq, created_at and hashes, and advance the chain head."""
        where = chain_head.c.chain == chain
        length, prev = conn.execute(
            select(chain_head.c.length, chain_head.c.last_hash).where(where).with_for_update()
        ).one()
        rows = []
        for item in items:
            length += 1
            row = {
                "seq": length,
                **item,
                "created_at": datetime.now(UTC).isoformat(timespec="microseconds"),
                "prev_hash": prev,
            }
            prev = row["record_hash"] = recipe.record_hash(row)
            rows.append(row)
        conn.execute(update(chain_head).where(where).values(length=length, last_hash=prev))
        return rows

    def _load(self, where: Any, *, newest_first: bool = False, limit: int | None = None) -> list[AuditRecord]:
        order = assessments.c.seq.desc() if newest_first else assessments.c.seq
        with self._engine.connect() as conn:
            rows = conn.execute(select(assessments).where(where).order_by(order).limit(limit)).mappings().all()
            ids = [r["assessment_id"] for r in rows]
            found: dict[str, list[OverrideRecord]] = {}
            for o in (
                conn.execute(
                    select(overrides).where(overrides.c.assessment_id.in_(ids)).order_by(overrides.c.seq)
                ).mappings()
                if ids
                else ()
            ):
                found.setdefault(o["assessment_id"], []).append(OverrideRecord(**o))
        return [AuditRecord(**r, overrides=tuple(found.get(r["assessment_id"], ()))) for r in rows]


#: For each chain, seq -> (record_hash, what signed it): the heads of signed checkpoints (serving.audit).
Expectations = Mapping[str, Mapping[int, tuple[str, str]]]
_FOLLOWS_KEPT = 4096  # recent links remembered to name an inserted record


def _walk(
    conn: Connection,
    chain: str,
    head: tuple[int, str] | None,
    expect: Mapping[int, tuple[str, str]],
    *,
    allow_newer: bool,
) -> tuple[int, str | None, str | None]:
    """Check one chain: (records checked, first broken, problem).

    ``expect`` holds signed heads (seq -> hash); records after the last one are accepted only with
    ``allow_newer`` (a running service appends after its latest checkpoint; a stopped one must not).
    """
    table, id_col = _CHAINS[chain]
    stmt = select(table).order_by(table.c.seq)
    beside = table is not assessments  # overrides and decision steps refer to an assessment
    if beside:
        stmt = (
            select(table, assessments.c.seq.label("_assessment_seq"))
            .outerjoin(assessments, table.c.assessment_id == assessments.c.assessment_id)
            .order_by(table.c.seq)
        )
    prev, n, names = GENESIS, 0, [str(c.name) for c in table.columns]  # str, not quoted_name: see recipe.record_hash
    follows: dict[str, str] = {}  # record hash -> id of the record linked after it
    unsigned: str | None = None  # first record after the last checkpoint that matched
    signed_to = 0
    # a signed head that does not match is reported after the walk, unless the walk finds the cause
    # on the way: a record inserted before it (the forged record is named, not the first unsigned one)
    pending: tuple[int, str | None, str] | None = None
    for row in conn.execute(stmt.execution_options(yield_per=1000)).mappings():
        rid, stored = row[id_col], {name: row[name] for name in names}
        if row["seq"] != n + 1:
            return pending or (n, rid, f"seq {n + 1} is missing before seq {row['seq']} (row deleted or inserted)")
        if row["prev_hash"] != prev:
            if row["prev_hash"] in follows:  # it links past the records before it: those were inserted
                forged = follows[row["prev_hash"]]
                return (
                    n,
                    forged,
                    (
                        f"record {forged} was inserted: the record after it ({rid}, seq {n + 1}) "
                        "links to the record before it"
                    ),
                )
            return pending or (
                n,
                rid,
                "prev_hash does not link to the record before (row deleted, inserted or reordered)",
            )
        if recipe.record_hash(stored) != row["record_hash"]:
            return pending or (n, rid, "content does not match record_hash (row edited)")
        if beside and row["_assessment_seq"] is None:
            return pending or (n, rid, f"its assessment {row['assessment_id']} is missing")
        follows[prev] = rid
        if len(follows) > _FOLLOWS_KEPT:
            del follows[next(iter(follows))]
        prev, n, unsigned = row["record_hash"], n + 1, unsigned or rid
        if n in expect and pending is None:
            signed_hash, signer = expect[n]
            if signed_hash != prev:
                pending = (
                    n,
                    unsigned,
                    (
                        f"records seq {signed_to + 1} to {n} were rewritten: {signer} signed "
                        f"record seq {n} as {signed_hash[:16]}..., the store has {prev[:16]}..."
                    ),
                )
            unsigned, signed_to = None, n
    if pending:
        return pending
    if head is None or tuple(head) != (n, prev):
        length = head[0] if head else 0
        return (
            n,
            f"{chain} seq {min(n, length) + 1}",
            (f"chain head records {length} rows, found {n} (rows deleted from the end or head altered)"),
        )
    last_signed = max(expect, default=0)
    if n < last_signed:
        return (
            n,
            f"{chain} seq {n + 1}",
            (
                f"{expect[last_signed][1]} signed {last_signed} records, the store has "
                f"{n} (records deleted from the end, head rewritten)"
            ),
        )
    if n > last_signed and expect and not allow_newer:
        return (
            n,
            unsigned,
            (
                f"{n - last_signed} record(s) after seq {last_signed} are not covered by "
                f"{expect[last_signed][1]} (appended after it)"
            ),
        )
    return n, None, None


def _verify_engine(engine: Engine, *, expect: Expectations, allow_newer: bool) -> VerifyResult:
    checked = 0
    with engine.connect() as conn:
        if engine.dialect.name != "sqlite":
            conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            heads = {c: (n, h) for c, n, h in conn.execute(select(chain_head))}
            for chain in _CHAINS:
                n, broken, problem = _walk(
                    conn, chain, heads.get(chain), expect.get(chain, {}), allow_newer=allow_newer
                )
                checked += n
                if problem:
                    logger.warning("audit chain broken at %s: %s", broken, problem)
                    return VerifyResult(False, checked, broken, f"{chain}: {problem}", heads)
    return VerifyResult(True, checked, heads=heads)


def verify_trail(url: str, *, expect: Expectations | None = None, allow_newer: bool = False) -> VerifyResult:
    """Verify the audit store at ``url`` without the service and without its secret (read only).

    Raises
    ------
    FileNotFoundError
        If ``url`` names a SQLite file that does not exist (nothing is created).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        raise FileNotFoundError(f"no audit store at {parsed.database}")
    engine = make_engine(url, create=False)
    try:
        return _verify_engine(engine, expect=expect or {}, allow_newer=allow_newer)
    finally:
        engine.dispose()


def read_head(url: str) -> dict[str, tuple[int, str]]:
    """Length and last hash of each chain of the store at ``url``, read only."""
    engine = make_engine(url, create=False)
    try:
        with engine.connect() as conn:
            return {c: (n, h) for c, n, h in conn.execute(select(chain_head))}
    finally:
        engine.dispose()


def _uuid_or_none(value: Any) -> str | None:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


def _secret_bytes(secret: bytes | str) -> bytes:
    if isinstance(secret, str):
        try:
            secret = bytes.fromhex(secret)
        except ValueError:
            raise ValueError(
                "a secret given as str must be hex (AuthConfig.audit_secret); pass bytes otherwise"
            ) from None
    if len(secret) < 16:
        raise ValueError("the audit secret must be at least 16 bytes")
    return secret
