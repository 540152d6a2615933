"""``riskctl benchmark real``: the real-data benchmark (NIJ, COMPAS, Rossi) as tables.

Prints the tables of :func:`training.real.benchmark_real` and, with ``--write-docs``, replaces the
source's section of ``docs/benchmarks.md`` (between ``<!-- real:<source> -->`` and
``<!-- /real:<source> -->``) with the tables, the command that produced them, the date and the notes.
Register with ``training.real.register(app)``; ``python -m training.real benchmark real ...``
runs it without the root application.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import tempfile
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from features.cli import CliError, PublicSource, console

if TYPE_CHECKING:
    import pandas as pd

    from training.real._report import BenchmarkResult

log = logging.getLogger(__name__)
benchmark_app = typer.Typer(help="Benchmarks of the models on real public data.", no_args_is_help=True)

#: the benchmark page, beside the code (one section per source between markers)
DOCS_PATH = Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"
DOCS_HEADER = """# Benchmarks: stage models, scoring service, real public data

The synthetic-cohort and service sections are written by hand from the commands they quote. The
real-data sections are figures of `riskctl benchmark real` on the public files described in `../shared/data/README.md`
(read in place, never copied into the project). Each section is rewritten by
`riskctl benchmark real --data <source> --train <file> --write-docs`; everything between a section's
markers is generated. Every computed figure is out-of-fold (or on a separate `--test` file), so no
row is scored by a model that saw it; published figures are quoted as published.
"""


#: the real data sets with a benchmark (those with an adapter)
DataSource = PublicSource
TITLES = {
    DataSource.NIJ: "NIJ Recidivism Forecasting Challenge (Georgia parole)",
    DataSource.COMPAS: "COMPAS, Broward County (ProPublica)",
    DataSource.ROSSI: "Rossi, Berk & Lenihan (Maryland release study)",
}


def markers(source: str) -> tuple[str, str]:
    """The opening and closing markers of ``source``'s section."""
    return f"<!-- real:{source} -->", f"<!-- /real:{source} -->"


def update_docs(path: Path, source: str, section: str) -> Path:
    """Replace ``source``'s section of ``path`` with ``section`` (append it if absent), atomically.

    The file is created with :data:`DOCS_HEADER` when missing; the other sections are left as they were.
    """
    text = path.read_text(encoding="utf-8") if path.exists() else DOCS_HEADER
    start, end = markers(source)
    block = f"{start}\n{section.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)
    return path


def command_line(source: str, train: Path, test: Path | None, seed: int) -> str:
    """The ``riskctl`` command that reproduces a run."""
    parts = ["riskctl", "benchmark", "real", "--source", source, "--train", str(train)]
    if test is not None:
        parts += ["--test", str(test)]
    return shlex.join([*parts, "--seed", str(seed), "--write-docs"])


def docs_section(result: BenchmarkResult, command: str) -> str:
    """The Markdown section of one run: title, command, date, tables, target checks and notes."""
    source = DataSource(result.source)
    run = f" · MLflow run `{result.run_id}` (experiment `real-{source}`)" if result.run_id else ""
    return "\n".join(
        [
            f"## {TITLES[source]}",
            "",
            f"Command: `{command}`  ",
            f"Date: {date.today().isoformat()} · {result.seconds:.0f} s{run}",
            "",
            result.to_markdown(),
        ]
    )


def rich_table(title: str, table: pd.DataFrame) -> Table:
    """A rich table of one result table (numbers right-aligned, formatted as in the docs)."""
    from training.real._report import format_cell

    out = Table(title=title, title_justify="left")
    out.add_column(str(table.index.name or ""))
    for column in table.columns:
        out.add_column(str(column), justify="left" if column == "basis" else "right")
    for row, values in table.iterrows():
        out.add_row(str(row), *(format_cell(v, str(c)) for c, v in values.items()))
    return out


@benchmark_app.command("real")
def real(
    data: Annotated[DataSource, typer.Option("--source", "--data", help="the public data set")],
    train: Annotated[Path, typer.Option(help="the public training file (or any file in the same format)")],
    test: Annotated[
        Path | None,
        typer.Option(
            help="a file in the same format as --train: fit on --train and evaluate on it instead of cross-validating"
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of the folds, hold-out splits and models")] = 0,
    write_docs: Annotated[
        bool, typer.Option("--write-docs/--no-write-docs", help="replace this source's section of docs/benchmarks.md")
    ] = False,
    docs: Annotated[Path, typer.Option(help="the benchmark page to update")] = DOCS_PATH,
    track: Annotated[
        bool, typer.Option("--track/--no-track", help="log the run to MLflow (experiment real-<source>)")
    ] = True,
) -> None:
    """Benchmark the model on a real public data set beside the published figures."""
    from features.schema import DataValidationError
    from training.real._benchmark import benchmark_real

    for path in (train, test):
        if path is not None and not path.is_file():
            raise CliError(f"{path}: no such file")
    try:
        with console.status(f"{data.value}: fitting and scoring"):
            result = benchmark_real(data.value, train, test, seed=seed, track=track)
    except DataValidationError as err:
        raise CliError(f"refused: {err}") from None
    for title, table in result.tables.items():
        console.print(rich_table(title, table))
    for check in result.checks:
        console.print(f"target: {check}")
    console.print(
        f"{len(result.notes)} notes (in the docs and the MLflow artefact benchmark.md); "
        f"{result.seconds:.1f} s" + (f"; MLflow run {result.run_id}" if result.run_id else "")
    )
    if write_docs:
        path = update_docs(docs, data.value, docs_section(result, command_line(data.value, train, test, seed)))
        console.print(f"updated {path} (section {markers(data.value)[0]})")


def register(app: typer.Typer) -> None:
    """Add the ``benchmark`` group (``benchmark real``) to the root application."""
    app.add_typer(benchmark_app, name="benchmark")


def standalone_app() -> typer.Typer:
    """An application holding only the ``benchmark`` group (``python -m training.real``)."""
    app = typer.Typer(no_args_is_help=True)

    @app.callback()
    def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log at INFO level")] = False) -> None:
        logging.basicConfig(
            level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )

    register(app)
    return app
