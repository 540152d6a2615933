"""``riskctl data ...`` and ``riskctl features ...``, and the conventions every ``riskctl`` command shares.

Shared by all command modules (they import from here; data flows one way):

- :data:`console`: rich output that keeps literal brackets (markup is off: style with ``style=``) and,
  when written to a file or pipe, keeps tables at their natural width instead of 80 columns;
- :func:`progress`: a progress bar with counts, elapsed time and ETA;
- :class:`StageChoice` and :func:`stages_of`: ``--stage intake|midterm|release|all``;
- :class:`CliError`: raise it with one line of text; click prints ``Error: <text>`` and the command
  exits with code 2, as for a bad argument (no traceback).
"""

from __future__ import annotations

import enum
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from features.synthetic import DEFAULT_BASE_RATE, CohortConfig
from features.vocab import Stage

if TYPE_CHECKING:
    from features.labels import StageFrame
    from features.schema import CaseTables

log = logging.getLogger(__name__)

#: width of output that is not a terminal: wide enough that no table is squeezed (rich's default is 80)
PIPE_WIDTH = 400


def make_console(*, stderr: bool = False) -> Console:
    """A console without markup (text is printed as given) that does not squeeze tables in a pipe."""
    probe = Console(stderr=stderr)
    width = None if probe.is_terminal else PIPE_WIDTH
    return Console(stderr=stderr, markup=False, highlight=False, emoji=False, width=width)


console = make_console()
data_app = typer.Typer(help="Make, import and validate canonical data.", no_args_is_help=True)
features_app = typer.Typer(help="Build point-in-time stage feature frames.", no_args_is_help=True)


# typer ships its own copy of click (typer._click) whose commands catch that copy's ClickException, not
# click's: take the class from typer's public BadParameter, whichever click it is built on
_ClickException: Any = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


class CliError(_ClickException):
    """A refusal: click prints ``Error: <message>`` (no traceback) and the command exits with code 2."""

    exit_code = 2


class StageChoice(enum.StrEnum):
    """``--stage``: one of the three assessments, or all of them."""

    INTAKE = "intake"
    MIDTERM = "midterm"
    RELEASE = "release"
    ALL = "all"


StageOpt = Annotated[StageChoice, typer.Option("--stage", help="the assessment stage, or all three")]
DataOpt = Annotated[Path, typer.Option("--data", help="folder with the canonical tables (persons, events, outcomes)")]


def progress() -> Progress:
    """A progress bar with the count done, elapsed time and time remaining (rich)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(bar_width=30),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def stages_of(stage: StageChoice | Stage | str) -> list[Stage]:
    """The stages ``--stage`` names (all three for ``all``)."""
    return list(Stage) if stage == StageChoice.ALL else [Stage(str(stage))]


def read_tables(data: Path) -> CaseTables:
    """Canonical tables from ``data``, or a :class:`CliError` naming what is wrong with them."""
    from features.schema import CaseTables, DataValidationError

    if not data.is_dir():
        raise CliError(f"{data}: no such folder (expected the canonical tables persons, events, outcomes)")
    try:
        return CaseTables.read(data)
    except DataValidationError as err:
        raise CliError(f"refused {data}: {err}") from None
    except FileNotFoundError as err:
        raise CliError(f"refused {data}: {err.strerror or err}: {err.filename or ''}".rstrip(": ")) from None
    except (OSError, ValueError) as err:  # a file that is not Parquet or CSV (pyarrow's errors are ValueErrors)
        raise CliError(f"refused {data}: cannot read the tables: {err}") from None


def write_synthetic(out: Path, config: CohortConfig) -> CaseTables:
    """Generate a cohort and write it (tables, truth and cohort.json) atomically into ``out``."""
    from features.synthetic import generate_cohort

    with progress() as bar:
        task = bar.add_task(f"generating {config.persons:,} persons (seed {config.seed})", total=2)
        tables = generate_cohort(config)
        bar.update(task, advance=1, description=f"writing {len(tables.events):,} events to {out}")
        meta = tables.extra["truth"].attrs.get("config", {})
        tables.write(out)
        (out / "cohort.json").write_text(json.dumps(meta, indent=2))
        bar.update(task, advance=1, description=f"cohort written to {out}")
    return tables


@data_app.command("synthetic")
def synthetic(
    out: Annotated[Path, typer.Option(help="output folder for persons/events/outcomes/truth Parquet files")],
    persons: Annotated[int, typer.Option(min=10, help="number of persons")] = 10_000,
    seed: Annotated[int, typer.Option(help="random seed (the cohort is deterministic for a seed)")] = 0,
    base_rate: Annotated[
        float,
        typer.Option(
            min=0.001, max=0.5, help="share re-offending within 12 months of intake (low-base-rate setting: 0.01)"
        ),
    ] = DEFAULT_BASE_RATE,
) -> None:
    """Generate a synthetic cohort with a documented causal structure (features/synthetic/CAUSAL_MODEL.md)."""
    tables = write_synthetic(out, CohortConfig(persons=persons, seed=seed, base_rate=base_rate))
    console.print(f"{len(tables.persons):,} persons, {len(tables.events):,} events -> {out}")


@data_app.command("validate")
def validate(data: DataOpt) -> None:
    """Validate canonical tables; exit 2 with every problem (table, row, person, field) listed."""
    tables = read_tables(data)
    console.print(f"ok: {len(tables.persons):,} persons, {len(tables.events):,} events")


def summary_table(frames: list[StageFrame]) -> Table:
    table = Table(
        title="Stage feature frames",
        caption="censored: follow-up shorter than H without re-offence; "
        "reoff<D / revoked<D: no longer under assessment at D",
    )
    for col in ("stage", "H (mo)", "assessed", "labelled", "censored", "reoff<D", "revoked<D", "rate", "cols"):
        table.add_column(col, justify="right")
    for f in frames:
        c = f.counts
        table.add_row(
            f.stage.value,
            f"{f.horizon_months:g}",
            f"{c['assessments']:,}",
            f"{c['labelled']:,}",
            f"{c['censored']:,}",
            f"{c['reoffended_before']:,}",
            f"{c['revoked_before']:,}",
            f"{f.label_rate:.2%}",
            str(f.X.shape[1]),
        )
    return table


def build_frames(tables: CaseTables, stages: list[Stage], out: Path | None = None) -> list[StageFrame]:
    """The stage frames of ``tables`` (written to ``out`` as Parquet and JSON when given)."""
    from features.labels import make_stage_frame

    frames = []
    with progress() as bar:
        task = bar.add_task("building features", total=len(stages))
        for stage in stages:
            bar.update(task, description=f"building {stage.value} features")
            frame = make_stage_frame(tables, stage)
            if out is not None:
                out.mkdir(parents=True, exist_ok=True)
                frame.X.assign(label=frame.y).join(frame.meta.add_prefix("meta_")).to_parquet(
                    out / f"{stage.value}.parquet", index=False
                )
                (out / f"{stage.value}.json").write_text(json.dumps(frame.summary(), indent=2))
            frames.append(frame)
            bar.advance(task)
    return frames


@features_app.command("build")
def build(
    data: DataOpt,
    stage: StageOpt = StageChoice.ALL,
    out: Annotated[Path | None, typer.Option(help="write <stage>.parquet (features, label, meta_*) here")] = None,
) -> None:
    """Build the stage feature frames (point-in-time) and print row counts, label rates, censored counts."""
    console.print(summary_table(build_frames(read_tables(data), stages_of(stage), out)))


class PublicSource(enum.StrEnum):
    """The public data sets with an adapter (``../shared/data``)."""

    NIJ = "nij"
    COMPAS = "compas"
    ROSSI = "rossi"


SourceOpt = Annotated[PublicSource, typer.Option("--source", help="the public data set")]


@data_app.command("import")
def import_cmd(
    source: SourceOpt,
    in_path: Annotated[Path, typer.Option("--in", help="the public CSV file")],
    out: Annotated[Path, typer.Option(help="output folder (canonical tables or a feature frame + mapping.json)")],
) -> None:
    """Import a public data set (features/adapters/MAPPING.md says how each column maps)."""
    from features.adapters import import_to
    from features.schema import DataValidationError

    if not in_path.is_file():
        raise CliError(f"{in_path}: no such file")
    try:
        written = import_to(source.value, in_path, out)
    except (DataValidationError, KeyError, ValueError) as err:
        raise CliError(f"refused {in_path}: {err}") from None
    console.print(f"{source.value} imported -> {written}")
