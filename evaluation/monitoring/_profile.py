"""The reference profile: what the monitor compares a period's assessments with, kept with the model at training.

A profile holds, for each model input, the bins of its training values and the share of rows in each bin
(numeric inputs: cut at the deciles of the non-missing values, plus a bin of missing values; categorical
inputs: one bin per category seen, one for a category not seen in training and one for missing), the same
for the calibrated probability, the probability's distribution on a fine grid (so the band shares of any
cut-offs can be read from it), and the figures of the training rows the monitor's estimates are read
against (base rate, realised AUC and Brier, and their label-free estimates). It is a plain record
(:meth:`ReferenceProfile.record`, JSON) so that the model file carries it without this module's classes.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from evaluation._checks import check_binary_inputs
from evaluation._metrics import brier, roc_auc
from evaluation.monitoring._cbpe import estimate_performance

#: version of the profile record; a record of another version is refused with what to do
PROFILE_VERSION = 1
#: quantile bins of a numeric input (at most; ties merge bins)
NUMERIC_BINS = 10
#: points of the probability's distribution kept (share of rows at or above each level)
RISK_GRID = 1000
#: name of the calibrated probability in the profile's bins
SCORE = "score"
OTHER = "(other)"
MISSING = "(missing)"

FeatureKind = Literal["numeric", "categorical"]


class ProfileError(ValueError):
    """A profile record that cannot be read, or rows that do not fit the profile (named)."""


@dataclass(frozen=True)
class FeatureProfile:
    """The bins of one input (or of the score) in the training rows and the share of rows in each.

    Numeric: bin ``k`` holds the values ``edges[k-1] < x <= edges[k]`` (the first from minus infinity, the last
    to plus infinity), then one bin of missing values. Categorical: one bin per category of ``categories``,
    then one of categories not seen in training (:data:`OTHER`), then one of missing values.
    """

    name: str
    kind: FeatureKind
    edges: tuple[float, ...]
    categories: tuple[str, ...]
    shares: tuple[float, ...]
    rows: int

    @property
    def labels(self) -> list[str]:
        """A label per bin, in order."""
        if self.kind == "categorical":
            return [*self.categories, OTHER, MISSING]
        e = [f"{v:.4g}" for v in self.edges]
        if not e:
            return ["all", MISSING]
        inner = [f"({lo}, {hi}]" for lo, hi in itertools.pairwise(e)]
        return [f"<= {e[0]}", *inner, f"> {e[-1]}", MISSING]

    def counts(self, values: ArrayLike) -> np.ndarray:
        """How many of ``values`` fall in each bin (bins in the order of :attr:`shares`)."""
        if self.kind == "categorical":
            return _categorical_counts(np.asarray(values, dtype=object), self.categories)
        x = _as_float(values, self.name)
        missing = np.isnan(x)
        index = np.searchsorted(np.asarray(self.edges, dtype=float), x[~missing], side="left")
        counts = np.bincount(index, minlength=len(self.edges) + 1).astype(float)
        return np.append(counts, float(missing.sum()))

    @classmethod
    def of(cls, name: str, values: ArrayLike | pd.Series, *, bins: int = NUMERIC_BINS) -> FeatureProfile:
        """The profile of training ``values``: categorical for a categorical, string or boolean-free object column."""
        column = values if isinstance(values, pd.Series) else pd.Series(values)
        if len(column) == 0:
            raise ProfileError(f"input {name!r}: no rows to profile")
        if (
            isinstance(column.dtype, pd.CategoricalDtype)
            or column.dtype == object
            or pd.api.types.is_string_dtype(column)
        ):
            text = _as_text(column)
            seen = tuple(sorted({v for v in text if v is not None}))
            counts = _categorical_counts(np.asarray(text, dtype=object), seen)
            return cls(name, "categorical", (), seen, _shares(counts), len(column))
        x = _as_float(column, name)
        present = x[~np.isnan(x)]
        edges: tuple[float, ...] = ()
        if len(present):
            cuts = np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1], method="inverted_cdf")
            edges = tuple(float(v) for v in np.unique(cuts))
        profile = cls(name, "numeric", edges, (), (), len(column))
        return cls(name, "numeric", edges, (), _shares(profile.counts(x)), len(column))

    def record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "edges": list(self.edges),
            "categories": list(self.categories),
            "shares": list(self.shares),
            "rows": self.rows,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> FeatureProfile:
        try:
            profile = cls(
                str(record["name"]),
                record["kind"],
                tuple(float(v) for v in record["edges"]),
                tuple(str(v) for v in record["categories"]),
                tuple(float(v) for v in record["shares"]),
                int(record["rows"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProfileError(f"feature profile {record.get('name', '?')!r}: {type(exc).__name__}: {exc}") from None
        width = len(profile.categories) + 2 if profile.kind == "categorical" else len(profile.edges) + 2
        if profile.kind not in ("numeric", "categorical") or len(profile.shares) != width:
            raise ProfileError(f"feature profile {profile.name!r}: {profile.kind} with {len(profile.shares)} shares")
        return profile


@dataclass(frozen=True)
class ReferenceProfile:
    """What a model's training rows looked like: per-input bins, the score's bins and distribution, and figures.

    ``risk_levels`` are probabilities in increasing order and ``risk_shares[k]`` the share of training rows
    whose probability is at least ``risk_levels[k]``. ``figures`` holds ``rows``, ``base_rate``, ``roc_auc``,
    ``brier`` (realised on the training rows) and ``estimated_roc_auc``, ``estimated_brier`` (the label-free
    estimates of :func:`~evaluation.monitoring.estimate_performance` on the same rows).
    """

    stage: str
    features: tuple[FeatureProfile, ...]
    score: FeatureProfile
    risk_levels: tuple[float, ...]
    risk_shares: tuple[float, ...]
    figures: Mapping[str, float]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def feature(self, name: str) -> FeatureProfile:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def share_at_or_above(self, probability: float) -> float:
        """Share of the training rows whose calibrated probability is at least ``probability`` (within 1/1000)."""
        k = int(np.searchsorted(self.risk_levels, probability, side="left"))
        return 0.0 if k == len(self.risk_levels) else self.risk_shares[k]

    def share_between(self, low: float | None, high: float | None) -> float:
        """Share of the training rows with ``low <= p < high`` (``None``: unbounded on that side)."""
        top = 1.0 if low is None else self.share_at_or_above(low)
        return top - (0.0 if high is None else self.share_at_or_above(high))

    def record(self) -> dict[str, Any]:
        """The profile as a JSON-able record (what the model file and the MLflow run keep)."""
        return {
            "profile_version": PROFILE_VERSION,
            "stage": self.stage,
            "features": [f.record() for f in self.features],
            "score": self.score.record(),
            "risk_levels": list(self.risk_levels),
            "risk_shares": list(self.risk_shares),
            "figures": {k: float(v) for k, v in self.figures.items()},
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ReferenceProfile:
        """Read :meth:`record` back.

        Raises
        ------
        ProfileError
            A record of another version, or one that lacks a part (named).
        """
        version = record.get("profile_version")
        if version != PROFILE_VERSION:
            raise ProfileError(f"reference profile version {version!r}, this code reads {PROFILE_VERSION}: retrain")
        try:
            return cls(
                str(record["stage"]),
                tuple(FeatureProfile.from_record(f) for f in record["features"]),
                FeatureProfile.from_record(record["score"]),
                tuple(float(v) for v in record["risk_levels"]),
                tuple(float(v) for v in record["risk_shares"]),
                {str(k): float(v) for k, v in record["figures"].items()},
            )
        except KeyError as exc:
            raise ProfileError(f"reference profile lacks {exc}") from None


def build_profile(
    stage: str, X: pd.DataFrame, *, y_prob: ArrayLike, y_true: ArrayLike, names: Sequence[str] | None = None
) -> ReferenceProfile:
    """The reference profile of training rows ``X`` (columns ``names``, default all) with their calibrated
    probabilities ``y_prob`` and outcomes ``y_true`` (0/1)."""
    y, p = check_binary_inputs(y_true, y_prob)
    if len(p) != len(X):
        raise ProfileError(f"{len(X)} feature rows but {len(p)} probabilities")
    names = list(X.columns if names is None else names)
    missing = [n for n in names if n not in X.columns]
    if missing:
        raise ProfileError(f"the training rows lack the inputs {missing[:5]}")
    ordered = np.sort(p)
    levels = np.unique(np.quantile(ordered, np.linspace(0, 1, RISK_GRID + 1), method="inverted_cdf"))
    shares = (len(ordered) - np.searchsorted(ordered, levels, side="left")) / len(ordered)
    estimate = estimate_performance(p)
    figures = {
        "rows": float(len(p)),
        "base_rate": float(y.mean()),
        "roc_auc": roc_auc(y, p),
        "brier": brier(y, p),
        "estimated_roc_auc": estimate.roc_auc,
        "estimated_brier": estimate.brier,
        "expected_rate": estimate.expected_rate,
    }
    return ReferenceProfile(
        str(stage),
        tuple(FeatureProfile.of(n, X[n]) for n in names),
        FeatureProfile.of(SCORE, p),
        tuple(float(v) for v in levels),
        tuple(float(v) for v in shares),
        {k: v for k, v in figures.items() if not math.isnan(v)},
    )


def _shares(counts: np.ndarray) -> tuple[float, ...]:
    total = counts.sum()
    return tuple(float(c / total) for c in counts)


def _as_float(values: ArrayLike | pd.Series, name: str) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":  # already numbers: no walk per value
        return values.astype(float, copy=False)
    column = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values, dtype=object))
    if pd.api.types.is_numeric_dtype(column.dtype):  # numbers, booleans, nullable numbers (missing as NaN)
        return column.to_numpy(dtype=float, na_value=np.nan)
    try:
        return np.asarray(pd.to_numeric(column.astype(object).where(column.notna(), np.nan)), dtype=float)
    except (TypeError, ValueError) as exc:
        raise ProfileError(f"input {name!r}: a value is not a number ({exc})") from None


def _as_text(column: pd.Series) -> list[str | None]:
    """Each value as text (a category's code), None where missing."""
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA else str(v) for v in column]


def _categorical_counts(values: np.ndarray, categories: Sequence[str]) -> np.ndarray:
    """Counts per category, then of unseen categories, then of missing values."""
    text = pd.Series(_as_text(pd.Series(values, dtype=object)), dtype=object)
    missing = text.isna().to_numpy()
    index = pd.Index(categories).get_indexer(pd.Index(text[~missing]))
    known = np.bincount(index[index >= 0], minlength=len(categories)).astype(float)
    return np.concatenate([known, [float((index < 0).sum()), float(missing.sum())]])
