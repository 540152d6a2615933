"""Labels of design.md's "Outcome" and the stage frame (features, label, metadata) used for training.

The label of an assessment on date D is "re-offended within H months after D" (re-offence dated
in ``[D, D + H)``). People whose follow-up after D is shorter than H and who have not re-offended
are censored: left out and counted. People who re-offended or were revoked before D were no longer
under assessment at D: left out and counted separately.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.pipeline import assessment_dates, build_features
from features.schema import CaseTables
from features.vocab import DEFAULT_HORIZON_MONTHS, Stage

log = logging.getLogger(__name__)

DAYS_PER_MONTH = 365.25 / 12
AGE_BANDS = [0, 25, 35, 50, 200]
AGE_BAND_LABELS = ["18-24", "25-34", "35-49", "50+"]
GROUP_COLUMNS = ["sex", "age_band", "local", "offence", "supervision_type"]


class LabelStatus:
    LABELLED = "labelled"
    CENSORED = "censored"
    PRIOR_REOFFENCE = "reoffended_before"
    PRIOR_REVOCATION = "revoked_before"


def horizon_delta(months: float) -> pd.Timedelta:
    """H months as a whole number of days (months of 365.25/12 days)."""
    return pd.Timedelta(days=round(months * DAYS_PER_MONTH))


def label_assessments(assessments: pd.DataFrame, outcomes: pd.DataFrame, *, horizon_months: float) -> pd.DataFrame:
    """``label`` (1.0, 0.0 or NaN when not labelled) and ``status`` of each assessment."""
    out = outcomes.set_index("person_id")
    ids = assessments["person_id"]
    d = pd.Series(assessments["as_of"].to_numpy(dtype="datetime64[ns]"), index=assessments.index)
    reoffence = pd.Series(ids.map(out["reoffence_date"]).to_numpy(dtype="datetime64[ns]"), index=assessments.index)
    revocation = pd.Series(ids.map(out["revocation_date"]).to_numpy(dtype="datetime64[ns]"), index=assessments.index)
    followup = pd.Series(ids.map(out["followup_end"]).to_numpy(dtype="datetime64[ns]"), index=assessments.index)
    end = d + horizon_delta(horizon_months)
    positive = (reoffence >= d) & (reoffence < end)
    status = np.select(
        [reoffence < d, revocation < d, ~positive & (followup < end)],
        [LabelStatus.PRIOR_REOFFENCE, LabelStatus.PRIOR_REVOCATION, LabelStatus.CENSORED],
        default=LabelStatus.LABELLED,
    )
    label = np.where(status == LabelStatus.LABELLED, positive.astype(float), np.nan)
    return pd.DataFrame({"label": label, "status": status}, index=assessments.index)


@dataclass
class StageFrame:
    """Features, labels and metadata of one stage's labelled assessments."""

    stage: Stage
    X: pd.DataFrame
    y: np.ndarray
    meta: pd.DataFrame
    horizon_months: float
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def label_rate(self) -> float:
        return float(self.y.mean()) if len(self.y) else float("nan")

    def subset(self, mask: np.ndarray) -> StageFrame:
        return StageFrame(
            self.stage, self.X[mask], self.y[mask], self.meta[mask], self.horizon_months, dict(self.counts)
        )

    def summary(self) -> dict[str, float | int | str]:
        return {
            "stage": self.stage.value,
            "horizon_months": self.horizon_months,
            **self.counts,
            "label_rate": round(self.label_rate, 4),
        }


def group_frame(persons: pd.DataFrame, assessments: pd.DataFrame, X: pd.DataFrame) -> pd.DataFrame:
    """Columns for fairness reports and splits: groups, supervision start, assessment date."""
    p = persons.set_index("person_id").loc[assessments["person_id"]]
    meta = pd.DataFrame(
        {
            "person_id": assessments["person_id"].to_numpy(),
            "as_of": assessments["as_of"].to_numpy(),
            "supervision_start": p["supervision_start"].to_numpy(),
            "sex": p["sex"].astype(str).to_numpy(),
            "age_band": pd.cut(X["age"].to_numpy(), AGE_BANDS, right=False, labels=AGE_BAND_LABELS).astype(str),
            "local": np.where(p["local"].to_numpy(dtype=bool), "local", "non-local"),
            "offence": p["offence"].astype(str).to_numpy(),
            "supervision_type": p["supervision_type"].astype(str).to_numpy(),
        },
        index=assessments.index,
    )
    return meta


def _oracle(truth: pd.DataFrame | None, stage: Stage, horizon: float) -> pd.Series | None:
    """The synthetic oracle of ``stage`` by person id, when it was written for ``horizon`` months."""
    if truth is None or f"p_{stage.value}" not in truth:
        return None
    written_for = truth.attrs.get("horizon_months", {}).get(stage.value, DEFAULT_HORIZON_MONTHS[stage])
    if float(written_for) != float(horizon):
        log.warning(
            "no oracle for the %s stage at %g months: the cohort's oracle is for %g months",
            stage.value,
            horizon,
            written_for,
        )
        return None
    return truth.set_index("person_id")[f"p_{stage.value}"]


def make_stage_frame(tables: CaseTables, stage: Stage | str, *, horizon_months: float | None = None) -> StageFrame:
    """The labelled assessments of ``stage``: features, label, groups and (synthetic data) the oracle."""
    stage = Stage(stage)
    horizon = DEFAULT_HORIZON_MONTHS[stage] if horizon_months is None else horizon_months
    if tables.outcomes is None:
        raise ValueError("make_stage_frame needs the outcomes table")
    assessments = assessment_dates(tables.persons, stage)
    labels = label_assessments(assessments, tables.outcomes, horizon_months=horizon)
    keep = labels["status"].to_numpy() == LabelStatus.LABELLED
    kept = assessments[keep].reset_index(drop=True)
    X = build_features(tables.persons, tables.events, kept, stage=stage)
    meta = group_frame(tables.persons, kept, X)
    oracle = _oracle(tables.extra.get("truth"), stage, horizon)
    if oracle is not None:
        meta["oracle"] = kept["person_id"].map(oracle).to_numpy()
    counts = {"assessments": len(assessments), "labelled": int(keep.sum())}
    for status in (LabelStatus.CENSORED, LabelStatus.PRIOR_REOFFENCE, LabelStatus.PRIOR_REVOCATION):
        counts[status] = int((labels["status"] == status).sum())
    return StageFrame(stage, X, labels["label"].to_numpy()[keep].astype(int), meta, horizon, counts)
