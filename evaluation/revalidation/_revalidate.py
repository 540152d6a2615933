"""The annual revalidation: the stored assessments whose outcomes have matured, judged as the model card judges."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from evaluation._group_calibration import CalibrationRule, GroupCalibration, group_calibration
from evaluation._metrics import brier, roc_auc
from evaluation.revalidation._maturity import MATURED, STATUSES, maturity

#: what each stored assessment must say (``kind``: ``formal`` or ``review``)
ROW_COLUMNS = (
    "assessment_id",
    "person_key",
    "stage",
    "model_version",
    "policy_version",
    "as_of",
    "probability",
    "band",
    "tier_by_risk",
    "kind",
)
#: the groupings of calibration within groups (design.md, "Protected attributes")
GROUPINGS = ("sex", "local", "age_band", "offence")
KEYS = ["stage", "model_version", "policy_version"]
#: a change of risk between two assessments smaller than this (probability) is "about the same"
SAME_RISK = 0.01


@dataclass
class RevalidationReport:
    """Every table of one revalidation (see :func:`revalidate`)."""

    as_of: dt.date
    counts: pd.DataFrame
    performance: pd.DataFrame
    bands: pd.DataFrame
    groups: dict[tuple[str, str, str], GroupCalibration]
    change: pd.DataFrame
    overrides: pd.DataFrame
    override_reasons: pd.DataFrame
    review: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def _figures(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    observed, expected = float(y.sum()), float(p.sum())
    return {
        "n": float(len(y)),
        "observed": observed,
        "expected": expected,
        "observed_rate": observed / len(y) if len(y) else float("nan"),
        "oe_ratio": observed / expected if expected > 0 else float("nan"),
    }


def _named(keys: list[str], values: object) -> dict[str, object]:
    """A groupby key (a tuple, or one value) by column name."""
    parts = values if isinstance(values, tuple) else (values,)
    return dict(zip(keys, parts, strict=True))


def _performance(rows: pd.DataFrame) -> pd.DataFrame:
    out: list[dict[str, object]] = []
    for key, part in rows.groupby(KEYS, sort=True):
        y, p = part["label"].to_numpy(dtype=int), part["probability"].to_numpy(dtype=float)
        out.append({**_named(KEYS, key), **_figures(y, p), "roc_auc": roc_auc(y, p), "brier": brier(y, p)})
    columns = [*KEYS, "n", "observed", "expected", "observed_rate", "oe_ratio", "roc_auc", "brier"]
    return pd.DataFrame(out, columns=columns)


def _bands(rows: pd.DataFrame) -> pd.DataFrame:
    out: list[dict[str, object]] = []
    for key, part in rows.groupby([*KEYS, "band"], sort=True):
        y, p = part["label"].to_numpy(dtype=int), part["probability"].to_numpy(dtype=float)
        out.append({**_named([*KEYS, "band"], key), **_figures(y, p)})
    return pd.DataFrame(out, columns=[*KEYS, "band", "n", "observed", "expected", "observed_rate", "oe_ratio"])


def _change(rows: pd.DataFrame) -> pd.DataFrame:
    """Consecutive matured formal assessments of one person: did the outcome follow the later risk?"""
    ordered = rows.sort_values(["person_key", "as_of"], kind="stable")
    same = ordered["person_key"].eq(ordered["person_key"].shift())
    before = ordered["probability"].shift()
    later = ordered[same.to_numpy()].assign(before=before[same.to_numpy()])
    delta = later["probability"] - later["before"]
    later = later.assign(
        direction=np.select([delta > SAME_RISK, delta < -SAME_RISK], ["rose", "fell"], "about the same")
    )
    out: list[dict[str, object]] = []
    for direction, part in later.groupby("direction", sort=True):
        y, p = part["label"].to_numpy(dtype=int), part["probability"].to_numpy(dtype=float)
        out.append(
            {
                "direction": direction,
                **_figures(y, p),
                "mean_before": float(part["before"].mean()),
                "mean_after": float(p.mean()),
            }
        )
    return pd.DataFrame(
        out,
        columns=["direction", "n", "observed", "expected", "observed_rate", "oe_ratio", "mean_before", "mean_after"],
    )


def override_kind(tier_by_risk: pd.Series, decided_tier: pd.Series) -> pd.Series:
    """``raised`` (the approved tier is stricter than the tier by risk), ``lowered``, ``followed`` (the same), or
    ``no decision`` (no approved decision beside the assessment)."""
    kind = np.select(
        [decided_tier.isna(), decided_tier == tier_by_risk, decided_tier == "strict"],
        ["no decision", "followed", "raised"],
        "lowered",
    )
    return pd.Series(kind, index=tier_by_risk.index)


def _overrides(rows: pd.DataFrame, decisions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    approved = decisions.drop_duplicates("assessment_id", keep="last").set_index("assessment_id")
    decided = rows["assessment_id"].map(approved["to_tier"])
    reason = rows["assessment_id"].map(approved["reason_code"]).astype(object).fillna("")
    kinds = override_kind(rows["tier_by_risk"], decided)
    with_kind = rows.assign(override=kinds.to_numpy(), reason_code=reason.to_numpy())
    tables = []
    for keys in (["override"], ["override", "reason_code"]):
        out: list[dict[str, object]] = []
        for key, part in with_kind.groupby(keys, sort=True):
            y, p = part["label"].to_numpy(dtype=int), part["probability"].to_numpy(dtype=float)
            out.append({**_named(keys, key), **_figures(y, p)})
        tables.append(pd.DataFrame(out, columns=[*keys, "n", "observed", "expected", "observed_rate", "oe_ratio"]))
    by_reason = tables[1][tables[1]["override"] != "no decision"].reset_index(drop=True)
    return tables[0], by_reason


def revalidate(
    rows: pd.DataFrame,
    outcomes: pd.DataFrame,
    *,
    as_of: dt.date,
    horizons: Mapping[str, float],
    decisions: pd.DataFrame | None = None,
    rule: CalibrationRule | None = None,
) -> RevalidationReport:
    """Revalidate the stored assessments ``rows`` (columns :data:`ROW_COLUMNS`, and the group columns
    :data:`GROUPINGS` where known) on the ``outcomes`` (``person_key``, ``reoffence_date``, ``revocation_date``,
    ``followup_end``) known on ``as_of``.

    Only formal assessments whose whole horizon has passed count (:func:`maturity`); the others are counted per
    stage and status. Review-meeting scores are judged apart (``review``), never with the formal ones. Per stage,
    model version and policy version: AUC, Brier, observed/expected overall and per band, calibration within
    groups with bootstrap intervals (:func:`evaluation.group_calibration`). Across assessments of one person:
    whether the outcome followed the later risk (``change``). With ``decisions`` (approved tier decisions:
    ``assessment_id``, ``to_tier``, ``reason_code``), the override analysis: outcome rates where the approved
    tier departed from the tier by risk (raised, lowered), where it followed it and where nothing was decided,
    and by reason code.

    Raises
    ------
    ValueError
        A row or outcome that lacks a column (named), or a stage without a horizon.
    """
    missing = [c for c in ROW_COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"the assessments lack the columns {missing}")
    state = maturity(rows, outcomes, as_of=as_of, horizons=horizons)
    rows = rows.assign(label=state["label"].to_numpy(), status=state["status"].to_numpy())
    counts = (
        rows.groupby(["kind", "stage", "status"])
        .size()
        .unstack("status", fill_value=0)
        .reindex(columns=list(STATUSES), fill_value=0)
    ).reset_index()
    matured = rows[rows["status"] == MATURED]
    formal, review = matured[matured["kind"] == "formal"], matured[matured["kind"] == "review"]
    rule = rule or CalibrationRule()
    groups: dict[tuple[str, str, str], GroupCalibration] = {}
    for (stage, version, policy), part in formal.groupby(KEYS, sort=True):
        present = [g for g in GROUPINGS if g in part.columns]
        groups[(str(stage), str(version), str(policy))] = group_calibration(
            part["label"].to_numpy(dtype=int),
            part["probability"].to_numpy(dtype=float),
            groups=part[present].reset_index(drop=True),
            rule=rule,
        )
    empty = pd.DataFrame(columns=["assessment_id", "to_tier", "reason_code"])
    overrides, by_reason = _overrides(formal, empty if decisions is None else decisions)
    notes = []
    if formal.empty:
        notes.append(f"no formal assessment has matured by {as_of}: nothing to judge yet")
    return RevalidationReport(
        as_of,
        counts,
        _performance(formal),
        _bands(formal),
        groups,
        _change(formal),
        overrides,
        by_reason,
        _performance(review),
        notes,
    )
