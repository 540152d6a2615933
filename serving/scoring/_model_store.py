"""From the MLflow registry to the BentoML model store, and back out as a served model.

:func:`import_champions` resolves ``models:/reoffence-<stage>@champion`` in MLflow and saves the
fitted stage model (a :class:`~models.estimator.StageEstimator`: booster or logistic) into the
BentoML model store as ``reoffence-<stage>``, with the registry version, run id, model kind, test
metrics and gate decision as metadata. The service
declares these BentoML models at class level, so ``bentoml build`` packs them into the Bento and
the service never needs MLflow at run time. :func:`load_served` reads one back.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib

from features.settings import Settings
from features.vocab import DEFAULT_HORIZON_MONTHS, Stage
from models.estimator import StageEstimator
from serving.scoring.schemas import StageModelInfo

log = logging.getLogger(__name__)
ARTIFACT = "stage_model.joblib"
_METRICS = (
    "roc_auc",
    "pr_auc",
    "brier",
    "ece",
    "calibration_slope",
    "share_flagged",
    "precision",
    "recall",
    "largest_fpr_gap",
)


@dataclass(frozen=True)
class ServedModel:
    """A stage model as served: the fitted object and where it came from."""

    stage: Stage
    model: StageEstimator
    name: str
    version: str
    bento_tag: str
    metadata: dict[str, Any]

    @property
    def horizon_months(self) -> float:
        return float(self.metadata.get("horizon_months") or DEFAULT_HORIZON_MONTHS[self.stage])


def bento_model_name(settings: Settings, stage: Stage | str) -> str:
    """Name in the BentoML store: the same as the registered model's."""
    return settings.model_name(stage)


def import_champions(settings: Settings, stages: list[Stage] | None = None) -> dict[Stage, str]:
    """Copy each stage's ``@champion`` into the BentoML store (skipped when already there).

    Returns the BentoML tag of each stage's served model.

    Raises
    ------
    LookupError
        If a stage has no champion (train and promote first).
    """
    import bentoml
    from mlflow.exceptions import MlflowException

    from models.pyfunc import load_stage_model
    from training.tracking import configure_mlflow

    client = configure_mlflow(settings)
    tags = {}
    for stage in stages or list(Stage):
        name = settings.model_name(stage)
        try:
            mv = client.get_model_version_by_alias(name, settings.champion_alias)
        except MlflowException as exc:
            raise LookupError(
                f"{name} has no @{settings.champion_alias}: train and promote it first "
                f"(riskctl train --stage {stage.value} --promote)"
            ) from exc
        if mv.run_id is None:
            raise LookupError(f"{name} version {mv.version} was not logged by a training run: register one that was")
        existing = _stored_version(bentoml, bento_model_name(settings, stage))
        if existing is not None and existing.info.labels.get("mlflow_run_id") == mv.run_id:
            tags[stage] = str(existing.tag)
            continue
        model = load_stage_model(f"models:/{name}/{mv.version}")
        run = client.get_run(mv.run_id)
        metadata = {
            "registered_name": name,
            "registered_version": str(mv.version),
            "alias": settings.champion_alias,
            "mlflow_run_id": mv.run_id,
            "tracking_uri": settings.resolved_tracking_uri(),
            "horizon_months": float(run.data.params.get("horizon_months", DEFAULT_HORIZON_MONTHS[stage])),
            "policy_version": run.data.tags.get("policy_version"),
            "evaluation": {k: run.data.metrics.get(f"test_{k}", run.data.metrics.get(k)) for k in _METRICS},
            "n_test": run.data.params.get("rows_test"),
            "model_kind": getattr(model, "kind", "lightgbm"),
            "candidate_reason": run.data.tags.get("candidate_reason"),
            "gate": gate_from_tags(mv.tags),
            "imported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        labels = {"stage": stage.value, "registered_version": str(mv.version), "mlflow_run_id": mv.run_id}
        tags[stage] = _store(settings, stage, model, labels, metadata)
        log.info("imported %s version %s into the BentoML store as %s", name, mv.version, tags[stage])
    return tags


def gate_from_tags(tags: dict[str, str]) -> dict[str, Any] | None:
    """The promotion gate's decision as recorded on a model version (readable tags, training.promote)."""
    if "gate_decision" not in tags:
        return None
    return {
        "promoted": tags.get("gate_promoted") == "true",
        "decision": tags["gate_decision"],
        "gate_version": tags.get("gate_version"),
        "against_champion": tags.get("gate_against_champion"),
        "criteria": {k.removeprefix("gate."): v for k, v in sorted(tags.items()) if k.startswith("gate.")},
    }


def save_served(
    settings: Settings,
    stage: Stage | str,
    model: StageEstimator,
    *,
    version: str = "0",
    metadata: dict[str, Any] | None = None,
) -> str:
    """Save a fitted model straight into the BentoML store (tests, offline experiments)."""
    stage = Stage(stage)
    meta = {
        "registered_name": settings.model_name(stage),
        "registered_version": version,
        "alias": "local",
        "mlflow_run_id": None,
        "evaluation": {},
        "gate": None,
        "imported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **(metadata or {}),
    }
    return _store(settings, stage, model, {"stage": stage.value, "registered_version": version}, meta)


def _store(
    settings: Settings, stage: Stage, model: StageEstimator, labels: dict[str, str], metadata: dict[str, Any]
) -> str:
    """Write the fitted model as a new version of the stage's BentoML model; returns its tag."""
    import bentoml

    with bentoml.models.create(bento_model_name(settings, stage), labels=labels, metadata=_no_none(metadata)) as ref:
        joblib.dump(model, Path(ref.path) / ARTIFACT)
    return str(ref.tag)


def load_served(stored: Any, stage: Stage | str) -> ServedModel:
    """A :class:`ServedModel` from a BentoML stored model (``bentoml.models.get(...)`` or a BentoModel)."""
    stage = Stage(stage)
    model = joblib.load(Path(stored.path) / ARTIFACT)
    meta = dict(stored.info.metadata)
    if Stage(model.stage) is not stage:
        raise ValueError(f"BentoML model {stored.tag} holds a {Stage(model.stage).value} model, not {stage.value}")
    return ServedModel(
        stage,
        model,
        meta.get("registered_name") or stored.tag.name,
        str(meta.get("registered_version", "?")),
        str(stored.tag),
        meta,
    )


def _no_none(value: Any) -> Any:
    """BentoML metadata takes no None: missing entries are left out (readers use ``.get``)."""
    if isinstance(value, dict):
        return {k: _no_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_no_none(v) for v in value if v is not None]
    return value


def _stored_version(bentoml: Any, name: str) -> Any | None:
    from bentoml.exceptions import NotFound

    try:
        return bentoml.models.get(f"{name}:latest")
    except NotFound:
        return None


def model_info(served: ServedModel) -> StageModelInfo:
    """What ``/models`` says of one stage's model."""
    meta = served.metadata
    return StageModelInfo(
        stage=served.stage.value,
        model={"name": served.name, "version": served.version, "bento_tag": served.bento_tag},
        mlflow_run_id=meta.get("mlflow_run_id"),
        alias=str(meta.get("alias", "")),
        imported_at=str(meta.get("imported_at", "")),
        horizon_months=served.horizon_months,
        calibration=served.model.calibrator_.method_,
        trees=served.model.size["trees"],
        kind=served.model.kind,
        kind_reason=meta.get("candidate_reason"),
        evaluation=dict(meta.get("evaluation") or {}),
        gate=meta.get("gate"),
    )
