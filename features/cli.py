"""``riskctl data ...`` and ``riskctl features ...``: make, import, validate data; build stage features."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from features.labels import make_stage_frame
from features.schema import CaseTables, DataValidationError
from features.synthetic import DEFAULT_BASE_RATE, CohortConfig, generate_cohort
from features.vocab import Stage

log = logging.getLogger(__name__)
console = Console()
data_app = typer.Typer(help="Make, import and validate canonical data.", no_args_is_help=True)
features_app = typer.Typer(help="Build point-in-time stage feature frames.", no_args_is_help=True)

StageOpt = Annotated[str, typer.Option("--stage", help="intake, midterm, release or all")]


def progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                    transient=False)


def stages_of(stage: str) -> list[Stage]:
    if stage == "all":
        return list(Stage)
    try:
        return [Stage(stage)]
    except ValueError:
        raise typer.BadParameter(f"unknown stage {stage!r}: use intake, midterm, release or all") from None


def write_synthetic(out: Path, config: CohortConfig) -> CaseTables:
    """Generate a cohort and write it (tables, truth and cohort.json) atomically into ``out``."""
    with progress() as bar:
        task = bar.add_task(f"generating {config.persons:,} persons (seed {config.seed})", total=None)
        tables = generate_cohort(config)
        bar.update(task, description=f"writing {len(tables.events):,} events to {out}")
        meta = tables.extra["truth"].attrs.get("config", {})
        tables.write(out)
        (out / "cohort.json").write_text(json.dumps(meta, indent=2))
        bar.update(task, description=f"cohort written to {out}", total=1, completed=1)
    return tables


@data_app.command("synthetic")
def synthetic(
    out: Annotated[Path, typer.Option(help="output folder for persons/events/outcomes/truth Parquet files")],
    persons: Annotated[int, typer.Option(min=10, help="number of persons")] = 10_000,
    seed: Annotated[int, typer.Option(help="random seed (the cohort is deterministic for a seed)")] = 0,
    base_rate: Annotated[float, typer.Option(min=0.001, max=0.5,
                                             help="share re-offending within 12 months of intake "
                                                  "(low-base-rate setting: 0.01)")] = DEFAULT_BASE_RATE,
) -> None:
    """Generate a synthetic cohort with a documented causal structure (features/synthetic/CAUSAL_MODEL.md)."""
    tables = write_synthetic(out, CohortConfig(persons=persons, seed=seed, base_rate=base_rate))
    console.print(f"{len(tables.persons):,} persons, {len(tables.events):,} events -> {out}")


@data_app.command("validate")
def validate(data: Annotated[Path, typer.Argument(help="folder with canonical Parquet tables")]) -> None:
    """Validate canonical tables; exit 1 with every problem (table, row, person, field) listed."""
    try:
        tables = CaseTables.read(data)
    except DataValidationError as err:
        console.print(f"[red]refused:[/red] {err}")
        raise typer.Exit(1) from None
    console.print(f"ok: {len(tables.persons):,} persons, {len(tables.events):,} events")


def summary_table(frames) -> Table:
    table = Table(title="Stage feature frames", caption="censored: follow-up shorter than H without re-offence; "
                  "reoff<D / revoked<D: no longer under assessment at D")
    for col in ("stage", "H (mo)", "assessed", "labelled", "censored", "reoff<D", "revoked<D", "rate", "cols"):
        table.add_column(col, justify="right")
    for f in frames:
        c = f.counts
        table.add_row(f.stage.value, f"{f.horizon_months:g}", f"{c['assessments']:,}", f"{c['labelled']:,}",
                      f"{c['censored']:,}", f"{c['reoffended_before']:,}", f"{c['revoked_before']:,}",
                      f"{f.label_rate:.2%}", str(f.X.shape[1]))
    return table


def build_frames(tables: CaseTables, stages: list[Stage], out: Path | None = None):
    frames = []
    with progress() as bar:
        task = bar.add_task("building features", total=len(stages))
        for stage in stages:
            bar.update(task, description=f"building {stage.value} features")
            frame = make_stage_frame(tables, stage)
            if out is not None:
                out.mkdir(parents=True, exist_ok=True)
                frame.X.assign(label=frame.y).join(frame.meta.add_prefix("meta_")).to_parquet(
                    out / f"{stage.value}.parquet", index=False)
                (out / f"{stage.value}.json").write_text(json.dumps(frame.summary(), indent=2))
            frames.append(frame)
            bar.advance(task)
    return frames


@features_app.command("build")
def build(
    data: Annotated[Path, typer.Option(help="folder with canonical tables")],
    stage: StageOpt = "all",
    out: Annotated[Path | None, typer.Option(help="write <stage>.parquet (features, label, meta_*) here")] = None,
) -> None:
    """Build the stage feature frames (point-in-time) and print row counts, label rates, censored counts."""
    try:
        tables = CaseTables.read(data)
    except DataValidationError as err:
        console.print(f"[red]refused:[/red] {err}")
        raise typer.Exit(1) from None
    console.print(summary_table(build_frames(tables, stages_of(stage), out)))


@data_app.command("import")
def import_cmd(
    source: Annotated[str, typer.Argument(help="nij, compas or rossi")],
    in_path: Annotated[Path, typer.Option("--in", help="the public CSV file")],
    out: Annotated[Path, typer.Option(help="output folder (canonical tables or a feature frame + mapping.json)")],
) -> None:
    """Import a public data set (features/adapters/MAPPING.md says how each column maps)."""
    from features.adapters import import_to

    try:
        written = import_to(source, in_path, out)
    except (DataValidationError, FileNotFoundError, KeyError, ValueError) as err:
        console.print(f"[red]refused:[/red] {err}")
        raise typer.Exit(1) from None
    console.print(f"{source} imported -> {written}")
