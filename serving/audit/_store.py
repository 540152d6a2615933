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
import logging
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, inspect, or_, select, text, true, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError

from features.vocab import Stage, Tier
from serving.audit import recipe
from serving.audit._chain import Expectations, verify_engine
from serving.audit._cipher import ENCRYPTED_COLUMNS, RecordCipher
from serving.audit._records import (
    AuditRecord,
    CaseEventRecord,
    DecisionStepRecord,
    ModelEventRecord,
    OverrideRecord,
    VerifyResult,
)
from serving.audit._signing import Signer, record_signature_holds
from serving.audit._tables import (
    CASE_EVENTS,
    CHAINS,
    DECISION_STEPS,
    GENESIS,
    MODEL_EVENTS,
    OPTIONAL_FIELDS,
    RECORD_FIELDS,
    assessments,
    case_events,
    chain_head,
    decision_steps,
    metadata,
    model_events,
    overrides,
)
from serving.storage import make_engine

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 30
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


class AuditStore:
    """Append-only, hash-chained store of assessments and overrides.

    Parameters
    ----------
    url
        SQLAlchemy URL: ``sqlite:///path/audit.db`` (WAL mode) or ``postgresql+psycopg://...``.
    secret
        Key of the HMAC of person ids: bytes, or a hex string (``AuthConfig.audit_secret``);
        at least 16 bytes. Keep it: a new secret makes earlier records unreachable by person.
    signer
        Signs each record as it is written (:class:`serving.audit.LocalSigner`, :class:`serving.audit.SignerClient`);
        the service always has one. Without it records are stored unsigned, and a verification with the
        key refuses them after the latest checkpoint (tools that only read need none).
    cipher
        Encrypts the stored request, answer and explanation at rest (:class:`serving.audit.RecordCipher`,
        a key the database does not hold); records read back are decrypted. None: stored as JSON text.
    """

    def __init__(
        self, url: str, *, secret: bytes | str, signer: Signer | None = None, cipher: RecordCipher | None = None
    ) -> None:
        self._key = _secret_bytes(secret)
        self.signer = signer
        self.cipher = cipher
        self._engine = make_engine(url)
        self._sqlite = self._engine.dialect.name == "sqlite"
        with _LOCKS_GUARD:
            self._lock = _LOCKS.setdefault(url, threading.Lock())
        for attempt in (1, 2):  # workers starting at once: the loser retries and finds it all done
            try:
                with self._write() as conn:
                    metadata.create_all(conn)
                    _add_signature_columns(conn)
                    have = set(conn.execute(select(chain_head.c.chain)).scalars())
                    for chain in CHAINS.keys() - have:
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
        request: dict[str, Any],
        response: dict[str, Any],
        explanation: dict[str, Any] | None = None,
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

    def append_many(self, records: list[dict[str, Any]]) -> list[AuditRecord]:
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
        if step not in DECISION_STEPS:
            raise ValueError(f"unknown decision step {step!r}; known: {list(DECISION_STEPS)}")
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

    def add_model_event(
        self,
        *,
        event: str,
        stage: str,
        model_name: str,
        model_version: str,
        reason: str,
        detail: Mapping[str, Any],
        actor: str,
    ) -> ModelEventRecord:
        """Chain a decision about a model in service (``promotion_override``: a version promoted over the
        gate's refusal; ``detail`` holds the failed criteria and what it replaced).

        Raises
        ------
        ValueError
            If the event or stage is unknown, or the model, version, reason or actor is empty.
        """
        if event not in MODEL_EVENTS:
            raise ValueError(f"unknown model event {event!r}; known: {list(MODEL_EVENTS)}")
        fields = dict(
            event_id=str(uuid.uuid4()),
            event=event,
            stage=Stage(stage).value,
            model_name=str(model_name).strip(),
            model_version=str(model_version).strip(),
            reason=" ".join(str(reason or "").split()),
            detail_json=recipe.canonical_json(dict(detail)),
            actor=str(actor or "").strip(),
        )
        for name in ("model_name", "model_version", "reason", "actor"):
            if not fields[name]:
                raise ValueError(f"a model event needs a non-empty {name}")
        with self._write() as conn:
            row = self._chain_rows(conn, "models", [fields])[0]
            conn.execute(insert(model_events), [row])
        logger.info("model event %s: %s version %s by %s", event, model_name, model_version, actor)
        return ModelEventRecord(**row)

    def add_case_event(
        self, *, kind: str, office: str, person_id: str | None, detail: Mapping[str, Any], actor: str
    ) -> CaseEventRecord:
        """Chain what a user wrote into the case store: ``event_recorded`` (one event of a person; ``detail``
        holds its date, type, value and the case store's event id) or ``import`` (an export; ``detail`` holds
        each file's SHA-256 and the counts). The person is stored by key only.

        Raises
        ------
        ValueError
            If the kind is unknown or the actor is empty.
        """
        if kind not in CASE_EVENTS:
            raise ValueError(f"unknown case event {kind!r}; known: {list(CASE_EVENTS)}")
        if not str(actor or "").strip():
            raise ValueError("a case event needs the actor who recorded it")
        fields = dict(
            event_id=str(uuid.uuid4()),
            kind=kind,
            office=str(office or ""),
            person_key=self.person_key(person_id) if person_id is not None else "",
            detail_json=recipe.canonical_keyed(dict(detail), self.person_key),
            actor=str(actor).strip(),
        )
        with self._write() as conn:
            row = self._chain_rows(conn, "cases", [fields])[0]
            conn.execute(insert(case_events), [row])
        logger.info("case event %s by %s", kind, actor)
        return CaseEventRecord(**row)

    def case_events(
        self,
        *,
        person_id: str | None = None,
        kind: str | None = None,
        before_seq: int | None = None,
        limit: int | None = 200,
    ) -> list[CaseEventRecord]:
        """Stored case events, newest first (of one person, or one kind; older than ``before_seq``; ``limit``
        None: all)."""
        stmt = select(case_events).order_by(case_events.c.seq.desc()).limit(limit)
        if before_seq is not None:
            stmt = stmt.where(case_events.c.seq < before_seq)
        if person_id is not None:
            stmt = stmt.where(case_events.c.person_key == self.person_key(person_id))
        if kind is not None:
            stmt = stmt.where(case_events.c.kind == kind)
        with self._engine.connect() as conn:
            return [CaseEventRecord(**r) for r in conn.execute(stmt).mappings().all()]

    def is_authentic(self, chain: str, record: Any) -> bool:
        """True if ``record`` (as read back from ``chain``) hashes to its stored hash and carries the signature
        of this store's signer: written by the service, not by someone with write access to the database."""
        if self.signer is None:
            return False
        table, _ = CHAINS[chain]
        stored = {c.name: getattr(record, c.name) for c in table.c if c.name not in recipe.UNHASHED}
        return recipe.stored_hash(stored) == record.record_hash and record_signature_holds(
            self.signer.public_key(), chain, record.seq, record.record_hash, record.record_sig
        )

    def all_decision_steps(self) -> list[DecisionStepRecord]:
        """Every stored decision step, oldest first (to reconcile the case store with the trail)."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(decision_steps).order_by(decision_steps.c.seq)).mappings().all()
        return [DecisionStepRecord(**r) for r in rows]

    def model_events(self, model_name: str | None = None) -> list[ModelEventRecord]:
        """The stored model events (of one registered model), oldest first."""
        stmt = select(model_events).order_by(model_events.c.seq)
        if model_name is not None:
            stmt = stmt.where(model_events.c.model_name == model_name)
        with self._engine.connect() as conn:
            return [ModelEventRecord(**r) for r in conn.execute(stmt).mappings().all()]

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

    def iter_assessments(
        self, *, since: str | None = None, until: str | None = None, stage: str | None = None, batch: int = 2000
    ) -> Iterator[AuditRecord]:
        """Stored assessments created on or after ``since`` and before ``until`` (ISO dates or times, UTC; of one
        stage), oldest first, with their overrides: read ``batch`` records per query in ``seq`` order, so a period
        of a hundred thousand is never held as one result (the monitor, revalidation and shadow replay)."""
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        where = []
        if since:
            where.append(assessments.c.created_at >= since)
        if until:
            where.append(assessments.c.created_at < until)
        if stage:
            where.append(assessments.c.stage == Stage(stage).value)
        after = 0
        while True:
            found = self._load(and_(assessments.c.seq > after, *where), limit=batch)
            yield from found
            if len(found) < batch:
                return
            after = found[-1].seq

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

    def verify(
        self, *, expect: Expectations | None = None, allow_newer: bool = True, since: Mapping[str, int] | None = None
    ) -> VerifyResult:
        """Walk every chain in one consistent snapshot and report the first break (serving.audit._chain).

        ``expect`` holds what signed checkpoints say and the key of the record signatures: a record whose
        hash differs from a signed one (named by its signature), fewer records than signed, a record after
        the latest checkpoint that the signer did not sign, or (without ``allow_newer``) any record after
        it, is a break. ``since``: per chain, a signed seq to start after (the check before signing).
        """
        return verify_engine(self._engine, expect=expect, allow_newer=allow_newer, since=since)

    # ------------------------------------------------------------------ internals
    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A serialised write transaction (process lock + BEGIN IMMEDIATE / FOR UPDATE)."""
        with self._lock, self._engine.connect() as conn:
            conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn

    def _prepare(self, i: int, rec: Mapping[str, Any]) -> dict[str, Any]:
        rec = {**OPTIONAL_FIELDS, **rec}
        if set(rec) != RECORD_FIELDS:
            raise ValueError(
                f"record {i}: missing {sorted(RECORD_FIELDS - set(rec))}, unknown {sorted(set(rec) - RECORD_FIELDS)}"
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

        texts = {
            "request_json": recipe.canonical_keyed(rec["request"], key_of),
            "response_json": recipe.answer_keyed(rec["response"], key_of),
            "explanation_json": recipe.canonical_keyed(rec["explanation"], key_of),
        }
        if self.cipher is not None:
            texts = {column: self.cipher.encrypt(column, value) for column, value in texts.items()}
        return dict(
            assessment_id=str(uuid.UUID(str(rec["assessment_id"]))),
            person_key=key_of(rec["person_id"]),
            stage=Stage(rec["stage"]).value,
            model_name=str(rec["model_name"]),
            model_version=str(rec["model_version"]),
            policy_version=str(rec["policy_version"]),
            **texts,
            actor=str(rec["actor"] or ""),
        )

    def _chain_rows(self, conn: Connection, chain: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Give ``items`` their seq, created_at, hashes and signatures, and advance the chain head."""
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
        signatures = (
            self.signer.sign_records(chain, [(r["seq"], r["record_hash"]) for r in rows])
            if self.signer is not None
            else [None] * len(rows)
        )
        for row, signature in zip(rows, signatures, strict=True):
            row["record_sig"] = signature
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
        return [AuditRecord(**self._plain(r), overrides=tuple(found.get(r["assessment_id"], ()))) for r in rows]

    def _plain(self, row: Any) -> dict[str, Any]:
        """A stored assessment row with its encrypted columns decrypted (as is without a cipher)."""
        plain = dict(row)
        if self.cipher is not None:
            for column in ENCRYPTED_COLUMNS:
                plain[column] = self.cipher.decrypt(column, plain[column])
        return plain


def _add_signature_columns(conn: Connection) -> None:
    """Give the chain tables of a trail written before record signatures their ``record_sig`` column
    (its earlier records stay unsigned: only checkpoints vouch for them)."""
    inspector = inspect(conn)
    for table, _ in CHAINS.values():
        if "record_sig" not in {c["name"] for c in inspector.get_columns(table.name)}:
            conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN record_sig VARCHAR(100)"))
            logger.info("audit table %s: column record_sig added (earlier records unsigned)", table.name)


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
