"""The promotion gate: a version becomes its stage's ``@champion`` only when measurably no worse.

Both the candidate and the current champion score the same evaluation rows (the candidate run's
logged test rows); the criteria and their limits come from ``training/promotion.yaml``. A version
that fails any criterion gets ``@challenger`` and the decision names the failed criteria. The
decision is also written as tags on the model version, so the registry records why.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from evaluation import classification_metrics, group_metrics, with_gate_decision
from features.settings import Settings, get_settings
from features.vocab import Stage
from models.pyfunc import load_stage_model
from models.tier_policy import TierPolicy
from training.config import GateConfig
from training.tracking import EVAL_ROWS, configure_mlflow, split_eval_rows

log = logging.getLogger(__name__)


@dataclass
class Criterion:
    name: str
    passed: bool
    value: float
    limit: float
    message: str


@dataclass
class GateDecision:
    stage: str
    model_name: str
    version: str
    promoted: bool
    alias: str
    champion_version: str | None
    criteria: list[Criterion] = field(default_factory=list)

    @property
    def failed(self) -> list[Criterion]:
        return [c for c in self.criteria if not c.passed]

    def describe(self) -> str:
        head = (f"{self.model_name} version {self.version} -> @{self.alias}"
                + (f" (champion was version {self.champion_version})" if self.champion_version else " (first model)"))
        lines = [head] + [f"  [{'pass' if c.passed else 'FAIL'}] {c.message}" for c in self.criteria]
        return "\n".join(lines)


def _scores(model, X, y, meta, threshold: float, gate: GateConfig) -> dict[str, float]:
    prob = model.predict_proba(X)
    metrics = classification_metrics(y, prob, threshold=threshold)
    groups = meta[[g for g in gate.fairness_groups if g in meta]]
    metrics["largest_fpr_gap"] = group_metrics(y, prob, groups=groups, threshold=threshold,
                                               min_group_size=gate.min_group_size).largest_fpr_gap
    return metrics


def judge(candidate: dict[str, float], champion: dict[str, float] | None, gate: GateConfig) -> list[Criterion]:
    """The gate's criteria for a candidate's metrics against the champion's on the same rows."""
    c = candidate
    out = [
        Criterion("ece", c["ece"] <= gate.ece_limit, c["ece"], gate.ece_limit,
                  f"ECE {c['ece']:.4f} <= limit {gate.ece_limit}"),
        Criterion("fpr_gap", c["largest_fpr_gap"] <= gate.fpr_gap_limit, c["largest_fpr_gap"], gate.fpr_gap_limit,
                  f"largest FPR gap between groups {c['largest_fpr_gap']:.4f} <= limit {gate.fpr_gap_limit}"),
    ]
    if champion is not None:
        brier_limit = champion["brier"] + gate.brier_tolerance
        auc_limit = champion["roc_auc"] - gate.auc_tolerance
        out.insert(0, Criterion("brier", c["brier"] <= brier_limit, c["brier"], brier_limit,
                                f"Brier {c['brier']:.5f} <= champion {champion['brier']:.5f} + {gate.brier_tolerance}"))
        out.insert(1, Criterion("auc", c["roc_auc"] >= auc_limit, c["roc_auc"], auc_limit,
                                f"AUC {c['roc_auc']:.4f} >= champion {champion['roc_auc']:.4f} - {gate.auc_tolerance}"))
    return out


def promote(stage: Stage | str, *, version: str | None = None, settings: Settings | None = None,
            gate: GateConfig | None = None) -> GateDecision:
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
    threshold = TierPolicy.load().strict_cutoff(stage.value)
    candidate = _scores(load_stage_model(f"models:/{name}/{version}"), X, y, meta, threshold, gate)
    champion_version = _alias_version(client, name, settings.champion_alias)
    if champion_version == version:
        champion_version = None
    champion_scores = (_scores(load_stage_model(f"models:/{name}/{champion_version}"), X, y, meta, threshold, gate)
                       if champion_version else None)
    criteria = judge(candidate, champion_scores, gate)
    promoted = all(c.passed for c in criteria)
    alias = settings.champion_alias if promoted else settings.challenger_alias
    client.set_registered_model_alias(name, alias, version)
    decision = GateDecision(stage.value, name, version, promoted, alias, champion_version, criteria)
    record = {"promoted": promoted, "gate_version": gate.version, "against": champion_version,
              "criteria": [asdict(c) for c in criteria]}
    client.set_model_version_tag(name, version, "gate_decision", json.dumps(record, default=float))
    if mv.description:  # the model card: its "Promotion gate" section now gives the decision
        client.update_model_version(name, version, description=with_gate_decision(mv.description, record))
    log.info(decision.describe())
    return decision


def _alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


__all__ = ["Criterion", "GateDecision", "judge", "promote"]
