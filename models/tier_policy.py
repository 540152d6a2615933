"""The tier policy: risk bands, management tiers and mandatory strict rules (design.md, "Tier policy").

One versioned YAML file (``tier_policy.yaml`` beside this module by default) sets, per stage, the
band cut-offs on the calibrated probability (``low < medium_from <= medium < high_from <= high``),
the bands that map to the strict tier, and the mandatory strict rules that apply whatever the
score. A cut-off is a probability, a multiple of the stage's base rate or the share to flag
(:mod:`models.cutoffs`); the relative forms are resolved against the reference statistics kept with
the model that scores (:meth:`TierPolicy.cutoffs`), and every decision carries the cut-offs it used.
Rules are data: a condition is ``{always: true}``, a comparison
``{feature: warning_term, op: ">=", value: 2}`` (or ``sum_of: [a, b]`` in place of ``feature``),
or a combination ``{any_of: [...]}`` / ``{all_of: [...]}``. Nothing is ``eval``-ed.

A comparison whose feature is absent from the row, or missing (None/NaN) in it, does not hold,
so a rule about a feature the row does not carry simply does not apply. Rules are tried in file
order and the first that holds decides (``reason="rule"``); otherwise the band decides.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from features.catalog import CATALOG, features_for
from features.pipeline import category_values
from features.vocab import CATEGORICAL_COLUMNS, Labelled, Stage, Tier
from models.cutoffs import (
    BandCutoffs,
    Cutoff,
    RelativeCutoff,
    RiskReference,
    order_problem,
    parse_cutoff,
    resolve_cutoffs,
)
from models.policy_file import load_policy_file

logger = logging.getLogger(__name__)

Op = Literal["<", "<=", ">", ">=", "==", "!=", "in", "not_in"]
_COMPARE = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_SET_OPS = ("in", "not_in")
_CATEGORICAL_OPS = ("==", "!=", "in", "not_in")


class Band(Labelled):
    """Risk band of the calibrated probability, in increasing order."""

    LOW = "low", "低", "low"
    MEDIUM = "medium", "中", "medium"
    HIGH = "high", "高", "high"


_BANDS = list(Band)


class TierPolicyError(ValueError):
    """The policy file is not valid; the message names the stage and the rule."""


@dataclass(frozen=True)
class TierDecision:
    """The band and tier of one assessment and why the tier was chosen.

    ``tier`` is the effective tier (after the mandatory rules), ``tier_by_risk`` the band's tier.
    When a time-limited rule decided (``rule_days_after_start`` set), ``then`` is the decision
    that follows once the rule has lapsed (the next rule that holds, else the band). ``cutoffs`` are
    the band cut-offs that gave ``band`` (those of the model that scored).
    """

    band: Band
    tier: Tier
    reason: Literal["band", "rule"]
    rule_id: str | None
    rule_text_zh: str | None
    rule_text_en: str | None
    policy_version: str
    tier_by_risk: Tier = Tier.ORDINARY
    rule_days_after_start: int | None = None
    then: TierDecision | None = None
    cutoffs: BandCutoffs | None = None

    def rule_text(self, lang: str) -> str:
        """The deciding rule's text in ``lang`` ("" when the band decided)."""
        return (self.rule_text_zh if lang == "zh" else self.rule_text_en) or ""

    def rule_until(self, supervision_start: dt.date) -> dt.date | None:
        """The last day a time-limited rule applies to a person who started on ``supervision_start``."""
        if self.rule_days_after_start is None:
            return None
        return supervision_start + dt.timedelta(days=self.rule_days_after_start - 1)


class Condition(BaseModel):
    """One condition: exactly one of ``always``, ``feature``, ``sum_of``, ``any_of``, ``all_of``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    always: bool | None = None
    feature: str | None = None
    sum_of: list[str] | None = Field(default=None, min_length=2)
    op: Op | None = None
    value: float | str | list[float | str] | None = None
    any_of: list[Condition] | None = Field(default=None, min_length=1)
    all_of: list[Condition] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_form(self) -> Condition:
        forms = {k: getattr(self, k) is not None for k in ("always", "feature", "sum_of", "any_of", "all_of")}
        if sum(forms.values()) != 1:
            raise ValueError("a condition needs exactly one of always, feature, sum_of, any_of, all_of")
        if self.always is False:
            raise ValueError("'always: false' never applies; remove the rule instead")
        if not (forms["feature"] or forms["sum_of"]):
            if self.op is not None or self.value is not None:
                raise ValueError("op/value belong to a feature or sum_of comparison")
        elif self.op is None or self.value is None:
            raise ValueError("a comparison needs both op and value")
        elif (self.op in _SET_OPS) != isinstance(self.value, list) or self.value == []:
            raise ValueError(f"op '{self.op}' needs {'a non-empty list' if self.op in _SET_OPS else 'a single'} value")
        return self

    def parts(self) -> list[Condition]:
        """The conditions combined by ``any_of``/``all_of`` (empty for a leaf)."""
        return self.any_of or self.all_of or []

    def leaves(self) -> list[Condition]:
        """The comparisons inside this condition."""
        if self.parts():
            return [leaf for c in self.parts() for leaf in c.leaves()]
        return [] if self.always else [self]


class TimeLimit(BaseModel):
    """How long a time-limited rule applies: up to (not including) ``days_after_start`` days after the start."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days_after_start: int = Field(gt=0, le=3660)


class Rule(BaseModel):
    """A mandatory strict rule: an id, its text in both languages, its condition and an optional time limit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)
    condition: Condition
    time_limit: TimeLimit | None = None

    def last_day(self, supervision_start: dt.date) -> dt.date | None:
        """The last day a time-limited rule applies to a term starting on ``supervision_start`` (None: no limit)."""
        if self.time_limit is None:
            return None
        return supervision_start + dt.timedelta(days=self.time_limit.days_after_start - 1)


class StagePolicy(BaseModel):
    """Cut-offs, strict bands and mandatory rules of one stage.

    A cut-off is a probability or a :class:`~models.cutoffs.RelativeCutoff` (a multiple of the base rate,
    or the share to flag), resolved against a model's reference statistics by :meth:`TierPolicy.cutoffs`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    medium_from: Cutoff
    high_from: Cutoff
    strict_bands: list[Band] = Field(default_factory=lambda: [Band.HIGH], min_length=1)
    rules: list[Rule] = Field(default_factory=list)

    @field_validator("medium_from", "high_from", mode="before")
    @classmethod
    def _parse_cutoff(cls, value: Any) -> Cutoff:
        return parse_cutoff(value)

    @model_validator(mode="after")
    def _check(self) -> StagePolicy:
        problem = order_problem(self.medium_from, self.high_from)
        if problem:
            raise ValueError(problem)
        lowest = min(_BANDS.index(b) for b in self.strict_bands)
        if set(self.strict_bands) != set(_BANDS[lowest:]):
            raise ValueError("strict_bands must be a band and every band above it (e.g. [medium, high])")
        ids = [r.id for r in self.rules]
        if len(ids) != len(set(ids)):
            raise ValueError(f"duplicate rule ids: {sorted({i for i in ids if ids.count(i) > 1})}")
        return self

    @property
    def relative(self) -> bool:
        """Whether a cut-off is stated relative to the model's training rows (resolving it needs the model)."""
        return isinstance(self.medium_from, RelativeCutoff) or isinstance(self.high_from, RelativeCutoff)

    def strict_from(self, cutoffs: BandCutoffs) -> float:
        """The lowest probability that maps to the strict tier by band alone, under ``cutoffs``."""
        return min(_lower_edge(cutoffs, b) for b in self.strict_bands)


def _lower_edge(cutoffs: BandCutoffs, band: Band) -> float:
    """The lowest probability in ``band``."""
    return (0.0, *cutoffs.edges)[_BANDS.index(band)]


class TierPolicy(BaseModel):
    """The versioned tier policy of all three stages (load it with :meth:`load`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1)
    stages: dict[Stage, StagePolicy]

    @model_validator(mode="after")
    def _check_stages_and_features(self) -> TierPolicy:
        missing = [s.value for s in Stage if s not in self.stages]
        if missing:
            raise ValueError(f"stage(s) missing from the policy: {missing}")
        for stage, policy in self.stages.items():
            for rule in policy.rules:
                for leaf in rule.condition.leaves():
                    problem = _leaf_problem(stage, leaf)
                    if problem:
                        raise ValueError(f"stage '{stage.value}', rule '{rule.id}': {problem}")
        return self

    @classmethod
    def load(cls, path: Path | str | None = None) -> TierPolicy:
        """Read and validate a policy file (default: ``tier_policy.yaml`` beside this module).

        Raises
        ------
        TierPolicyError
            If the file is not YAML or breaks the policy's rules; the message names the stage
            and the rule.
        """
        policy = load_policy_file(
            cls,
            path,
            default=("models", "tier_policy.yaml"),
            error=TierPolicyError,
            describe=lambda exc, raw: "invalid tier policy:\n" + _explain(exc, raw),
        )
        logger.info("loaded tier policy %s from %s", policy.version, path or "models/tier_policy.yaml")
        return policy

    def stage(self, stage: Stage | str) -> StagePolicy:
        """The policy of one stage."""
        return self.stages[Stage(stage)]

    def cutoffs(self, stage: Stage | str, reference: RiskReference | None = None) -> BandCutoffs:
        """The stage's absolute band cut-offs for the model whose training rows ``reference`` describes.

        ``reference`` is the model's :attr:`~models.estimator.StageEstimator.risk_reference` (None for a model
        fitted before it was kept: enough for cut-offs stated as probabilities).

        Raises
        ------
        TierPolicyError
            If a cut-off is relative and there is no reference, or the resolved cut-offs do not increase;
            the message names the stage and the cut-off.
        """
        sp = self.stage(stage)
        try:
            return resolve_cutoffs(stage, sp.medium_from, sp.high_from, reference)
        except ValueError as exc:
            raise TierPolicyError(f"tier policy {self.version}, stage '{Stage(stage).value}': {exc}") from exc

    def band(self, stage: Stage | str, probability: float, *, cutoffs: BandCutoffs | None = None) -> Band:
        """The band of ``probability`` (``low < medium_from <= medium < high_from <= high``).

        ``cutoffs``: the scoring model's (:meth:`cutoffs`); by default the policy's own, which needs every
        cut-off of the stage stated as a probability.
        """
        p = _check_probability(probability)
        medium, high = (cutoffs or self.cutoffs(stage)).edges
        return Band.HIGH if p >= high else Band.MEDIUM if p >= medium else Band.LOW

    def strict_cutoff(self, stage: Stage | str, reference: RiskReference | None = None) -> float:
        """The lowest probability that maps to the strict tier by band alone, for the model of ``reference``
        (see :meth:`cutoffs`)."""
        return self.stage(stage).strict_from(self.cutoffs(stage, reference))

    def decide(
        self,
        stage: Stage | str,
        probability: float,
        features: Mapping[str, Any] | pd.Series,
        *,
        cutoffs: BandCutoffs | None = None,
    ) -> TierDecision:
        """Band and tier of one assessment: the first mandatory rule that holds, else the band.

        Parameters
        ----------
        stage
            The assessment stage.
        probability
            The calibrated probability, in [0, 1].
        features
            One feature row (dict or Series keyed by catalog feature names).
        cutoffs
            The band cut-offs of the model that scored (:meth:`cutoffs`); by default the policy's own,
            which needs every cut-off of the stage stated as a probability.
        """
        cutoffs = cutoffs or self.cutoffs(stage)
        band = self.band(stage, probability, cutoffs=cutoffs)
        holding = [rule for rule in self.stage(stage).rules if _holds(rule.condition, features)]
        first = holding[0] if holding else None
        lasting = next((rule for rule in holding if rule.time_limit is None), None)
        return self._decision(stage, band, first, lasting, cutoffs)

    def rules_in_force(
        self,
        stage: Stage | str,
        features: Mapping[str, Any] | pd.Series,
        *,
        supervision_start: dt.date,
        on: dt.date,
    ) -> list[Rule]:
        """The mandatory rules that hold on ``features`` and still apply on ``on``, in file order.

        A time-limited rule applies up to ``supervision_start + days_after_start - 1``; a rule without a
        limit applies as long as its condition holds. The first of these is the floor below which no
        tier decision may move the person (design.md, "Dates, rules and offices").
        """
        return [
            rule
            for rule in self.stage(stage).rules
            if _holds(rule.condition, features) and ((last := rule.last_day(supervision_start)) is None or on <= last)
        ]

    def decide_frame(
        self,
        stage: Stage | str,
        probabilities: np.ndarray,
        features: pd.DataFrame | Mapping[str, Any],
        *,
        cutoffs: BandCutoffs | None = None,
    ) -> list[TierDecision]:
        """:meth:`decide` for a batch, each rule evaluated as one vectorised mask.

        ``features`` is a feature frame or its columns by name (:func:`features.pipeline.feature_columns`);
        ``cutoffs`` as for :meth:`decide`.
        """
        sp = self.stage(stage)
        cutoffs = cutoffs or self.cutoffs(stage)
        p = np.asarray(probabilities, dtype=float).reshape(-1)
        if len(p) != _rows(features):
            raise ValueError(f"{len(p)} probabilities for {_rows(features)} feature rows")
        bad = ~((p >= 0) & (p <= 1))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"probability of row {i} is {p[i]!r}, not in [0, 1]")
        band_idx = np.searchsorted(cutoffs.edges, p, side="right")
        rule_idx, lasting_idx = np.full(len(p), -1), np.full(len(p), -1)
        for i in range(len(sp.rules) - 1, -1, -1):  # the first rule that holds wins
            holds = _mask(sp.rules[i].condition, features)
            rule_idx[holds] = i
            if sp.rules[i].time_limit is None:
                lasting_idx[holds] = i
        cache: dict[tuple[int, int, int], TierDecision] = {}
        out = []
        for key in zip(band_idx.tolist(), rule_idx.tolist(), lasting_idx.tolist(), strict=True):
            if key not in cache:
                rule, lasting = (sp.rules[i] if i >= 0 else None for i in key[1:])
                cache[key] = self._decision(stage, _BANDS[key[0]], rule, lasting, cutoffs)
            out.append(cache[key])
        return out

    def tier_by_risk(self, stage: Stage | str, band: Band | str) -> Tier:
        """The tier of ``band`` at ``stage`` (before any mandatory rule): the one place this is decided."""
        return Tier.STRICT if Band(band) in self.stage(stage).strict_bands else Tier.ORDINARY

    def _decision(
        self, stage: Stage | str, band: Band, rule: Rule | None, lasting: Rule | None, cutoffs: BandCutoffs
    ) -> TierDecision:
        """The decision of ``rule`` (None: the band); a time-limited rule's ``then`` is ``lasting``'s decision."""
        by_risk = self.tier_by_risk(stage, band)
        if rule is None:
            return TierDecision(band, by_risk, "band", None, None, None, self.version, by_risk, cutoffs=cutoffs)
        then, days = None, None
        if rule.time_limit is not None:
            days = rule.time_limit.days_after_start
            then = self._decision(stage, band, lasting if lasting is not rule else None, None, cutoffs)
        return TierDecision(
            band, Tier.STRICT, "rule", rule.id, rule.zh, rule.en, self.version, by_risk, days, then, cutoffs
        )


def _check_probability(probability: float) -> float:
    p = float(probability)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"probability {probability!r} is not in [0, 1]")
    return p


def _leaf_problem(stage: Stage, leaf: Condition) -> str | None:
    """What is wrong with a comparison at ``stage`` (None if nothing)."""
    names = leaf.sum_of if leaf.sum_of is not None else [leaf.feature]
    values = leaf.value if isinstance(leaf.value, list) else [leaf.value]
    for name in names:
        if name not in CATALOG:
            return f"unknown feature '{name}' (not in features.catalog.CATALOG)"
        if name not in features_for(stage):
            return f"feature '{name}' does not exist at stage {stage.value}"
        kind = CATALOG[name].kind
        if kind == "categorical":
            if leaf.sum_of is not None:
                return f"sum_of needs numeric features; '{name}' is categorical"
            if leaf.op not in _CATEGORICAL_OPS:
                return f"op '{leaf.op}' cannot compare the categorical feature '{name}'"
            unknown = [v for v in values if v not in CATEGORICAL_COLUMNS[name].codes()]
            if unknown:
                return f"unknown {name} code(s) {unknown}; known: {CATEGORICAL_COLUMNS[name].codes()}"
        elif any(isinstance(v, str) for v in values):
            return f"feature '{name}' is numeric; value {leaf.value!r} must be a number"
    return None


def _explain(exc: ValidationError, raw: Any) -> str:
    """One line per pydantic error, naming the stage and the rule by its id."""
    lines = []
    for err in exc.errors():
        loc, where = list(err["loc"]), []
        if len(loc) >= 2 and loc[0] == "stages":
            stage, loc = loc[1], loc[2:]
            where.append(f"stage '{stage}'")
            if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
                try:
                    rule_id = raw["stages"][stage]["rules"][loc[1]]["id"]
                except (KeyError, IndexError, TypeError):
                    rule_id = f"#{loc[1] + 1}"
                where.append(f"rule '{rule_id}'")
                loc = loc[2:]
        field = ".".join(str(part) for part in loc)
        head = ", ".join(where) + (f" ({field})" if field else "")
        lines.append(f"  {head + ': ' if head else ''}{err['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- evaluation
def _is_missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _as_float(value: Any) -> float:
    if _is_missing(value):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _comparison(leaf: Condition) -> tuple[list[str], Op, Any]:
    """A comparison's feature names, operator and value (the validator guarantees all are set)."""
    names = leaf.sum_of if leaf.sum_of is not None else [] if leaf.feature is None else [leaf.feature]
    if not names or leaf.op is None or leaf.value is None:
        raise ValueError("not a feature or sum_of comparison")
    return names, leaf.op, leaf.value


def _compare(x: Any, leaf: Condition) -> bool:
    _, op, value = _comparison(leaf)
    if op in _SET_OPS:
        return (x in value) == (op == "in")
    return bool(_COMPARE[op](x, value))


def _holds(cond: Condition, row: Mapping[str, Any] | pd.Series) -> bool:
    """Whether ``cond`` holds for one feature row (absent or missing features never hold)."""
    if cond.always:
        return True
    if cond.any_of is not None:
        return any(_holds(c, row) for c in cond.any_of)
    if cond.all_of is not None:
        return all(_holds(c, row) for c in cond.all_of)
    names, _, _ = _comparison(cond)
    if any(name not in row for name in names):
        return False
    if cond.feature is not None and CATALOG[cond.feature].kind == "categorical":
        value = row[cond.feature]
        return False if _is_missing(value) else _compare(str(value), cond)
    total = sum((_as_float(row[name]) for name in names), 0.0)
    return False if math.isnan(total) else _compare(total, cond)


def _rows(features: pd.DataFrame | Mapping[str, Any]) -> int:
    if isinstance(features, pd.DataFrame):
        return len(features)
    return len(next(iter(features.values()))) if features else 0


def _mask(cond: Condition, frame: pd.DataFrame | Mapping[str, Any]) -> np.ndarray:
    """:func:`_holds` for every row of ``frame`` (a feature frame or its columns by name) at once."""
    n = _rows(frame)
    if cond.always:
        return np.ones(n, dtype=bool)
    if cond.parts():
        parts = [_mask(c, frame) for c in cond.parts()]
        return np.asarray(np.logical_or.reduce(parts) if cond.any_of is not None else np.logical_and.reduce(parts))
    names, op, value = _comparison(cond)
    if any(name not in frame for name in names):
        return np.zeros(n, dtype=bool)
    if cond.feature is not None and CATALOG[cond.feature].kind == "categorical":
        values = category_values(frame[cond.feature])
        present = np.asarray(pd.notna(values), dtype=bool)
        text = np.where(present, values, "").astype(str).astype(object)
        hit = np.isin(text, value) if op in _SET_OPS else _COMPARE[op](text, value)
    else:
        x = sum(_numeric(frame[name]) for name in names)
        present = ~np.isnan(x)
        with np.errstate(invalid="ignore"):
            hit = np.isin(x, value) if op in _SET_OPS else _COMPARE[op](x, value)
    if cond.op == "not_in":
        hit = ~np.asarray(hit, dtype=bool)
    mask: np.ndarray = np.asarray(hit, dtype=bool) & present
    return mask


def _numeric(column: pd.Series | np.ndarray) -> np.ndarray:
    """A column as floats (NaN where missing or not a number)."""
    if isinstance(column, np.ndarray) and column.dtype.kind == "f":  # the pipeline's numeric columns
        return column
    column = column if isinstance(column, pd.Series) else pd.Series(column)
    if pd.api.types.is_numeric_dtype(column.dtype):
        return column.to_numpy(dtype=float, na_value=np.nan)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
