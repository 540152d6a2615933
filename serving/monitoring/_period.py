"""A period's stored assessments read back for the monitor: one :class:`~evaluation.monitoring.PeriodRows` per model
version, with the cut-offs its answers were given with."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from evaluation.monitoring import (
    MonitorConfig,
    MonitorReport,
    PeriodRows,
    ProfileError,
    ReferenceProfile,
    band_reference_shares,
    monitor,
)
from features.vocab import Stage
from models.tier_policy import Band, TierPolicy
from serving.audit import AuditRecord, AuditStore
from serving.cases import ReviewPolicy
from serving.scoring import answer_tier_by_risk

#: assessment ids looked up at once for the decisions recorded beside them
ID_BATCH = 2000

#: a model version's reference profile by registered name and version (raises LookupError when there is none)
ProfileSource = Callable[[str, str], ReferenceProfile]


class MonitorError(ValueError):
    """A period that cannot be monitored (no profile for its model, a stored record that does not read): named."""


@dataclass
class _Collected:
    """One model version's assessments of the period, as read."""

    model_name: str
    model_version: str
    features: list[dict[str, Any]] = field(default_factory=list)
    probability: list[float] = field(default_factory=list)
    band: list[str] = field(default_factory=list)
    tier: list[str] = field(default_factory=list)
    tier_by_risk: list[str] = field(default_factory=list)
    alert: list[str] = field(default_factory=list)
    decided: list[bool] = field(default_factory=list)
    cutoffs: tuple[float, float] | None = None


def period_bounds(since: dt.date, until: dt.date | None) -> tuple[str, str]:
    """The period's bounds as the store compares them: ``since`` included, the day ``until`` excluded (default:
    tomorrow, so today counts)."""
    end = until or dt.date.today() + dt.timedelta(days=1)
    if end <= since:
        raise MonitorError(f"the period is empty: --until {end} is not after --since {since}")
    return since.isoformat(), end.isoformat()


def _decided(store: AuditStore, records: list[AuditRecord]) -> list[bool]:
    steps = store.steps_beside([r.assessment_id for r in records])
    return [bool(r.overrides) or r.assessment_id in steps for r in records]


def _batches(records: Iterable[AuditRecord]) -> Iterator[list[AuditRecord]]:
    batch: list[AuditRecord] = []
    for record in records:
        batch.append(record)
        if len(batch) == ID_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def read_period(
    store: AuditStore,
    *,
    stage: Stage,
    since: str,
    until: str,
    tiers: TierPolicy,
    review: ReviewPolicy,
) -> dict[tuple[str, str], _Collected]:
    """The period's formal assessments of ``stage`` by (model name, version), oldest first.

    The alert is the review policy's colour of each answer (its band, the rule that set its tier, and the rise
    since the same person's previous assessment in the period). Raises :class:`MonitorError` naming the
    assessment and field of a stored record that does not read.
    """
    found: dict[tuple[str, str], _Collected] = {}
    last: dict[str, float] = {}
    for batch in _batches(store.iter_assessments(since=since, until=until, stage=stage.value)):
        for record, decided in zip(batch, _decided(store, batch), strict=True):
            key = (record.model_name, record.model_version)
            into = found.setdefault(key, _Collected(*key))
            try:
                _add(into, record, decided, tiers=tiers, review=review, last=last)
            except (KeyError, TypeError, ValueError) as exc:
                raise MonitorError(
                    f"assessment {record.assessment_id} (seq {record.seq}): a stored field does not read: "
                    f"{type(exc).__name__}: {exc}"
                ) from None
    return found


def _add(
    into: _Collected,
    record: AuditRecord,
    decided: bool,
    *,
    tiers: TierPolicy,
    review: ReviewPolicy,
    last: dict[str, float],
) -> None:
    answer, explanation = record.response, record.explanation
    probability = float(answer["probability"])
    band = str(answer["band"]["code"])
    tier = answer["tier"]
    rule_id = tier.get("rule_id") if tier.get("basis") == "rule" else None
    previous = last.get(record.person_key)
    colour = review.alert(band=Band(band), rule_id=rule_id, rise=None if previous is None else probability - previous)
    last[record.person_key] = probability
    into.features.append(explanation["features"])
    into.probability.append(probability)
    into.band.append(band)
    into.tier.append(str(tier["tier"]["code"]))
    into.tier_by_risk.append(answer_tier_by_risk(answer, tiers))
    into.alert.append(colour.value)
    into.decided.append(decided)
    cut = answer["band_cutoffs"]
    into.cutoffs = (float(cut["medium_from"]["probability"]), float(cut["high_from"]["probability"]))


def monitor_period(
    store: AuditStore,
    *,
    stage: Stage,
    since: str,
    until: str,
    profiles: ProfileSource,
    config: MonitorConfig,
    tiers: TierPolicy,
    review: ReviewPolicy,
) -> list[MonitorReport]:
    """One :class:`~evaluation.monitoring.MonitorReport` per model version that answered ``stage`` in the
    period, each against its own reference profile (under the cut-offs of its latest answer).

    Raises
    ------
    MonitorError
        A model version without a reference profile (trained before profiles were kept), or a stored record
        that does not read.
    """
    reports = []
    for (name, version), got in read_period(
        store, stage=stage, since=since, until=until, tiers=tiers, review=review
    ).items():
        try:
            profile = profiles(name, version)
        except (LookupError, ProfileError) as exc:
            raise MonitorError(f"{name} version {version}: no reference profile to compare with: {exc}") from None
        frame = pd.DataFrame.from_records(got.features, columns=profile.names)
        period = PeriodRows(
            frame,
            np.asarray(got.probability, dtype=float),
            {
                "band": np.asarray(got.band, dtype=object),
                "tier_by_risk": np.asarray(got.tier_by_risk, dtype=object),
                "tier": np.asarray(got.tier, dtype=object),
                "alert": np.asarray(got.alert, dtype=object),
            },
            np.asarray(got.decided, dtype=bool),
        )
        reference: dict[str, dict[str, float]] = {}
        if got.cutoffs is not None:
            bands = band_reference_shares(profile, medium_from=got.cutoffs[0], high_from=got.cutoffs[1])
            reference["band"] = bands
            by_risk: dict[str, float] = {}
            for band, share in bands.items():
                tier = tiers.tier_by_risk(stage, band).value
                by_risk[tier] = by_risk.get(tier, 0.0) + share
            reference["tier_by_risk"] = by_risk
        reports.append(
            monitor(
                profile,
                period,
                config=config,
                reference_shares=reference,
                model=f"{name} version {version}",
                since=since,
                until=until,
            )
        )
    return reports
