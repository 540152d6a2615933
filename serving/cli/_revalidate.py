"""``riskctl revalidate``: the annual revalidation of the models in service on the outcomes known by a date.

Reads every assessment stored before ``--as-of`` from the audit trail, the outcomes from the case store (or
``--outcomes DIR``, a folder of canonical tables), tells review-meeting scores apart by the case store's
index, and writes ``revalidation.html``, ``revalidation.md`` and ``revalidation.json`` under
``<home>/revalidation/<as-of>`` (where the console's auditor page finds them), logged to MLflow (experiment
``<prefix>-monitoring``). Exit codes: 0 written, 2 a refusal (no outcomes, nothing stored, a record that does not
read), 1 a fault.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Annotated

import typer

from features.cli import CliError, console
from features.vocab import Stage
from serving.cli._monitor import MlflowOpt, experiment_id
from serving.cli._runtime import open_audit_store
from serving.settings import ServiceSettings, get_settings


def revalidate_cmd(
    as_of: Annotated[dt.datetime, typer.Option("--as-of", formats=["%Y-%m-%d"], help="outcomes known before this day")],
    outcomes: Annotated[
        Path | None,
        typer.Option("--outcomes", help="folder of canonical tables with outcomes (default: the case store)"),
    ] = None,
    stage: Annotated[Stage | None, typer.Option("--stage", help="one stage (default: all)")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="report folder (default <home>/revalidation/<as-of>)")
    ] = None,
    mlflow_log: MlflowOpt = True,
) -> None:
    """Revalidate the stored formal assessments whose outcomes have matured by --as-of: AUC, Brier, O/E per band
    and within groups, risk change against outcomes, and the override analysis."""
    import pandas as pd

    from evaluation.revalidation import write_report
    from serving.cases import CaseStore, read_dir
    from serving.monitoring import MonitorError, revalidate_stored, revalidation_dir

    settings = get_settings()
    day = as_of.date()
    cases = CaseStore.open(settings)
    try:
        if outcomes is None:
            table = cases.outcomes_frame()
        else:
            read = read_dir(outcomes).outcomes
            if read is None:
                raise CliError(f"{outcomes}: no outcomes table (outcomes.parquet or outcomes.csv)")
            table = read
        review_ids = cases.review_assessment_ids()
    finally:
        cases.close()
    if table.empty:
        raise CliError("no outcomes to revalidate on: import them into the case store, or give --outcomes DIR")
    table = table.assign(**{c: pd.to_datetime(table[c]) for c in ("reoffence_date", "revocation_date", "followup_end")})
    store = open_audit_store(settings)
    try:
        report = revalidate_stored(store, table, as_of=day, review_ids=review_ids, stage=stage)
    except MonitorError as exc:
        raise CliError(str(exc)) from None
    finally:
        store.close()
    folder = out or revalidation_dir(settings) / day.isoformat()
    paths = write_report(report, folder)
    if mlflow_log:
        _log(settings, report.performance, folder, day)
    formal = report.counts[report.counts["kind"] == "formal"]
    console.print(
        f"revalidation on outcomes known by {day}: {int(formal['matured'].sum())} formal assessments matured, "
        f"{int(formal['immature'].sum())} immature (left out)",
        markup=False,
    )
    for row in report.performance.to_dict("records"):
        console.print(
            f"  {row['stage']} version {row['model_version']} (policy {row['policy_version']}): n {row['n']:.0f}, "
            f"AUC {row['roc_auc']:.3f}, Brier {row['brier']:.4f}, O/E {row['oe_ratio']:.2f}",
            markup=False,
        )
    console.print(f"  report: {paths['html']}", markup=False)


def _log(settings: ServiceSettings, performance: object, folder: Path, day: dt.date) -> None:
    import mlflow
    import pandas as pd

    assert isinstance(performance, pd.DataFrame)
    with mlflow.start_run(experiment_id=experiment_id(settings), run_name=f"revalidate-{day}"):
        mlflow.set_tags({"kind": "revalidation", "as_of": day.isoformat()})
        metrics = {}
        for row in performance.itertuples(index=False):
            for name in ("n", "roc_auc", "brier", "oe_ratio"):
                value = float(getattr(row, name))
                if not math.isnan(value):
                    metrics[f"{row.stage}_v{row.model_version}_{name}"] = value
        mlflow.log_metrics(metrics)
        mlflow.log_artifacts(str(folder), artifact_path="revalidation")


def register(app: typer.Typer) -> None:
    app.command("revalidate")(revalidate_cmd)
