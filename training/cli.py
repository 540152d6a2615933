"""``riskctl train``, ``riskctl evaluate`` and ``riskctl promote``."""

from __future__ import annotations

import enum
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from features.cli import DataOpt, StageChoice, StageOpt, console, progress, read_tables, stages_of
from features.settings import get_settings
from features.vocab import Stage

log = logging.getLogger(__name__)


class EvalStage(enum.StrEnum):
    """``--stage`` of commands that take exactly one stage."""

    INTAKE = "intake"
    MIDTERM = "midterm"
    RELEASE = "release"


def train(
    data: DataOpt,
    stage: StageOpt = StageChoice.ALL,
    seed: Annotated[int, typer.Option(help="seed of the split and the booster")] = 0,
    temporal: Annotated[
        bool | None,
        typer.Option(
            "--temporal/--random-split",
            help="test on the latest starts (default from training/params.yaml) or on a random share of persons",
        ),
    ] = None,
    budget: Annotated[int | None, typer.Option(min=1, help="grid points tried by the search")] = None,
    promote_after: Annotated[bool, typer.Option("--promote/--no-promote", help="apply the promotion gate")] = False,
) -> None:
    """Train the stage models, log runs to MLflow and register each as reoffence-<stage>."""
    from features.labels import make_stage_frame
    from training.config import TrainConfig
    from training.fit import fit_stage
    from training.promote import promote
    from training.tracking import log_stage_fit, run_summary

    settings = get_settings()
    config = TrainConfig.load()
    if budget is not None:
        config = config.override(search={"budget": budget})
    tables = read_tables(data)
    results = []
    stages = stages_of(stage)
    with progress() as bar:
        task = bar.add_task("training", total=len(stages))
        for st in stages:
            bar.update(task, description=f"{st.value}: features, search, calibration, MLflow")
            fit = fit_stage(make_stage_frame(tables, st), config=config, seed=seed, temporal=temporal)
            version = log_stage_fit(fit, settings=settings, data_description=str(data))
            console.print(
                f"{version.model_name} version {version.version} [{version.model_kind}]: {run_summary(version)}",
                markup=False,
                soft_wrap=True,
            )
            console.print(f"  why {version.model_kind}: {version.candidate_reason}", markup=False, soft_wrap=True)
            console.print(f"  report: {version.report_dir}", markup=False, soft_wrap=True)
            if promote_after:
                decision = promote(st, version=version.version, settings=settings)
                console.print(decision.describe(), markup=False, soft_wrap=True)
            results.append(version)
            bar.advance(task)
    console.print(
        f"MLflow: {settings.resolved_tracking_uri()}  (mlflow ui --backend-store-uri "
        f"{settings.resolved_tracking_uri()})"
    )


def evaluate_cmd(
    stage: Annotated[EvalStage, typer.Option(help="the assessment stage")],
    model: Annotated[str, typer.Option(help="MLflow model URI, e.g. models:/reoffence-intake@champion")],
    data: DataOpt,
    out: Annotated[Path | None, typer.Option(help="report folder (default <home>/reports/evaluate-<stage>)")] = None,
) -> None:
    """Evaluate a registered model on canonical tables: report.md, metrics.json and figures."""
    from evaluation import evaluate
    from features.labels import GROUP_COLUMNS, make_stage_frame
    from models.pyfunc import load_stage_model
    from models.tier_policy import TierPolicy
    from training.config import GateConfig
    from training.tracking import configure_mlflow

    st = Stage(stage)
    settings = get_settings()
    configure_mlflow(settings)
    frame = make_stage_frame(read_tables(data), st)
    stage_model = load_stage_model(model)
    out = out or settings.home / "reports" / f"evaluate-{st.value}"
    groups = frame.meta[[c for c in GROUP_COLUMNS if c in frame.meta]]
    oracle = frame.meta["oracle"].to_numpy() if "oracle" in frame.meta else None

    report = evaluate(
        frame.y,
        stage_model.predict_proba(frame.X),
        groups=groups,
        fairness=GateConfig.load().fairness,
        threshold=TierPolicy.load().strict_cutoff(st.value, stage_model.risk_reference),
        oracle_prob=oracle,
        out_dir=out,
        title=f"{model} on {data}",
        meta={"model_uri": model, "data": str(data), **frame.counts},
    )
    table = Table(title=f"{model} on {len(frame.y):,} {st.value} assessments")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("roc_auc", "pr_auc", "brier", "ece", "calibration_slope", "share_flagged", "precision", "recall"):
        table.add_row(key, f"{report.metrics.get(key, float('nan')):.4f}")
    console.print(table)
    console.print(f"report: {out / 'report.md'}")


def promote_cmd(
    stage: StageOpt,
    version: Annotated[str | None, typer.Option(help="registered version (default: the latest)")] = None,
) -> None:
    """Apply the promotion gate: @champion if no worse than the current champion, else @challenger."""
    from training.promote import promote

    failed = False
    for st in stages_of(stage):
        decision = promote(st, version=version, settings=get_settings())
        console.print(decision.describe(), markup=False, soft_wrap=True)
        failed |= not decision.promoted
    if failed:
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("evaluate")(evaluate_cmd)
    app.command("promote")(promote_cmd)
