"""Track stage fits in MLflow: baseline and boosted runs, evaluation artefacts, registered versions.

With no configuration MLflow tracks into ``<RISK_HOME>/mlflow.db`` (SQLite) with artefacts in
``<RISK_HOME>/mlartifacts``; ``MLFLOW_TRACKING_URI`` (or ``RISK_TRACKING_URI``) points it at a server.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import joblib
import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from evaluation import evaluate, model_card
from features.settings import Settings, get_settings
from models.pyfunc import ARTIFACT_KEY, CODE_PATH
from models.tier_policy import TierPolicy
from training.fit import StageFit
from training.report import shap_summary_png

log = logging.getLogger(__name__)
EVAL_ROWS = "evaluation/eval_rows.parquet"


def configure_mlflow(settings: Settings | None = None) -> MlflowClient:
    """Point MLflow at the configured tracking URI (creating the local folder) and return a client."""
    settings = settings or get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    # MLflow's per-download progress bars (one per artifact fetch) say nothing a user needs
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # MLflow logs its database set-up and migrations at INFO on its own handler: keep its warnings only
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    uri = settings.resolved_tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(uri, uri)


def ensure_experiment(client: MlflowClient, settings: Settings, stage) -> str:
    name = settings.experiment_name(stage)
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None if settings.resolved_tracking_uri().startswith("http") else settings.artifact_location()
    return client.create_experiment(name, artifact_location=location)


@dataclass
class TrainedVersion:
    stage: str
    model_name: str
    version: str
    run_id: str
    baseline_run_id: str
    metrics: dict
    report_dir: Path


def eval_rows_frame(fit: StageFit) -> pd.DataFrame:
    """The test rows as logged: features, label and metadata (groups, oracle)."""
    test = fit.part("test")
    return test.X.assign(label=test.y).join(test.meta.add_prefix("meta_"))


def split_eval_rows(rows: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    meta = rows[[c for c in rows.columns if c.startswith("meta_")]].rename(columns=lambda c: c[5:])
    X = rows.drop(columns=[*meta.add_prefix("meta_").columns, "label"])
    return X, rows["label"].to_numpy(dtype=int), meta


def _log_baseline(fit: StageFit, experiment_id: str, y_prob: np.ndarray, metrics_fn) -> str:
    stage = fit.frame.stage.value
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{stage}-baseline-logreg") as run:
        mlflow.set_tags({"stage": stage, "model_kind": "baseline", "config_version": fit.config.version})
        mlflow.log_params({"model": "LogisticRegression", **fit.baseline.get_params()})
        mlflow.log_metrics({f"test_{k}": v for k, v in metrics_fn(y_prob).items() if _finite(v)})
    return run.info.run_id


def _finite(v) -> bool:
    return isinstance(v, (int, float, np.floating)) and np.isfinite(v)


def log_stage_fit(fit: StageFit, *, settings: Settings | None = None, data_description: str = "",
                  out_dir: Path | None = None) -> TrainedVersion:
    """Log the baseline and the boosted run, evaluate on the test rows, register the model."""
    settings = settings or get_settings()
    client = configure_mlflow(settings)
    stage = fit.frame.stage
    experiment_id = ensure_experiment(client, settings, stage)
    policy = TierPolicy.load()
    threshold = policy.strict_cutoff(stage.value)
    test = fit.part("test")
    prob, base_prob = fit.model.predict_proba(test.X), fit.baseline.predict_proba(test.X)
    from evaluation import classification_metrics

    baseline_run = _log_baseline(fit, experiment_id, base_prob,
                                 lambda p: classification_metrics(test.y, p, threshold=threshold))
    out_dir = Path(out_dir or tempfile.mkdtemp(prefix=f"eval-{stage.value}-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    groups = test.meta[[c for c in ("sex", "age_band", "local", "offence", "supervision_type") if c in test.meta]]
    shap_png = shap_summary_png(fit.model, test.X, out_dir / "shap_summary.png")
    oracle = test.meta["oracle"].to_numpy() if "oracle" in test.meta else None
    strict_in_effect = strict_share(policy, stage, prob, test.X)
    report = evaluate(test.y, prob, groups=groups, threshold=threshold, oracle_prob=oracle, baseline_prob=base_prob,
                      out_dir=out_dir, title=f"{settings.model_name(stage)} ({stage.label('en')})",
                      meta={"stage": stage.value, **fit.frame.counts, "policy_version": policy.version,
                            "share_strict_in_effect": strict_in_effect,
                            "protected_inputs": ", ".join(fit.config.protected_inputs) or "none"},
                      extra_figures=[shap_png])
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{stage.value}-lgbm") as run:
        mlflow.set_tags({"stage": stage.value, "model_kind": "lightgbm", "baseline_run_id": baseline_run,
                         "config_version": fit.config.version, "policy_version": policy.version,
                         "data": data_description})
        mlflow.log_params({**{k: v for k, v in fit.chosen.items()}, "seed": fit.seed,
                           "protected_inputs": ",".join(fit.config.protected_inputs) or "none",
                           "temporal_split": fit.config.split.temporal, "horizon_months": fit.frame.horizon_months,
                           "calibration": fit.model.calibrator_.method_, "strict_cutoff": threshold,
                           **{f"n_{k}": v for k, v in fit.frame.counts.items()},
                           **{f"rows_{p}": int((fit.parts == p).sum()) for p in ("train", "valid", "calib", "test")}})
        mlflow.log_metrics({f"test_{k}": v for k, v in report.metrics.items() if _finite(v)})
        mlflow.log_metric("test_share_strict_in_effect", strict_in_effect)
        if report.groups is not None:
            mlflow.log_metric("test_largest_fpr_gap", report.groups.largest_fpr_gap)
        if report.oracle:
            mlflow.log_metrics({f"oracle_{k}": v for k, v in report.oracle.items() if _finite(v)})
        eval_rows_frame(fit).to_parquet(out_dir / "eval_rows.parquet", index=False)
        fit.search.to_csv(out_dir / "search.csv", index=False)
        mlflow.log_artifacts(str(out_dir), artifact_path="evaluation")
        version = _log_model(fit, settings, test.X, prob)
        card = model_card(
            name=settings.model_name(stage), version=version, stage=stage.value, data_description=data_description,
            period=_period(fit), label_definition=f"new offence within {fit.frame.horizon_months:g} months after the "
            f"{stage.label('en')} date (re-offence dated in [D, D+H))", n_train=int((fit.parts != "test").sum()),
            n_test=len(test.y), n_censored=fit.frame.counts.get("censored", 0), report=report,
            limits=_limits(fit), out_path=out_dir / "model_card.md", inputs=fit.model.feature_names,
            protected_inputs=fit.config.protected_inputs, policy=policy,
            data_kind="synthetic" if "oracle" in fit.frame.meta else "real")
        mlflow.log_artifact(str(card), artifact_path="model_card")
        MlflowClient().update_model_version(settings.model_name(stage), version, description=card.read_text())
    metrics = {**report.metrics, "largest_fpr_gap": report.groups.largest_fpr_gap if report.groups else None}
    log.info("%s: registered %s version %s", stage.value, settings.model_name(stage), version)
    return TrainedVersion(stage.value, settings.model_name(stage), version, run.info.run_id, baseline_run,
                          metrics, out_dir)


def strict_share(policy: TierPolicy, stage, prob: np.ndarray, X: pd.DataFrame) -> float:
    """The share of rows whose effective tier is strict under ``policy`` (mandatory rules included)."""
    if len(prob) == 0:
        return float("nan")
    decisions = policy.decide_frame(stage, prob, X)
    return float(np.mean([d.tier.value == "strict" for d in decisions]))


def _log_model(fit: StageFit, settings: Settings, X_test: pd.DataFrame, prob: np.ndarray) -> str:
    """Log the pyfunc model in the active run and register it; returns the new version."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stage_model.joblib"
        joblib.dump(fit.model, path)
        example = as_plain_columns(X_test.head(5))
        info = mlflow.pyfunc.log_model(
            name="model", python_model=str(CODE_PATH), artifacts={ARTIFACT_KEY: str(path)},
            signature=infer_signature(example, prob[:5]), input_example=example,
            registered_model_name=settings.model_name(fit.frame.stage),
            pip_requirements=["lightgbm", "scikit-learn", "pandas", "numpy", "joblib"],
        )
    return str(info.registered_model_version)


def as_plain_columns(X: pd.DataFrame) -> pd.DataFrame:
    """Categorical columns as strings: how a JSON client (``mlflow models serve``) sends them."""
    return X.astype({c: str for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)})


def _period(fit: StageFit) -> str:
    start = pd.to_datetime(fit.frame.meta["supervision_start"])
    return f"supervision starts {start.min():%Y-%m-%d} to {start.max():%Y-%m-%d}"


def _limits(fit: StageFit) -> list[str]:
    limits = [
        "Trained on the data described above; scores for populations unlike it (other regions, offence mixes, "
        "base rates) need recalibration before use.",
        "A score supports, never replaces, the caseworker's judgement; tier overrides are recorded with a reason.",
        f"People with follow-up shorter than {fit.frame.horizon_months:g} months and no re-offence were left out "
        f"({fit.frame.counts.get('censored', 0)} assessments); this raises the label rate where follow-up is short.",
    ]
    if fit.config.split.temporal:
        limits.append("Test rows are the latest supervision starts (temporal split).")
    return limits


def run_summary(version: TrainedVersion) -> str:
    keys = ("roc_auc", "pr_auc", "brier", "ece", "largest_fpr_gap")
    return json.dumps({k: round(float(version.metrics[k]), 4) for k in keys if version.metrics.get(k) is not None})
