"""Which stored assessments have matured by an as-of date: design.md's censoring rule with outcomes known only then."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import numpy as np
import pandas as pd

from features.labels import LabelStatus, label_assessments

MATURED = "matured"
IMMATURE = "immature"
NO_OUTCOME = "no_outcome"
#: every status an assessment can have on the as-of date
STATUSES = (MATURED, IMMATURE, LabelStatus.PRIOR_REOFFENCE, LabelStatus.PRIOR_REVOCATION, NO_OUTCOME)
OUTCOME_COLUMNS = ("person_key", "reoffence_date", "revocation_date", "followup_end")


def known_on(outcomes: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """The outcomes as they were known on ``as_of``: nothing dated on or after it, follow-up ending by it."""
    missing = [c for c in OUTCOME_COLUMNS if c not in outcomes.columns]
    if missing:
        raise ValueError(f"the outcomes lack the columns {missing}")
    day = pd.Timestamp(as_of)
    out = outcomes.loc[:, list(OUTCOME_COLUMNS)].copy()
    for col in OUTCOME_COLUMNS[1:]:
        out[col] = pd.to_datetime(out[col])
    if out["followup_end"].isna().any():
        first = out.loc[out["followup_end"].isna(), "person_key"].iloc[0]
        raise ValueError(f"outcome of person {first}: followup_end is missing")
    if out["person_key"].duplicated().any():
        first = out.loc[out["person_key"].duplicated(), "person_key"].iloc[0]
        raise ValueError(f"outcome of person {first}: given twice")
    for col in ("reoffence_date", "revocation_date"):
        out.loc[out[col] >= day, col] = pd.NaT
    out["followup_end"] = out["followup_end"].where(out["followup_end"] < day, day)
    return out


def maturity(
    assessments: pd.DataFrame,
    outcomes: pd.DataFrame,
    *,
    as_of: dt.date,
    horizons: Mapping[str, float],
) -> pd.DataFrame:
    """``label`` (1.0, 0.0, NaN unless matured) and ``status`` of each assessment (columns ``person_key``,
    ``stage``, ``as_of`` and, when the answers gave it, ``horizon_months``; else the stage's of ``horizons``) on the
    date ``as_of``.

    An assessment on date D at a stage of horizon H has *matured* when a re-offence dated in [D, D + H) was known
    before ``as_of`` (label 1), or follow-up known before ``as_of`` covers the whole horizon without one (label
    0). Otherwise it is *immature* (the censoring rule of design.md, "Outcome": left out and counted). One made
    after a re-offence or revocation is left out as in training, and one whose person has no outcome record is
    ``no_outcome``.
    """
    known = known_on(outcomes, as_of)
    status = pd.Series(NO_OUTCOME, index=assessments.index, dtype=object)
    label = pd.Series(np.nan, index=assessments.index)
    has = assessments["person_key"].isin(set(known["person_key"]))
    table = known.rename(columns={"person_key": "person_id"})
    given = assessments["horizon_months"] if "horizon_months" in assessments.columns else None
    for stage in assessments.loc[has, "stage"].unique():
        if (given is None or given[assessments["stage"] == stage].isna().any()) and stage not in horizons:
            raise ValueError(f"no horizon for the stage {stage!r}")
    months = assessments["stage"].map(horizons)
    if given is not None:
        months = given.fillna(months)
    for horizon, rows in assessments[has].groupby(months[has], sort=False):
        frame = pd.DataFrame({"person_id": rows["person_key"], "as_of": pd.to_datetime(rows["as_of"])})
        got = label_assessments(frame, table, horizon_months=float(horizon))
        status.loc[rows.index] = (
            got["status"].replace({LabelStatus.LABELLED: MATURED, LabelStatus.CENSORED: IMMATURE}).to_numpy()
        )
        label.loc[rows.index] = got["label"].to_numpy()
    return pd.DataFrame({"label": label, "status": status})
