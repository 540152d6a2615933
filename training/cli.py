"""``riskctl train`` and ``riskctl evaluate`` (``riskctl promote``, which may write the audit trail, is
serving/cli's)."""

from __future__ import annotations

import enum
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from features.cli import CliError, DataOpt, StageChoice, StageOpt, console, progress, read_tables, stages_of
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
    alternative: Annotated[
        bool,
        typer.Option(
            "--alternative/--no-alternative",
            help="register the other model kind beside the candidate (judged by --promote if the candidate is refused)",
        ),
    ] = True,
) -> None:
    """Train the stage models, log runs to MLflow and register each as reoffence-<stage>.

    Per stage the candidate (the logistic model unless the booster earns its place) is registered, and
    with ``--alternative`` the other kind beside it; ``--promote`` judges the candidate and, when the gate
    refuses it, the alternative.
    """
    from features.labels import make_stage_frame
    from training.config import TrainConfig
    from training.fit import fit_stage
    from training.promote import GateError, promote_trained
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
            version = log_stage_fit(
                fit, settings=settings, data_description=str(data), register_alternative=alternative
            )
            console.print(
                f"{version.model_name} version {version.version} [{version.model_kind}]: {run_summary(version)}",
                markup=False,
                soft_wrap=True,
            )
            console.print(f"  why {version.model_kind}: {version.candidate_reason}", markup=False, soft_wrap=True)
            console.print(f"  report: {version.report_dir}", markup=False, soft_wrap=True)
            if version.alternative is not None:
                alt = version.alternative
                console.print(
                    f"  alternative: version {alt.version} [{alt.model_kind}] registered beside it "
                    f"({run_summary(alt)})",
                    markup=False,
                    soft_wrap=True,
                )
            if promote_after:
                try:
                    decisions = promote_trained(version, settings=settings)
                except GateError as err:
                    typer.echo(f"Error: {st.value}: the gate could not decide, nothing was promoted: {err}", err=True)
                    raise typer.Exit(1) from None
                for i, decision in enumerate(decisions):
                    if i:
                        console.print(
                            f"  the candidate was refused: the gate judges the alternative, version {decision.version}",
                            markup=False,
                        )
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
    unseen_only: Annotated[
        bool,
        typer.Option(
            "--unseen-only/--all-rows",
            help="evaluate only on persons the model was not trained, tuned or calibrated on",
        ),
    ] = False,
) -> None:
    """Evaluate a registered model on canonical tables: report.md, metrics.json and figures.

    The model's URI is resolved to its registered version (recorded in the report), and the data's
    persons are checked against the persons the model learnt from: a warning says how many rows overlap
    (their figures are optimistic), and ``--unseen-only`` leaves them out.
    """
    import numpy as np

    from evaluation import evaluate
    from features.labels import GROUP_COLUMNS, make_stage_frame
    from models.pyfunc import load_stage_model
    from models.tier_policy import TierPolicy
    from training.config import GateConfig
    from training.registry import RegistryError, recorded_persons, resolve_model
    from training.tracking import configure_mlflow

    st = Stage(stage)
    settings = get_settings()
    client = configure_mlflow(settings)
    frame = make_stage_frame(read_tables(data), st)
    try:
        resolved = resolve_model(client, model)
        persons = recorded_persons(client, resolved.run_id) if resolved else None
    except RegistryError as err:
        raise CliError(str(err)) from None
    named = resolved.describe() if resolved else model
    ids = frame.meta["person_id"].astype(str)
    seen = ids.isin(persons.seen).to_numpy() if persons is not None else np.zeros(len(ids), dtype=bool)
    if persons is None:
        why = f"{named} recorded no training persons" if resolved else f"{model} is not a registered version or run"
        typer.echo(f"warning: {why}: cannot tell whether these rows were among its training persons", err=True)
        if unseen_only:
            raise CliError(f"--unseen-only: {named} recorded no training persons to leave out")
    elif seen.any():
        typer.echo(
            f"warning: {int(seen.sum()):,} of {len(ids):,} rows ({ids[seen].nunique():,} persons) are of persons "
            f"{named} was trained, tuned or calibrated on: its figures on them are optimistic"
            + ("; they are left out (--unseen-only)" if unseen_only else "; --unseen-only leaves them out"),
            err=True,
        )
    overlap = int(seen.sum())
    if unseen_only:
        frame = frame.subset(~seen)
        if len(frame.y) == 0:
            raise CliError(f"--unseen-only: every row is of a person {named} learnt from")
    stage_model = load_stage_model(model)
    out = out or settings.home / "reports" / f"evaluate-{st.value}"
    groups = frame.meta[[c for c in GROUP_COLUMNS if c in frame.meta]]
    oracle = frame.meta["oracle"].to_numpy() if "oracle" in frame.meta else None
    resolution = {
        "model_name": resolved.name if resolved else None,
        "model_version": resolved.version if resolved else None,
        "run_id": resolved.run_id if resolved else None,
    }
    report = evaluate(
        frame.y,
        stage_model.predict_proba(frame.X),
        groups=groups,
        fairness=GateConfig.load().fairness,
        threshold=TierPolicy.load().strict_cutoff(st.value, stage_model.risk_reference),
        oracle_prob=oracle,
        out_dir=out,
        title=f"{named} on {data}",
        meta={
            "model_uri": model,
            **{k: v for k, v in resolution.items() if v is not None},
            "data": str(data),
            "rows_of_persons_the_model_learnt_from": overlap if persons is not None else "not recorded",
            "unseen_only": unseen_only,
            "rows_evaluated": len(frame.y),
            **frame.counts,
        },
    )
    table = Table(title=f"{named} on {len(frame.y):,} {st.value} assessments")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("roc_auc", "pr_auc", "brier", "ece", "calibration_slope", "share_flagged", "precision", "recall"):
        table.add_row(key, f"{report.metrics.get(key, float('nan')):.4f}")
    console.print(table)
    console.print(f"report: {out / 'report.md'}")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("evaluate")(evaluate_cmd)
