"""Revalidation from what the service stored: formal assessments and approved decisions from the audit trail,
outcomes from the case store (or canonical tables), review-meeting scores told apart by the case store's index."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evaluation.revalidation import RevalidationReport, revalidate
from features.labels import AGE_BAND_LABELS, AGE_BANDS
from features.vocab import DEFAULT_HORIZON_MONTHS, Stage
from serving.audit import AuditRecord, AuditStore
from serving.monitoring._period import MonitorError
from serving.settings import ServiceSettings

BATCH = 2000
#: the report's file in each as-of folder
REPORT_FILE = "revalidation.json"


def revalidation_dir(settings: ServiceSettings) -> Path:
    """Where ``riskctl revalidate`` writes its reports, one folder per as-of date (the console reads them there)."""
    return settings.home / "revalidation"


def revalidation_dates(settings: ServiceSettings) -> list[dt.date]:
    """The as-of dates of the stored revalidation reports, newest first."""
    found = []
    for folder in revalidation_dir(settings).glob("*"):
        try:
            day = dt.date.fromisoformat(folder.name)
        except ValueError:
            continue
        if (folder / REPORT_FILE).is_file():
            found.append(day)
    return sorted(found, reverse=True)


def stored_revalidation(settings: ServiceSettings, as_of: dt.date) -> dict[str, Any] | None:
    """The stored report (:func:`evaluation.revalidation.report_record`) of one as-of date, or None."""
    path = revalidation_dir(settings) / as_of.isoformat() / REPORT_FILE
    if not path.is_file():
        return None
    record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return record


def _batches(records: Iterable[AuditRecord]) -> Iterator[list[AuditRecord]]:
    batch: list[AuditRecord] = []
    for record in records:
        batch.append(record)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _row(record: AuditRecord, review_ids: set[str]) -> dict[str, Any]:
    # the age as the features compute it (features.pipeline: days since birth / 365.25 at the assessment date),
    # from the stored request: reading the explanation only for it would double the cost of reading the trail
    answer, person = record.response, record.request["person"]
    tier = answer.get("tier") or {}
    return {
        "assessment_id": record.assessment_id,
        "person_key": record.person_key,
        "stage": record.stage,
        "model_version": record.model_version,
        "policy_version": record.policy_version,
        "as_of": answer["as_of"],
        "probability": float(answer["probability"]),
        "horizon_months": float(answer.get("horizon_months") or DEFAULT_HORIZON_MONTHS[Stage(record.stage)]),
        "band": str(answer["band"]["code"]),
        "tier_by_risk": str((tier.get("tier_by_risk") or {}).get("code") or ""),
        "kind": "review" if record.assessment_id in review_ids else "formal",
        "sex": person.get("sex"),
        "local": person.get("local"),
        "offence": person.get("offence"),
        "birth_date": person.get("birth_date"),
    }


def stored_assessments(
    store: AuditStore, *, until: str | None, review_ids: set[str], stage: Stage | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The stored assessments (created before ``until``, when given; one row each, groups from the stored
    record) and the approved tier decisions recorded beside them (``assessment_id``, ``to_tier``,
    ``reason_code``; the last approved one when there are several).

    Raises :class:`MonitorError` naming the assessment of a stored record that does not read.
    """
    rows, decisions = [], []
    for batch in _batches(store.iter_assessments(until=until, stage=None if stage is None else stage.value)):
        steps = store.steps_beside([r.assessment_id for r in batch])
        for record in batch:
            try:
                rows.append(_row(record, review_ids))
            except (KeyError, TypeError, ValueError) as exc:
                raise MonitorError(
                    f"assessment {record.assessment_id} (seq {record.seq}): a stored field does not read: "
                    f"{type(exc).__name__}: {exc}"
                ) from None
            approved = [s for s in steps.get(record.assessment_id, []) if s.step == "approved"]
            if approved:
                last = approved[-1]
                decisions.append(
                    {"assessment_id": record.assessment_id, "to_tier": last.to_tier, "reason_code": last.reason_code}
                )
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["as_of"] = pd.to_datetime(frame["as_of"])
        born = pd.to_datetime(frame.pop("birth_date"), errors="coerce")
        age = ((frame["as_of"] - born) / pd.Timedelta(days=1) / 365.25).to_numpy(dtype=float)
        frame["age_band"] = pd.cut(age, AGE_BANDS, right=False, labels=AGE_BAND_LABELS).astype(str)
    return frame, pd.DataFrame(decisions, columns=["assessment_id", "to_tier", "reason_code"])


def keyed_outcomes(store: AuditStore, outcomes: pd.DataFrame) -> pd.DataFrame:
    """Canonical outcomes (by raw ``person_id``) keyed as the audit trail keys persons (``person_key``)."""
    missing = [c for c in ("person_id", "reoffence_date", "revocation_date", "followup_end") if c not in outcomes]
    if missing:
        raise MonitorError(f"the outcomes lack the columns {missing}")
    keys = np.array([store.person_key(str(p)) for p in outcomes["person_id"]], dtype=object)
    return outcomes.drop(columns="person_id").assign(person_key=keys)


def revalidate_stored(
    store: AuditStore,
    outcomes: pd.DataFrame,
    *,
    as_of: dt.date,
    review_ids: set[str],
    stage: Stage | None = None,
    horizons: Mapping[str, float] | None = None,
) -> RevalidationReport:
    """:func:`evaluation.revalidation.revalidate` of every stored assessment dated before ``as_of`` (of one stage)
    on the canonical ``outcomes`` as known on that date (those dated later are counted in a note)."""
    rows, decisions = stored_assessments(store, until=None, review_ids=review_ids, stage=stage)
    later = 0
    if not rows.empty:
        dated_before = rows["as_of"] < pd.Timestamp(as_of)
        later, rows = int((~dated_before).sum()), rows[dated_before].reset_index(drop=True)
    if rows.empty:
        raise MonitorError(f"no assessment stored that is dated before {as_of}")
    try:
        report = revalidate(
            rows,
            keyed_outcomes(store, outcomes),
            as_of=as_of,
            horizons=horizons or {s.value: float(m) for s, m in DEFAULT_HORIZON_MONTHS.items()},
            decisions=decisions,
        )
    except ValueError as exc:
        raise MonitorError(str(exc)) from None
    if later:
        report.notes.append(f"{later} stored assessments dated on or after {as_of} are not counted")
    return report
