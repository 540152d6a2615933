"""The promotion gate: a version becomes its stage's ``@champion`` only when measurably no worse.

Rows. The candidate is judged on its run's logged test rows: persons that neither it nor the logistic
baseline (fitted on the same split, its probabilities logged with the rows) was trained, tuned or
calibrated on. The current champion is compared on those of the rows whose persons it did not see
either: the persons its own run recorded (``training.registry.recorded_persons``) are left out. With
fewer such rows than ``comparison.min_rows``, or when the champion did not record its persons, the
champion comparison is a failing criterion that says so, never a comparison on rows it learnt from.

Criteria (``training/promotion.yaml``): the candidate flags somebody and not everybody at the
strict-tier cut-off; its ECE and its fairness checks (:class:`evaluation.FairnessRule`: calibration
within groups, and the FPR and FNR gaps where measurable) stay within limits; one more adverse fact
never lowers anybody's risk (:func:`evaluation.face_validity`, on a seeded synthetic cohort); and
against the baseline and the champion, the paired bootstrap interval of the difference in AUC, Brier
and log loss stays within the margin on the worse side. A candidate that is
the baseline itself is not compared with it, and the decision says so. A version that fails any
criterion gets ``@challenger``. The decision is written on the model version as readable tags
(``gate_decision``, one ``gate.<criterion>`` per criterion, when and by whom), as an entry of its promotion
history (:mod:`training.history`, kept across decisions), and into its model card, in the registry, the run
and the report folder alike.

Failing closed. Reading the registry is part of the decision: only an alias that does not exist
means "no champion". Any other failure to read the champion, the candidate, its rows or the persons
is a :class:`GateError`, and nothing is promoted or recorded. :func:`decide` makes the decision
without writing anything; :func:`apply` records it (tags and card), then sets the alias.

Override. A refused decision can be promoted by a named user with a written reason
(:meth:`GateDecision.overridden`); the reason, the user and the failed criteria go into the tags and
the card. The audit trail's record of it is written by ``riskctl promote --override-reason``
(serving/cli), before the decision is applied.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from evaluation import (
    Difference,
    classification_metrics,
    ece_by_chance,
    face_validity,
    fairness_checks,
    flag_counts,
    paired_bootstrap,
    relink_figures,
    with_gate_decision,
)
from features.settings import Settings, get_settings
from features.synthetic import CohortConfig, generate_cohort
from features.vocab import Stage
from models.estimator import StageEstimator
from models.pyfunc import load_stage_model
from models.tier_policy import TierPolicy
from training.cards import REPORT_DIR_TAG, local_link, publish_card
from training.config import GateConfig
from training.decision import Criterion, GateDecision, Override
from training.history import add_entry
from training.registry import PERSONS, champion_of, recorded_persons
from training.tracking import BASELINE_COLUMN, EVAL_ROWS, configure_mlflow, split_eval_rows

if TYPE_CHECKING:
    from training.tracking import TrainedVersion

log = logging.getLogger(__name__)
_MARGIN = {"roc_auc": "auc_margin", "brier": "brier_margin", "log_loss": "log_loss_margin"}


class GateError(RuntimeError):
    """The gate could not decide or record its decision (the registry or an artifact could not be read or
    written). Nothing was promoted; the message names what failed."""


@dataclass(frozen=True)
class Reference:
    """A model the candidate is compared with, on which of its test rows, or why there is no comparison.

    ``prob`` covers every test row and ``rows`` (a boolean mask) picks the rows the comparison may use
    (``None``: all of them); ``left_out`` names what the mask left out, for the message. ``absent`` says
    why nothing can be compared (a failing criterion); ``itself`` why nothing needs to be, because the
    candidate is this model (a passing criterion without figures).
    """

    prob: np.ndarray | None = None
    rows: np.ndarray | None = None
    left_out: str = ""
    absent: str = ""
    itself: str = ""


def silence_criterion(y: np.ndarray, prob: np.ndarray, threshold: float) -> Criterion:
    """A model that flags nobody (or everybody) at the cut-off tells a caseworker nothing."""
    counts = flag_counts(y, prob, threshold)
    flagged, n = int(counts["flagged"]), int(counts["n"])
    ok = 0 < flagged < n
    what = "flags nobody" if flagged == 0 else ("flags everybody" if flagged == n else "flags")
    hits, positives = int(counts["positives_flagged"]), int(np.sum(y))
    precision = f"{hits / flagged:.1%}" if flagged else "n/a"
    recall = f"{hits / positives:.1%}" if positives else "n/a"
    return Criterion(
        "flags",
        ok,
        counts["share_flagged"],
        threshold,
        f"{what} by risk at p >= {threshold:g}: {flagged:,} of {n:,} ({counts['share_flagged']:.2%}); "
        f"precision {precision}, recall {recall}",
    )


def ece_criterion(y: np.ndarray, prob: np.ndarray, ece: float, gate: GateConfig) -> Criterion:
    """ECE within the limit, or within what a perfectly calibrated score reaches by chance on these rows.

    On a few hundred rows a perfect score's ECE often exceeds 0.02 (:func:`evaluation.ece_by_chance`, its
    95th percentile): an ECE above the limit refuses only when it is also above that level; within it,
    the criterion passes with a warning that the rows are too few to show the limit is met.
    """
    if ece <= gate.ece_limit:
        return Criterion("ece", True, ece, gate.ece_limit, f"ECE {ece:.4f} <= limit {gate.ece_limit}")
    chance = ece_by_chance(prob, seed=gate.comparison.seed)
    if ece <= chance:
        return Criterion(
            "ece",
            True,
            ece,
            gate.ece_limit,
            f"ECE {ece:.4f} above limit {gate.ece_limit} but within what a perfectly calibrated score reaches "
            f"by chance on {len(y):,} rows ({chance:.4f}, 95th percentile): too few rows to tell",
            warning=True,
        )
    return Criterion(
        "ece",
        False,
        ece,
        gate.ece_limit,
        f"ECE {ece:.4f} > limit {gate.ece_limit}, and above what a perfectly calibrated score reaches by chance "
        f"on {len(y):,} rows ({chance:.4f}, 95th percentile)",
    )


def absolute_criteria(
    y: np.ndarray, prob: np.ndarray, meta: pd.DataFrame, *, threshold: float, gate: GateConfig
) -> list[Criterion]:
    """Criteria on the candidate alone: it flags somebody, ECE, and the fairness checks.

    The fairness checks (:func:`evaluation.fairness_checks`, ``gate.fairness``) are the report's:
    calibration within groups, always applied, and the FPR and FNR gaps at the cut-off, which warn
    instead of refusing when too few people are flagged in a group to measure them.
    """
    ece = classification_metrics(y, prob, threshold=threshold)["ece"]
    checks = fairness_checks(
        y, prob, groups=meta[[g for g in gate.fairness.groupings if g in meta]], threshold=threshold, rule=gate.fairness
    )
    return [
        silence_criterion(y, prob, threshold),
        ece_criterion(y, prob, ece, gate),
        *(Criterion(v.name, v.passed, v.value, v.limit, v.message, warning=v.warning) for v in checks.verdicts()),
    ]


def comparative_criteria(
    differences: dict[str, Difference], against: str, gate: GateConfig, *, rows: str = ""
) -> list[Criterion]:
    """Non-inferiority against ``against`` (baseline or champion) for each compared metric.

    ``rows`` says which rows were compared ("3,256 rows"), for the message.
    """
    out = []
    on = f"; on {rows}" if rows else ""
    for metric, d in differences.items():
        margin = getattr(gate.comparison, _MARGIN[metric])
        bound, limit, rule = (d.low, -margin, ">=") if metric == "roc_auc" else (d.high, margin, "<=")
        out.append(
            Criterion(
                f"{metric}_vs_{against}",
                d.no_worse(margin),
                bound,
                margin,
                f"vs {against}: {d.describe()}; worse-side bound {_beside(bound, limit)} {rule} {limit:+g}{on}",
            )
        )
    return out


def _beside(value: float, limit: float) -> str:
    """``value`` with 4 decimals, or as many more as it takes not to print it as ``limit`` when it is not."""
    for digits in range(4, 9):
        if value == limit or round(value, digits) != round(limit, digits):
            return f"{value:+.{digits}f}"
    return f"{value:+.8f}"


def face_validity_criterion(model: StageEstimator, stage: Stage | str, gate: GateConfig) -> Criterion:
    """One more adverse fact never lowers anybody's risk: the metamorphic check on a seeded synthetic cohort."""
    cfg = gate.face_validity
    cohort = generate_cohort(CohortConfig(persons=cfg.persons, seed=cfg.seed))
    check = face_validity(model, cohort.persons, cohort.events, stage=stage, tolerance=cfg.tolerance)
    return Criterion("face_validity", check.passed, float(check.reversals), 0.0, check.describe())


def reference_criteria(
    y: np.ndarray, prob: np.ndarray, reference: Reference, against: str, gate: GateConfig
) -> list[Criterion]:
    """The comparison with one reference model, or one criterion saying why there is none.

    The champion is compared only on at least ``comparison.min_rows`` rows (``training/promotion.yaml``
    says why); fewer, or rows of a single outcome, fail with the count instead of figures.
    """
    name = f"vs_{against}"
    if reference.itself:
        return [Criterion(name, True, float("nan"), float("nan"), f"vs {against}: not compared: {reference.itself}")]
    if reference.absent or reference.prob is None:
        why = reference.absent or "no probabilities of it"
        return [Criterion(name, False, float("nan"), float("nan"), f"vs {against}: cannot compare: {why}")]
    if len(reference.prob) != len(y):
        raise ValueError(f"the {against}'s probabilities cover {len(reference.prob)} rows, the test rows {len(y)}")
    rows = np.ones(len(y), dtype=bool) if reference.rows is None else np.asarray(reference.rows, dtype=bool)
    n, positives = int(rows.sum()), int(y[rows].sum())
    need = gate.comparison.min_rows if against == "champion" else 0
    left = f" ({reference.left_out} left out)" if reference.left_out else ""
    if n < need or positives in (0, n):
        why = (
            f"only {n:,} test rows of persons no compared model saw{left}, fewer than the {need:,} a comparison "
            "needs (comparison.min_rows)"
            if n < need
            else f"the {n:,} rows{left} hold a single outcome"
        )
        return [Criterion(name, False, float(n), float(need), f"vs {against}: not compared: {why}")]
    cfg = gate.comparison
    diffs = paired_bootstrap(
        y[rows], prob[rows], reference.prob[rows], resamples=cfg.resamples, level=cfg.level, seed=cfg.seed
    )
    return comparative_criteria(diffs, against, gate, rows=f"{n:,} rows{left}")


def judge(
    y: np.ndarray,
    prob: np.ndarray,
    meta: pd.DataFrame,
    *,
    threshold: float,
    gate: GateConfig,
    baseline: np.ndarray | Reference | None = None,
    champion: np.ndarray | Reference | None = None,
) -> list[Criterion]:
    """Every criterion of the gate for a candidate's probabilities on its test rows.

    ``baseline`` and ``champion`` are probabilities on every test row (compared on all of them) or a
    :class:`Reference`; ``None``: there is no such model (no champion yet), and no criterion about it.
    """
    criteria = absolute_criteria(y, prob, meta, threshold=threshold, gate=gate)
    for against, reference in (("baseline", baseline), ("champion", champion)):
        if reference is not None:
            ref = reference if isinstance(reference, Reference) else Reference(prob=np.asarray(reference, dtype=float))
            criteria += reference_criteria(y, prob, ref, against, gate)
    return criteria


@contextmanager
def _reading(what: str) -> Iterator[None]:
    """Any failure inside is a :class:`GateError` naming ``what`` could not be read."""
    try:
        yield
    except GateError:
        raise
    except Exception as err:  # an unreachable server, a missing artifact, a broken file: never "none"
        message = getattr(err, "message", None) or str(err)
        raise GateError(f"cannot read {what}: {type(err).__name__}: {message}") from err


def decide(
    stage: Stage | str, *, version: str | None = None, settings: Settings | None = None, gate: GateConfig | None = None
) -> GateDecision:
    """The gate's decision on ``version`` (default: the latest) of the stage's model; nothing is written.

    Raises
    ------
    GateError
        If the registry, the candidate, its test rows, the champion or a run's persons cannot be read.
    LookupError
        If the stage's model has no registered version.
    """
    settings = settings or get_settings()
    gate = gate or GateConfig.load()
    stage = Stage(stage)
    name = settings.model_name(stage)
    with _reading(f"the registered versions of {name}"):
        client = configure_mlflow(settings)
        versions = [] if version is not None else client.search_model_versions(f"name='{name}'")
    if version is None:
        if not versions:
            raise LookupError(f"no registered versions of {name}: train first")
        version = str(max(int(v.version) for v in versions))
    with _reading(f"{name} version {version}, its test rows ({EVAL_ROWS}) or its model"):
        mv = client.get_model_version(name, version)
        rows_path = mlflow.artifacts.download_artifacts(run_id=mv.run_id, artifact_path=EVAL_ROWS)
        X, y, meta = split_eval_rows(pd.read_parquet(rows_path))
        candidate = load_stage_model(f"models:/{name}/{version}")
        own = recorded_persons(client, str(mv.run_id))
    ids = meta["person_id"].astype(str) if "person_id" in meta else None
    if own is not None and ids is not None and ids.isin(own.seen).any():
        raise GateError(
            f"{name} version {version}: {int(ids.isin(own.seen).sum()):,} of its logged test rows are of persons "
            f"it was trained, tuned or calibrated on ({PERSONS}): its test rows cannot be trusted"
        )
    threshold = TierPolicy.load().strict_cutoff(stage.value, candidate.risk_reference)
    with _reading(f"the @{settings.champion_alias} of {name}"):
        holder = champion_of(client, name, settings.champion_alias)
    champion_version = None if holder is None else str(holder.version)
    if champion_version == version:
        champion_version = None
    prob = candidate.predict_proba(X)
    baseline = _baseline_reference(meta, prob, candidate)
    champion = _champion_reference(client, name, champion_version, X, ids) if champion_version else None
    criteria = judge(y, prob, meta, threshold=threshold, gate=gate, baseline=baseline, champion=champion)
    criteria.append(face_validity_criterion(candidate, stage, gate))
    passed = all(c.passed for c in criteria)
    compared_rows = champion.rows if champion is not None and ids is not None else None
    return GateDecision(
        stage.value,
        name,
        version,
        passed,
        settings.champion_alias if passed else settings.challenger_alias,
        champion_version,
        criteria,
        model_kind=getattr(candidate, "kind", ""),
        gate_version=gate.version,
        compared=_compared(champion),
        compared_persons=frozenset() if compared_rows is None or ids is None else frozenset(ids[compared_rows]),
    )


def _baseline_reference(meta: pd.DataFrame, prob: np.ndarray, candidate: Any) -> Reference:
    """The logistic baseline of the candidate's run, as logged with the test rows, or why it cannot be used."""
    if BASELINE_COLUMN not in meta:
        return Reference(absent=f"the logged test rows have no baseline probabilities (column meta_{BASELINE_COLUMN})")
    base = meta[BASELINE_COLUMN].to_numpy(dtype=float)
    if not np.all(np.isfinite(base)):
        return Reference(absent=f"{int((~np.isfinite(base)).sum()):,} test rows lack the baseline's probability")
    if getattr(candidate, "kind", "") == "logistic" and np.allclose(prob, base, rtol=0, atol=1e-12):
        return Reference(itself="the candidate is the logistic baseline itself (the same probability on every row)")
    return Reference(prob=base)


def _champion_reference(
    client: MlflowClient, name: str, version: str, X: pd.DataFrame, ids: pd.Series | None
) -> Reference:
    """The champion's probabilities, to be compared on the test rows of persons it did not see."""
    with _reading(f"the champion, {name} version {version}"):
        mv = client.get_model_version(name, version)
        persons = recorded_persons(client, str(mv.run_id))
        model = load_stage_model(f"models:/{name}/{version}")
    if persons is None:
        return Reference(
            absent=f"version {version} did not record the persons it was trained, tuned and calibrated on "
            f"({PERSONS}), so no test row is known to be unseen by it"
        )
    if ids is None:
        return Reference(absent="the logged test rows carry no person ids (meta_person_id)")
    seen = ids.isin(persons.seen).to_numpy()
    return Reference(
        prob=model.predict_proba(X),
        rows=~seen,
        left_out=f"{int(seen.sum()):,} rows of persons version {version} was trained, tuned or calibrated on",
    )


def _compared(champion: Reference | None) -> str:
    """The champion comparison's rows in words."""
    if champion is None:
        return ""
    if champion.rows is None:
        return "the champion is not compared"
    n, total = int(champion.rows.sum()), len(champion.rows)
    return f"champion compared on {n:,} of {total:,} test rows ({champion.left_out} left out)"


def apply(decision: GateDecision, *, settings: Settings | None = None) -> GateDecision:
    """Record ``decision`` on its version (tags, the card's gate section), then set its alias.

    A version promoted to ``@champion`` stops being ``@challenger`` (an earlier refusal's alias).

    Raises
    ------
    GateError
        If the registry cannot be written; the message says what was and was not changed.
    """
    settings = settings or get_settings()
    name, version = decision.model_name, decision.version
    with _writing(f"{name} version {version}: the decision was not recorded and no alias was changed"):
        client = configure_mlflow(settings)
        mv = client.get_model_version(name, version)
        _record(client, mv, decision)
    recorded = f"{name} version {version}: the decision is recorded on the version, but @{decision.alias} is not set"
    with _writing(recorded):
        client.set_registered_model_alias(name, decision.alias, version)
        if decision.promoted and settings.challenger_alias in (mv.aliases or []):
            client.delete_registered_model_alias(name, settings.challenger_alias)
    log.info(decision.describe())
    return decision


@contextmanager
def _writing(consequence: str) -> Iterator[None]:
    try:
        yield
    except Exception as err:
        message = getattr(err, "message", None) or str(err)
        raise GateError(f"{consequence}: {type(err).__name__}: {message}") from err


def promote(
    stage: Stage | str, *, version: str | None = None, settings: Settings | None = None, gate: GateConfig | None = None
) -> GateDecision:
    """Apply the gate to ``version`` (default: the latest) of the stage's registered model: decide, then record."""
    return apply(decide(stage, version=version, settings=settings, gate=gate), settings=settings)


def promote_trained(
    trained: TrainedVersion, *, settings: Settings | None = None, gate: GateConfig | None = None
) -> list[GateDecision]:
    """Judge a training run's candidate; when the gate refuses it, judge the alternative registered beside it.

    The alternative (the other model kind) is promoted if it passes every criterion on its own, against
    the same champion; otherwise both stay ``@challenger``.
    """
    decisions = [promote(trained.stage, version=trained.version, settings=settings, gate=gate)]
    if not decisions[0].promoted and trained.alternative is not None:
        decisions.append(promote(trained.stage, version=trained.alternative.version, settings=settings, gate=gate))
    return decisions


def _record(client: MlflowClient, mv: Any, decision: GateDecision) -> None:
    """The decision as readable tags, as an entry of the version's promotion history, and as the "Promotion
    gate" section of its model card, written to the registry, the run and the report folder alike
    (:func:`training.cards.publish_card`).

    Tags of an earlier decision on the version that this one does not set (a criterion no longer judged,
    an earlier override, a rollback) are removed, so the tags say this decision only; the history keeps
    every decision (:mod:`training.history`).
    """
    tags = decision.tags()
    for key in sorted(set(mv.tags or {}) - set(tags)):
        if key.startswith(("gate.", "gate_override_", "gate_rolled_back")):
            client.delete_model_version_tag(decision.model_name, decision.version, key)
    for key, value in tags.items():
        client.set_model_version_tag(decision.model_name, decision.version, key, value)
    add_entry(client, decision.model_name, decision.version, mv.tags or {}, decision.history_entry())
    card = with_gate_decision(relink_figures(mv.description or "", local_link), decision.record())
    folder = (mv.tags or {}).get(REPORT_DIR_TAG)
    publish_card(
        client,
        name=decision.model_name,
        version=decision.version,
        run_id=str(mv.run_id),
        card=card,
        report_dir=Path(folder) if folder else None,
    )


__all__ = [
    "Criterion",
    "GateDecision",
    "GateError",
    "Override",
    "Reference",
    "absolute_criteria",
    "apply",
    "comparative_criteria",
    "decide",
    "judge",
    "promote",
    "promote_trained",
    "reference_criteria",
    "silence_criterion",
]
