"""The promotion gate: a version becomes its stage's ``@champion`` only when measurably no worse.

The candidate, the logistic baseline (its probabilities are logged with the test rows) and the
current champion are scored on the same rows, the candidate run's logged test rows. The criteria
(``training/promotion.yaml``): the candidate flags somebody and not everybody at the strict-tier
cut-off; its ECE and its fairness checks (:class:`evaluation.FairnessRule`: calibration within
groups, and the FPR and FNR gaps where measurable) stay within limits; one more adverse fact never
lowers anybody's risk (:func:`evaluation.face_validity`, on a seeded synthetic cohort); and against
the baseline and the champion, the paired bootstrap interval of the difference
in AUC, Brier and log loss stays within the margin on the worse side. A version that fails any
criterion gets ``@challenger``. The decision is written on the model version as readable tags
(``gate_decision``, one ``gate.<criterion>`` per criterion) and appended to its description.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from evaluation import (
    Difference,
    classification_metrics,
    ece_by_chance,
    face_validity,
    fairness_checks,
    flag_counts,
    paired_bootstrap,
    with_gate_decision,
)
from features.settings import Settings, get_settings
from features.synthetic import CohortConfig, generate_cohort
from features.vocab import Stage
from models.estimator import StageEstimator
from models.pyfunc import load_stage_model
from models.tier_policy import TierPolicy
from training.config import GateConfig
from training.tracking import BASELINE_COLUMN, EVAL_ROWS, configure_mlflow, split_eval_rows

log = logging.getLogger(__name__)
_MARGIN = {"roc_auc": "auc_margin", "brier": "brier_margin", "log_loss": "log_loss_margin"}


@dataclass
class Criterion:
    name: str
    passed: bool
    value: float
    limit: float
    message: str
    warning: bool = False  # passed, but with something a modeler must read (e.g. a gap too small to measure)

    @property
    def verdict(self) -> str:
        if not self.passed:
            return "FAIL"
        return "warn" if self.warning else "pass"


@dataclass
class GateDecision:
    stage: str
    model_name: str
    version: str
    promoted: bool
    alias: str
    champion_version: str | None
    criteria: list[Criterion] = field(default_factory=list)
    model_kind: str = ""

    @property
    def failed(self) -> list[Criterion]:
        return [c for c in self.criteria if not c.passed]

    def summary(self) -> str:
        """One line: promoted, or refused and on which criteria."""
        if self.promoted:
            return f"promoted to @{self.alias}: all {len(self.criteria)} criteria pass"
        return f"kept as @{self.alias}: failed {', '.join(c.name for c in self.failed)}"

    def describe(self) -> str:
        """The decision and every criterion on its own line (plain text: brackets are literal)."""
        kind = f" [{self.model_kind}]" if self.model_kind else ""
        head = f"{self.model_name} version {self.version}{kind} -> @{self.alias}" + (
            f" (champion was version {self.champion_version})" if self.champion_version else " (first model)"
        )
        return "\n".join([head, *(f"  [{c.verdict}] {c.message}" for c in self.criteria)])

    def tags(self, gate_version: str) -> dict[str, str]:
        """Readable tags of the model version: the decision, then one per criterion."""
        tags = {
            "gate_decision": self.summary(),
            "gate_promoted": str(self.promoted).lower(),
            "gate_version": gate_version,
            "gate_against_champion": self.champion_version or "none",
        }
        tags.update({f"gate.{c.name}": f"{c.verdict}: {c.message}" for c in self.criteria})
        return tags


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


def comparative_criteria(differences: dict[str, Difference], against: str, gate: GateConfig) -> list[Criterion]:
    """Non-inferiority against ``against`` (baseline or champion) for each compared metric."""
    out = []
    for metric, d in differences.items():
        margin = getattr(gate.comparison, _MARGIN[metric])
        bound, rule = (d.low, f">= -{margin}") if metric == "roc_auc" else (d.high, f"<= +{margin}")
        out.append(
            Criterion(
                f"{metric}_vs_{against}",
                d.no_worse(margin),
                bound,
                margin,
                f"vs {against}: {d.describe()}; worse-side bound {bound:+.4f} {rule}",
            )
        )
    return out


def face_validity_criterion(model: StageEstimator, stage: Stage | str, gate: GateConfig) -> Criterion:
    """One more adverse fact never lowers anybody's risk: the metamorphic check on a seeded synthetic cohort."""
    cfg = gate.face_validity
    cohort = generate_cohort(CohortConfig(persons=cfg.persons, seed=cfg.seed))
    check = face_validity(model, cohort.persons, cohort.events, stage=stage, tolerance=cfg.tolerance)
    return Criterion("face_validity", check.passed, float(check.reversals), 0.0, check.describe())


def judge(
    y: np.ndarray,
    prob: np.ndarray,
    meta: pd.DataFrame,
    *,
    threshold: float,
    gate: GateConfig,
    baseline: np.ndarray | None = None,
    champion: np.ndarray | None = None,
) -> list[Criterion]:
    """Every criterion of the gate for a candidate's probabilities on its test rows."""
    criteria = absolute_criteria(y, prob, meta, threshold=threshold, gate=gate)
    cfg = gate.comparison
    for against, reference in (("baseline", baseline), ("champion", champion)):
        if reference is not None:
            diffs = paired_bootstrap(y, prob, reference, resamples=cfg.resamples, level=cfg.level, seed=cfg.seed)
            criteria += comparative_criteria(diffs, against, gate)
    return criteria


def promote(
    stage: Stage | str, *, version: str | None = None, settings: Settings | None = None, gate: GateConfig | None = None
) -> GateDecision:
    """Apply the gate to ``version`` (default: the latest) of the stage's registered model."""
    settings = settings or get_settings()
    gate = gate or GateConfig.load()
    client = configure_mlflow(settings)
    stage = Stage(stage)
    name = settings.model_name(stage)
    if version is None:
        versions = client.search_model_versions(f"name='{name}'")
        if not versions:
            raise LookupError(f"no registered versions of {name}: train first")
        version = str(max(int(v.version) for v in versions))
    mv = client.get_model_version(name, version)
    rows_path = mlflow.artifacts.download_artifacts(run_id=mv.run_id, artifact_path=EVAL_ROWS)
    X, y, meta = split_eval_rows(pd.read_parquet(rows_path))
    candidate = load_stage_model(f"models:/{name}/{version}")
    threshold = TierPolicy.load().strict_cutoff(stage.value, candidate.risk_reference)
    champion_version = _alias_version(client, name, settings.champion_alias)
    if champion_version == version:
        champion_version = None
    champion = load_stage_model(f"models:/{name}/{champion_version}").predict_proba(X) if champion_version else None
    baseline = meta[BASELINE_COLUMN].to_numpy(dtype=float) if BASELINE_COLUMN in meta else None
    criteria = judge(
        y, candidate.predict_proba(X), meta, threshold=threshold, gate=gate, baseline=baseline, champion=champion
    )
    criteria.append(face_validity_criterion(candidate, stage, gate))
    promoted = all(c.passed for c in criteria)
    alias = settings.champion_alias if promoted else settings.challenger_alias
    client.set_registered_model_alias(name, alias, version)
    decision = GateDecision(
        stage.value,
        name,
        version,
        promoted,
        alias,
        champion_version,
        criteria,
        model_kind=getattr(candidate, "kind", ""),
    )
    _record(client, mv, decision, gate)
    log.info(decision.describe())
    return decision


def _record(client: MlflowClient, mv: Any, decision: GateDecision, gate: GateConfig) -> None:
    """The decision as readable tags and as the "Promotion gate" section of the version's model card."""
    for key, value in decision.tags(gate.version).items():
        client.set_model_version_tag(decision.model_name, decision.version, key, value)
    record = {
        "promoted": decision.promoted,
        "gate_version": gate.version,
        "against": decision.champion_version,
        "criteria": [asdict(c) for c in decision.criteria],
    }
    card = with_gate_decision(mv.description or "", record)
    client.update_model_version(decision.model_name, decision.version, description=card)


def _alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


__all__ = [
    "Criterion",
    "GateDecision",
    "absolute_criteria",
    "comparative_criteria",
    "judge",
    "promote",
    "silence_criterion",
]
