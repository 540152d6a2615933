"""``riskctl``: one command with a sub-command for every step (data, features, train, evaluate, serve...).

Conventions (features/cli.py): ``--stage`` and ``--source`` are choices, a folder of canonical tables is
always ``--data``, long loops show a progress bar with counts and ETA, and a refusal is one line
(``Error: ...``) with exit code 2; an unexpected fault shows its traceback with ``--debug``. Heavy
libraries are imported inside the commands, so ``riskctl --help`` answers at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from features.cli import build_frames, console, data_app, features_app, summary_table, write_synthetic
from features.settings import keep_telemetry_off
from features.synthetic import CohortConfig
from features.vocab import Stage
from serving.cli import _backup as backup_commands
from serving.cli import _cases as cases_commands
from serving.cli import _monitor as monitor_commands
from serving.cli import _promote as promote_commands
from serving.cli import _revalidate as revalidate_commands
from serving.cli import _service as serving_commands
from serving.cli._runtime import open_audit_store
from serving.settings import get_settings
from training import cli as training_cli
from training import real as real_benchmark

if TYPE_CHECKING:
    from features.schema import CaseTables

log = logging.getLogger(__name__)
DIST = "reoffence-risk"

app = typer.Typer(
    help="Re-offending risk assessment: data, features, models, service.",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(data_app, name="data")
app.add_typer(features_app, name="features")
training_cli.register(app)
promote_commands.register(app)
real_benchmark.register(app)
cases_commands.register(app)
serving_commands.register(app)
monitor_commands.register(app)
revalidate_commands.register(app)
backup_commands.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"riskctl {metadata.version(DIST)}")
        raise typer.Exit()


@app.callback()
def root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log at INFO level")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="show the traceback of an error")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="show the version and exit")
    ] = False,
) -> None:
    """Re-offending risk assessment: data, features, models, service."""
    keep_telemetry_off()  # before any command imports MLflow or BentoML (RISK_TELEMETRY=true turns it back on)
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="working folder of the demo")] = Path("var/demo"),
    persons: Annotated[int, typer.Option(min=100, help="synthetic cohort size")] = 20_000,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    lang: Annotated[serving_commands.LangChoice, typer.Option(help="language of the scored example")] = (
        serving_commands.LangChoice.ZH
    ),
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="keep the service running at the end (until Ctrl-C)")
    ] = True,
    port: Annotated[int, typer.Option(help="port of the service kept running")] = 3000,
) -> None:
    """The main job on embedded defaults: cohort, features, train and promote, score one person, then serve."""
    from features.cli import StageChoice
    from training.cli import train

    data = out / "data"
    # the cohort moved in time so that its data end today: the console's pages, dated today, then show a
    # roll with recent records (the same people, events and outcomes as drawn, only later)
    cohort = CohortConfig(persons=persons, seed=seed, shift_to=dt.date.today().isoformat())
    tables = write_synthetic(data, cohort)
    frames = build_frames(tables, list(Stage), out / "features")
    console.print(summary_table(frames))
    load_case_store(tables, source=str(data))
    train(data=data, stage=StageChoice.ALL, seed=seed, temporal=None, budget=None, promote_after=True)
    from training.registry import registered_versions, serving_summary

    console.print("\nModels in service:", markup=False)
    for line in serving_summary(registered_versions(get_settings())):
        console.print(f"  {line}", markup=False, soft_wrap=True)
    env = serving_commands.demo_service(get_settings(), tables, lang=lang.value)
    if serve_after:  # the stages that got a champion, as imported above
        serving_commands.exec_service(get_settings(), host="127.0.0.1", port=port, env=env)


def main() -> None:
    """The ``riskctl`` entry point. Refusals (:class:`~features.cli.CliError`) and bad arguments exit with 2
    and one ``Error:`` line (click's own handling); an unexpected fault is one line with exit code 1, and its
    traceback with ``--debug``."""
    keep_telemetry_off()  # MLflow's and BentoML's usage telemetry, unless RISK_TELEMETRY=true
    try:
        app()
    except Exception as err:
        if "--debug" in sys.argv[1:]:
            raise
        print(f"Error: {type(err).__name__}: {err} (run with --debug for the traceback)", file=sys.stderr)
        sys.exit(1)


def load_case_store(tables: CaseTables, *, source: str) -> None:
    """Load the demo cohort into the case store (``riskctl cases import``; a re-run changes nothing)."""
    from serving.cases import CaseStore

    settings = get_settings()
    store = CaseStore.open(settings)
    summary = store.import_tables(tables, source=source, audit=open_audit_store(settings), actor="demo")
    console.print(f"case store: {summary.text()}")
    console.print(
        "  try: riskctl cases due --office chengguan --as-of 2024-06-01; "
        "riskctl review --office hexi --as-of 2024-06-01 --html var/review.html"
    )
    store.close()
