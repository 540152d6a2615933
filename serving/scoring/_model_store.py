"""From the MLflow registry to the BentoML model store, and back out as a served model.

:func:`import_champions` resolves ``models:/reoffence-<stage>@champion`` in MLflow and saves the
fitted stage model (a :class:`~models.estimator.StageEstimator`: booster or logistic) into the
BentoML model store as ``reoffence-<stage>``, with the registry version, run id, model kind, test
metrics and gate decision as metadata. The service
declares these BentoML models at class level, so ``bentoml build`` packs them into the Bento and
the service never needs MLflow at run time. :func:`load_served` reads one back, and :func:`served_models`
reads every stage's: a stage without a champion is not served (its requests are answered with 503), a
service with no stage to serve does not start (:func:`nothing_to_serve`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import joblib

from features.settings import Settings
from features.vocab import DEFAULT_HORIZON_MONTHS, Stage
from models.estimator import StageEstimator
from serving.scoring._messages import no_model_message
from serving.scoring.schemas import StageModelInfo, UnservedStage

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


def stages_without_champion(settings: Settings) -> list[Stage]:
    """The stages whose registered model has no ``@champion``, read from the registry without touching the
    BentoML store (``riskctl build`` refuses those before importing anything).

    Raises
    ------
    training.registry.RegistryError
        If the registry cannot be read.
    """
    from training.registry import champion_of
    from training.tracking import configure_mlflow

    client = configure_mlflow(settings)
    return [s for s in Stage if champion_of(client, settings.model_name(s), settings.champion_alias) is None]


def import_champions(settings: Settings, stages: list[Stage] | None = None) -> dict[Stage, str]:
    """Copy each stage's ``@champion`` into the BentoML store (skipped when already there).

    Returns the BentoML tag of each stage that has a champion; a stage whose registered model has none
    (or does not exist) is left out: it is not served. Nothing is "no champion" but the registry's own
    answer (:func:`training.registry.champion_of`).

    Raises
    ------
    training.registry.RegistryError
        If the registry cannot be read (tracking server unreachable, refused, corrupt), or a champion
        cannot be loaded or was not logged by a training run: the service must not start on a guess.
    """
    import bentoml

    from models.pyfunc import load_stage_model
    from training.registry import RegistryError, champion_of
    from training.tracking import configure_mlflow

    client = configure_mlflow(settings)
    tags = {}
    for stage in stages or list(Stage):
        name = settings.model_name(stage)
        mv = champion_of(client, name, settings.champion_alias)
        if mv is None:
            log.info("%s has no @%s: the %s stage is not served", name, settings.champion_alias, stage.value)
            continue
        if mv.run_id is None:
            raise RegistryError(
                f"{name} version {mv.version} (@{settings.champion_alias}) was not logged by a training run: "
                "register one that was"
            )
        existing = _stored_version(bentoml, bento_model_name(settings, stage))
        if existing is not None and existing.info.labels.get("mlflow_run_id") == mv.run_id:
            tags[stage] = str(existing.tag)
            continue
        try:
            model = load_stage_model(f"models:/{name}/{mv.version}")
            run = client.get_run(mv.run_id)
        except Exception as exc:  # the artifact store or the tracking server: named, never skipped
            raise RegistryError(
                f"could not load {name} version {mv.version} (@{settings.champion_alias}): {type(exc).__name__}: {exc}"
            ) from exc
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


def served_models(
    stored: Callable[[Stage], Any | None], *, only: Collection[Stage] | None = None
) -> tuple[dict[Stage, ServedModel], dict[Stage, UnservedStage]]:
    """The served model of each stage that has one, and why each other stage has none.

    ``stored`` gives a stage's BentoML stored model, or None when the store holds none; ``only`` the stages
    to serve (``RISK_SERVED_STAGES``; None: every stage with a stored model). A stage left out is answered
    with 503 by the service (:class:`~serving.scoring.NoModelError`); when no stage is served at all the
    caller refuses to start (:func:`nothing_to_serve`).
    """
    served: dict[Stage, ServedModel] = {}
    unserved: dict[Stage, UnservedStage] = {}
    for stage in Stage:
        if only is not None and stage not in only:
            unserved[stage] = _unserved(stage, "not_selected")
            continue
        found = stored(stage)
        if found is None:
            unserved[stage] = _unserved(stage, "not_in_store")
            continue
        served[stage] = load_served(found, stage)
    return served, unserved


def _unserved(stage: Stage, reason: Literal["not_selected", "not_in_store"]) -> UnservedStage:
    return UnservedStage(stage=stage.value, reason=reason, message=no_model_message([stage], "en"))


def nothing_to_serve(unserved: Mapping[Stage, UnservedStage]) -> str:
    """Why a service with no stage to serve does not start, and what to do (every request would be refused)."""
    why = "; ".join(
        f"{stage.value}: "
        + ("left out of RISK_SERVED_STAGES" if u.reason == "not_selected" else "no model in the BentoML store")
        for stage, u in unserved.items()
    )
    return (
        f"no stage has a model to serve ({why}), so the service does not start: train and promote at least one "
        "stage (riskctl train --stage all --promote, or riskctl promote --stage S --version V "
        '--override-reason "..."), then riskctl serve (it imports every stage\'s @champion)'
    )


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
        "override": (
            {k: tags.get(f"gate_override_{k}", "") for k in ("reason", "by", "at", "failed")}
            if tags.get("gate_override") == "true"
            else None
        ),
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


def stored_model(settings: Settings, stage: Stage | str) -> Any | None:
    """The latest BentoML stored model of ``stage`` in the local store, or None (never asks a remote store)."""
    import bentoml

    return _stored_version(bentoml, bento_model_name(settings, stage))


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
