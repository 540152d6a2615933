"""Score requests: canonical records in, assessments with reasons and tiers out.

:class:`Scorer` is the whole scoring path without the HTTP layer, shared by the BentoML service
and ``riskctl score``. Features come from :func:`features.pipeline.feature_columns`, the code the
models were trained with (``build_features`` is that function's DataFrame); serving computes no
feature of its own. The requests go in as arrays, not DataFrames: for one person pandas' fixed
cost per call was most of the scoring time. A batch is scored stage by stage in one vectorised
pass, so one person gets the same answer alone or in a batch.

Explanations are exact per-feature contributions on the log-odds scale: TreeSHAP for a boosted
model (LightGBM's ``pred_contrib``), coefficient x centred value summed over the feature's columns for
a logistic one (``models.estimator.LinearStageModel``): base value + contributions = raw score, which
the calibrator maps to the probability. A reason's size is given in percentage points of risk
(``StageEstimator.points_of_risk``:
the calibrated probability minus the calibrated probability without that contribution); the
log-odds and the base value stay in the stored explanation for auditors. Reasons compare the
person's value with the stage's typical value stored with the model, and never name a protected
attribute (sex, household registration), even when a deployment made it a model input.
LightGBM handles categorical features natively, so each catalog feature is one model
column and its contribution is that column's (the columns that make up a feature are just one);
:class:`Scorer` refuses a model with a column that is not a catalog feature.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from features.catalog import CATALOG, PROTECTED_ATTRIBUTES, Typical
from features.pipeline import category_values, feature_columns
from features.schema import PERSON_COLUMNS
from features.vocab import Labelled, Lang, Stage
from models.cutoffs import BandCutoffs
from models.tier_policy import TierDecision, TierPolicy, TierPolicyError
from models.tier_wording import tier_text
from serving.scoring._columns import RequestColumns, request_columns
from serving.scoring._messages import no_model_message
from serving.scoring._model_store import ServedModel
from serving.scoring.schemas import (
    Assessment,
    BandCutoffsOut,
    Coded,
    ExplanationSummary,
    ModelRef,
    Reason,
    ScoreRequest,
    TierOut,
)

MAX_RAISING = 4
MAX_LOWERING = 2
MIN_CONTRIBUTION = 1e-6  # contributions smaller than this (in log-odds) are not shown as reasons
MIN_POINTS = 0.05  # nor those that move the calibrated risk by less than this (percentage points: shown as 0.0)


class NoModelError(LookupError):
    """No model serves a requested stage: the service runs, and answers that stage with 503 until one does.

    ``stages`` are the stages asked for that no model serves; ``str(err)`` is the English message and
    :meth:`text` the message in the caller's language (:func:`~serving.scoring.no_model_message`).
    """

    status = 503

    def __init__(self, stages: Sequence[Stage | str]) -> None:
        if not stages:
            raise ValueError("NoModelError needs the stages no model serves")
        self.stages = tuple(dict.fromkeys(Stage(s) for s in stages))
        super().__init__(no_model_message(self.stages, "en"))

    def text(self, lang: str) -> str:
        """The refusal in ``lang`` (zh or en)."""
        return no_model_message(self.stages, lang)


@dataclass(frozen=True)
class Scored:
    """One assessment and its full explanation (stored in the audit trail beside the answer)."""

    request: ScoreRequest
    assessment: Assessment
    explanation: dict[str, Any]

    def audit_fields(self, actor: str, *, answer: str | None = None) -> dict[str, Any]:
        """The fields of :meth:`serving.audit.AuditStore.append_many` for this assessment.

        ``answer`` is the JSON text sent to the client, stored as it is (default: the assessment).
        """
        a = self.assessment
        return dict(
            assessment_id=a.assessment_id,
            person_id=a.person_id,
            stage=a.stage.code,
            model_name=a.model.name,
            model_version=a.model.version,
            policy_version=a.policy_version,
            request=self.request.model_dump(mode="json"),
            response=a.model_dump(mode="json") if answer is None else answer,
            explanation=self.explanation,
            actor=actor,
        )


@dataclass(frozen=True)
class Brief:
    """An answer reduced to what a comparison of two models' answers reads (:meth:`Scorer.brief`).

    ``band``, ``tier`` (effective), ``tier_by_risk``, ``basis`` and ``rule_id`` are the codes of the answer's
    fields of those names; ``reasons`` the feature and size in points of risk (rounded to 0.1, as shown) of each
    reason, in the answer's order.
    """

    probability: float
    band: str
    tier: str
    tier_by_risk: str
    basis: str
    rule_id: str | None
    reasons: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class _Computed:
    """A batch's model numbers (:meth:`Scorer._compute`), per request in the batch's order."""

    probability: list[float]
    base: np.ndarray
    contributions: np.ndarray
    contribution_rows: list[list[float]]
    points: list[list[float]]
    order: list[list[int]]
    values: np.ndarray
    value_rows: list[list[Any]]
    cutoffs: BandCutoffs
    decisions: list[TierDecision]


class Scorer:
    """Scores :class:`~serving.scoring.schemas.ScoreRequest` objects with the stage models and tier policy.

    Parameters
    ----------
    models
        The served model of each stage.
    policy
        The tier policy (band cut-offs and mandatory strict rules). Each stage's cut-offs are resolved for
        its model once (:attr:`cutoffs`), and every answer gives the cut-offs its band came from.

    Raises
    ------
    TierPolicyError
        If the policy states a stage's cut-offs relative to the training rows and its model keeps no
        reference statistics of them (a model trained before they were kept), naming the model.
    """

    def __init__(self, models: Mapping[Stage, ServedModel], policy: TierPolicy) -> None:
        for stage, served in models.items():
            unknown = [name for name in served.model.feature_names if name not in CATALOG]
            if unknown:
                raise ValueError(
                    f"the {Stage(stage).value} model has columns that are not catalog features "
                    f"{unknown[:5]}: its explanations could not be named"
                )
        self.models = dict(models)
        self.policy = policy
        #: each served stage's band cut-offs, resolved for its model
        self.cutoffs: dict[Stage, BandCutoffs] = {
            Stage(stage): _model_cutoffs(policy, served) for stage, served in self.models.items()
        }

    @property
    def stages(self) -> tuple[Stage, ...]:
        """The stages a model serves, in the order of :class:`~features.vocab.Stage`."""
        return tuple(stage for stage in Stage if stage in self.models)

    def require(self, stages: Iterable[Stage | str]) -> None:
        """Raise :class:`NoModelError` naming every one of ``stages`` that no model serves."""
        missing = [stage for stage in dict.fromkeys(Stage(s) for s in stages) if stage not in self.models]
        if missing:
            raise NoModelError(missing)

    def score(self, requests: Sequence[ScoreRequest]) -> list[Scored]:
        """Assess every request; the answers keep the order of ``requests``.

        Raises :class:`NoModelError` (nothing scored) when a request's stage has no model."""
        out: list[Scored | None] = [None] * len(requests)
        stages: dict[Stage, list[int]] = {}
        for i, req in enumerate(requests):
            stages.setdefault(Stage(req.stage), []).append(i)
        self.require(stages)  # before any scoring: a batch with an unserved stage is refused whole
        for stage, rows in stages.items():
            for i, scored in zip(rows, self._score_stage(self.models[stage], [requests[i] for i in rows]), strict=True):
                out[i] = scored
        done = [s for s in out if s is not None]  # every request was in one stage's rows
        assert len(done) == len(requests)
        return done

    def _score_stage(self, served: ServedModel, requests: list[ScoreRequest]) -> list[Scored]:
        columns = request_columns(requests)
        c = self._compute(served, columns)
        model, names, typical = served.model, served.model.feature_names, served.model.typical
        cutoffs_out = BandCutoffsOut.model_validate(c.cutoffs.record())
        before, on_day = _event_counts(columns.events, columns.assessments)
        now = dt.datetime.now(dt.UTC)
        stored_values = np.where(pd.isna(c.values), np.array(None), c.values).tolist()
        raw_score = (c.base + c.contributions.sum(axis=1)).tolist()
        probability, base_value = c.probability, c.base.tolist()
        model_ref = ModelRef(name=served.name, version=served.version, bento_tag=served.bento_tag)
        results = []
        for j, req in enumerate(requests):
            decision, lang = c.decisions[j], req.lang
            assessment = Assessment(
                assessment_id=str(uuid.uuid4()),
                person_id=req.person.person_id,
                stage=_coded(served.stage, lang),
                as_of=req.assessment_date,
                lang=lang,
                probability=probability[j],
                horizon_months=served.horizon_months,
                band=_coded(decision.band, lang),
                band_cutoffs=cutoffs_out,
                tier=self._tier(
                    served.stage, decision, probability[j], lang, req.person.supervision_start, req.assessment_date
                ),
                reasons=reasons(
                    names,
                    c.contribution_rows[j],
                    c.value_rows[j],
                    lang,
                    order=c.order[j],
                    points=c.points[j],
                    typical=typical,
                ),
                explanation=ExplanationSummary(
                    base_value=base_value[j], raw_score=raw_score[j], calibration=model.calibrator_.method_
                ),
                model=model_ref,
                policy_version=decision.policy_version,
                events_used=int(before[j]),
                events_on_as_of=int(on_day[j]),
                assessed_at=now,
            )
            explanation = {
                "base_value": base_value[j],
                "raw_score": raw_score[j],
                "probability": probability[j],
                "scale": "log-odds",
                "features": dict(zip(names, stored_values[j], strict=True)),
                "contributions": dict(zip(names, c.contribution_rows[j], strict=True)),
                "points_of_risk": dict(zip(names, c.points[j], strict=True)),
            }
            results.append(Scored(req, assessment, explanation))
        return results

    def _compute(self, served: ServedModel, columns: RequestColumns) -> _Computed:
        """The model's numbers for a batch of one stage: what an answer and a brief answer are made of."""
        X = feature_columns(*columns.tables(), stage=served.stage)
        model = served.model
        M = model.matrix(X)
        # The probability comes from the booster's own raw score, not the sum of the contributions: that
        # sum's last digit depends on the batch's shape, and one person must get the same answer in any batch.
        raw = model.raw_score(M)
        prob = model.calibrator_.predict(raw)
        contrib = model.contribution_matrix(M)
        base, contributions = contrib[:, -1], contrib[:, :-1]
        cutoffs = self.cutoffs.get(served.stage) or _model_cutoffs(self.policy, served)
        names = model.feature_names
        values = np.empty((len(columns), len(names)), dtype=object)
        for k, name in enumerate(names):
            values[:, k] = category_values(X[name])
        return _Computed(
            probability=prob.tolist(),
            base=base,
            contributions=contributions,
            contribution_rows=contributions.tolist(),  # Python floats: per-person work on numpy scalars is slow
            points=model.points_of_risk(raw, contributions).tolist(),
            order=np.argsort(-contributions, axis=1, kind="stable").tolist(),
            values=values,
            value_rows=values.tolist(),
            cutoffs=cutoffs,
            decisions=self.policy.decide_frame(served.stage, prob, X, cutoffs=cutoffs),
        )

    def brief(self, columns: RequestColumns) -> list[Brief]:
        """What :meth:`score` would answer each request of ``columns``, reduced to its codes, probability and the
        features and sizes of its reasons (:class:`Brief`), without the words, the explanation or the answer's
        object: what a comparison of two models' answers reads (shadow replay). The requests are of one stage.

        The numbers and codes are those of :meth:`score`'s answers to the same requests, computed by the same code.
        """
        stages = set(columns.stages)
        if len(stages) > 1:
            raise ValueError(f"a brief batch is of one stage, got {sorted(stages)}")
        if not stages:
            return []
        (stage,) = stages
        self.require([stage])
        served = self.models[stage]
        c = self._compute(served, columns)
        names, typical = served.model.feature_names, served.model.typical
        out = []
        for j, decision in enumerate(c.decisions):
            effective, _ = _effective(decision, columns.supervision_starts[j], columns.assessment_dates[j])
            points = c.points[j]
            shown = _reason_indices(
                names, c.contribution_rows[j], c.value_rows[j], order=c.order[j], points=points, typical=typical
            )
            out.append(
                Brief(
                    probability=c.probability[j],
                    band=decision.band.value,
                    tier=effective.tier.value,
                    tier_by_risk=effective.tier_by_risk.value,
                    basis=effective.reason,
                    rule_id=effective.rule_id,
                    reasons=tuple((names[k], round(points[k], 1)) for k in shown),
                )
            )
        return out

    def _tier(
        self,
        stage: Stage,
        decision: TierDecision,
        probability: float,
        lang: Lang,
        supervision_start: dt.date,
        as_of: dt.date,
    ) -> TierOut:
        """The effective tier, the tier by risk and, for a time-limited rule, its last day and the tier after it.

        A time-limited rule whose last day is before the assessment date no longer decides (an intake
        assessment made late): the decision that follows it does (the next rule that holds, else the band).
        """
        decision, until = _effective(decision, supervision_start, as_of)
        then = decision.then.tier if decision.then is not None and until is not None else None
        return TierOut(
            tier=_coded(decision.tier, lang),
            basis=decision.reason,
            rule_id=decision.rule_id,
            text=tier_text(self.policy, stage, decision, probability=probability, lang=lang, until=until),
            tier_by_risk=_coded(decision.tier_by_risk, lang),
            rule_until=until,
            tier_after_rule=None if then is None else _coded(then, lang),
        )


def _model_cutoffs(policy: TierPolicy, served: ServedModel) -> BandCutoffs:
    """The policy's cut-offs of ``served``'s stage, resolved against its model's reference statistics."""
    try:
        return policy.cutoffs(served.stage, served.model.risk_reference)
    except TierPolicyError as exc:
        raise TierPolicyError(f"{served.name} version {served.version} ({served.bento_tag}): {exc}") from exc


@functools.lru_cache(maxsize=64)
def _coded(value: Labelled, lang: Lang) -> Coded:
    """A controlled value with its label (one shared, frozen instance per value and language)."""
    return Coded(code=value.value, label=value.label(lang))


def request_tables(requests: Sequence[ScoreRequest]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The canonical ``persons`` and ``events`` tables and the assessments of ``requests``, as columns.

    Mappings of column name to array, which :func:`features.pipeline.feature_columns` reads like
    DataFrames without pandas' per-call cost. Each request becomes its own row key (``r0``,
    ``r1``, ...), so a batch may hold the same person twice (two stages, two dates) without the
    records mixing.
    """
    return request_columns(requests).tables()


def _effective(
    decision: TierDecision, supervision_start: dt.date, as_of: dt.date
) -> tuple[TierDecision, dt.date | None]:
    """The decision that sets the effective tier on ``as_of``, and the last day of its time-limited rule (if any):
    a time-limited rule whose last day is before the assessment date gives way to the decision after it."""
    until = decision.rule_until(supervision_start)
    if until is not None and as_of > until and decision.then is not None:
        decision = decision.then
        until = decision.rule_until(supervision_start)
    return decision, until


def reasons(
    names: Sequence[str],
    contributions: Sequence[float],
    values: Sequence[Any],
    lang: Lang,
    *,
    order: Sequence[int] | None = None,
    points: Sequence[float] | None = None,
    typical: Mapping[str, Typical] | None = None,
) -> list[Reason]:
    """The top reasons of one assessment: up to four raising the risk, then up to two lowering it.

    ``contributions`` (log-odds), ``values`` and ``points`` (percentage points of risk) are the
    person's, feature by feature in the order of ``names``; ``order`` is the features by
    contribution, largest first (``np.argsort(-contributions, kind="stable")``), when the caller has
    it for a whole batch; ``typical`` the stage's typical values stored with the model. A protected
    attribute is never a reason, nor a feature whose size rounds to 0.0 percentage points.
    """
    typical = typical or {}
    out = []
    for k in _reason_indices(names, contributions, values, order=order, points=points, typical=typical):
        value, contribution = values[k], float(contributions[k])
        if isinstance(value, float):
            if value != value:  # NaN: one cache entry for every missing value
                value = None
            elif value == 0.0:  # -0.0 and 0.0 are one cache key: answer 0.0 for both
                value = 0.0
        label, plain, value_text, typical_text, text = _phrase(names[k], value, lang, typical.get(names[k]))
        out.append(
            Reason(
                feature=names[k],
                label=label,
                value=plain,
                value_text=value_text,
                typical_text=typical_text,
                points=None if points is None else round(points[k], 1),
                contribution=contribution,
                direction="raises" if contribution > 0 else "lowers",
                text=text,
            )
        )
    return out


def _reason_indices(
    names: Sequence[str],
    contributions: Sequence[float],
    values: Sequence[Any],
    *,
    order: Sequence[int] | None,
    points: Sequence[float] | None,
    typical: Mapping[str, Typical],
) -> list[int]:
    """The positions (in ``names``) of the features :func:`reasons` shows, in the order it shows them."""
    if order is None:
        order = np.argsort(-np.asarray(contributions, dtype=float), kind="stable").tolist()
    facts: set[str] = set()  # one fact, one reason: an event family's counts and recency give one
    raising = _top(
        order, names, contributions, points, MAX_RAISING, sign=1.0, values=values, typical=typical, facts=facts
    )
    lowering = _top(
        order[::-1], names, contributions, points, MAX_LOWERING, sign=-1.0, values=values, typical=typical, facts=facts
    )
    return [*raising, *lowering]


def _top(
    order: Sequence[int],
    names: Sequence[str],
    contributions: Sequence[float],
    points: Sequence[float] | None,
    n: int,
    *,
    sign: float,
    values: Sequence[Any],
    typical: Mapping[str, Typical],
    facts: set[str],
) -> list[int]:
    """The first ``n`` features of ``order`` that may be shown: past the threshold, not protected, not 0.0
    points, not a value that reads the same as the stage's typical one (no reason at all), not a second
    view of a fact already given (``facts``, updated), and never "nothing adverse on record" as raising risk.

    ``order`` runs from the largest contribution in the direction ``sign`` (+1 raising, -1 lowering).
    """
    out: list[int] = []
    for k in order:
        if sign * contributions[k] <= MIN_CONTRIBUTION:
            break
        name = names[k]
        if name in PROTECTED_ATTRIBUTES or (points is not None and abs(points[k]) < MIN_POINTS):
            continue
        fact, value = _FACT[name], _key(values[k])
        if fact in facts or _same_as_typical(name, value, typical.get(name)):
            continue
        if sign > 0 and _no_record(name, value):  # "nothing on record" never raises risk (a tree's SHAP may say so)
            continue
        facts.add(fact)
        out.append(k)
        if len(out) == n:
            break
    return out


_FACT = {name: spec.fact_key for name, spec in CATALOG.items()}


def _key(value: Any) -> Any:
    """A value as a cache key: every missing value one key, -0.0 and 0.0 one key."""
    if isinstance(value, float):
        if value != value:
            return None
        if value == 0.0:
            return 0.0
    return value


@functools.lru_cache(maxsize=1 << 16)
def _no_record(name: str, value: Any) -> bool:
    return CATALOG[name].is_no_record(value)


@functools.lru_cache(maxsize=1 << 16)
def _same_as_typical(name: str, value: Any, typical: Typical | None) -> bool:
    return CATALOG[name].equals_typical(value, typical)


@functools.lru_cache(maxsize=1 << 16)
def _phrase(
    name: str, value: Any, lang: Lang, typical: Typical | None
) -> tuple[str, float | str | bool | None, str, str | None, str]:
    """Label, JSON value, value in words, typical value in words and sentence of one value (values repeat a lot)."""
    spec = CATALOG[name]
    return (
        spec.label(lang),
        _plain(value, spec.kind),
        spec.value_text(value, lang),
        spec.typical_text(value, typical, lang),
        spec.describe(value, lang, typical=typical),
    )


def _event_counts(events: Mapping[str, Any], assessments: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Per assessment (of :func:`request_tables`): events dated before ``as_of`` (the features see them) and on it."""
    row, date = events["row"], events["date"]
    as_of = assessments["as_of"][row]
    n = len(assessments["as_of"])
    return np.bincount(row[date < as_of], minlength=n), np.bincount(row[date == as_of], minlength=n)


def _plain(value: Any, kind: str | None = None) -> float | str | bool | None:
    """A feature value as JSON shows it: None for missing, bool for flags, str for categories."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if kind == "flag":
        return bool(value)
    if isinstance(value, (np.floating, float, np.integer, int)):
        return float(value)
    return str(value)


def requests_from_tables(
    persons: pd.DataFrame, events: pd.DataFrame, stage: Stage | str, *, lang: str = "zh"
) -> list[dict[str, Any]]:
    """JSON-ready score requests for every person in ``persons`` at the stage's assessment date.

    Each carries the person's events dated up to that date (what a case-management export would
    send). Used by the demo, the tests and the benchmark.
    """
    from features.pipeline import assessment_dates

    stage = Stage(stage)
    as_of = dict(zip(persons["person_id"].astype(str), assessment_dates(persons, stage)["as_of"], strict=True))
    ev = events.assign(person_id=events["person_id"].astype(str))
    ev = ev[ev["date"].to_numpy() <= ev["person_id"].map(as_of).to_numpy()]
    by_person: dict[str, list[dict[str, Any]]] = {}
    for pid, date, etype, value in zip(
        ev["person_id"],
        ev["date"].dt.strftime("%Y-%m-%d"),
        ev["event_type"].astype(str),
        ev["value"].to_numpy(dtype=float),
        strict=True,
    ):
        by_person.setdefault(pid, []).append(
            {"date": date, "event_type": etype}
            if np.isnan(value)
            else {"date": date, "event_type": etype, "value": float(value)}
        )
    out = []
    for rec in persons[PERSON_COLUMNS].to_dict("records"):
        person = {
            k: (v.strftime("%Y-%m-%d") if isinstance(v, pd.Timestamp) else v.item() if isinstance(v, np.generic) else v)
            for k, v in rec.items()
        }
        person["person_id"] = str(person["person_id"])
        out.append(
            {"person": person, "events": by_person.get(person["person_id"], []), "stage": stage.value, "lang": lang}
        )
    return out
