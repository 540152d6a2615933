"""``riskctl cases ...`` and ``riskctl review``: the case store from the command line.

A refused input (bad import row, unknown person or office, event after the date) exits with code 2
and a message naming the record and the field; nothing is written then.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from features.cli import CliError, console
from features.vocab import Lang, Stage
from serving.cases import CaseError
from serving.cli._runtime import open_audit_store
from serving.settings import get_settings

cases_app = typer.Typer(
    help="The case store: import exports, record events, due lists, decisions.", no_args_is_help=True
)
T = TypeVar("T")


class Language(StrEnum):
    ZH = "zh"
    EN = "en"


def _refusing(fn: Callable[[], T]) -> T:
    """``fn()``; a :class:`CaseError`, or a stage no model serves, becomes the CLI's refusal (``Error: ...``,
    exit code 2)."""
    from serving.scoring import NoModelError

    try:
        return fn()
    except CaseError as err:
        raise CliError(err.message) from None
    except NoModelError as err:
        raise CliError(str(err)) from None


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _store() -> Any:
    from serving.cases import CaseStore

    return CaseStore.open(get_settings())


@cases_app.command("import")
def import_(
    folder: Annotated[Path, typer.Argument(help="folder with persons, events (and outcomes) as .parquet or .csv")],
) -> None:
    """Load canonical tables: validated, all or nothing, persons upserted by id, only new events added."""
    from serving.cases import file_hashes, read_dir

    store, audit = _store(), open_audit_store(get_settings())
    summary = _refusing(
        lambda: store.import_tables(
            read_dir(folder),
            source=str(folder),
            files=file_hashes(folder),
            audit=audit,
            actor=f"cli:{getpass.getuser()}",
        )
    )
    console.print(summary.text())


@cases_app.command("event")
def event(
    person: Annotated[str, typer.Option(help="person id")],
    date: Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="event date")],
    event_type: Annotated[str, typer.Option("--type", help="event type code (features.vocab.EventType)")],
    value: Annotated[float | None, typer.Option(help="hours, points... where the type has one")] = None,
    actor: Annotated[str | None, typer.Option(help="who records it; default cli:<user>")] = None,
) -> None:
    """Record one dated event of a person (validated as the canonical events table)."""
    store, audit = _store(), open_audit_store(get_settings())
    row = _refusing(
        lambda: store.record_event(
            person,
            date=date.date(),
            event_type=event_type,
            value=value,
            actor=actor or f"cli:{getpass.getuser()}",
            audit=audit,
        )
    )
    console.print(f"recorded event {row['event_id']}: {row['event_type']} on {row['date']} for {person}")


@cases_app.command("due")
def due(
    office: Annotated[str, typer.Option(help="office (司法所)")],
    as_of: Annotated[dt.datetime, typer.Option("--as-of", formats=["%Y-%m-%d"], help="date of the list")],
    out: Annotated[Path | None, typer.Option(help="also write the list as JSON here")] = None,
) -> None:
    """Each person on the office's roll: current tier and each assessment done, due, upcoming or overdue."""
    from rich.table import Table

    from serving.cases import due_list

    listing = _refusing(lambda: due_list(_store(), office=office, as_of=as_of.date()))
    table = Table(title=f"{office} on {listing.as_of}: {listing.count} on the roll {listing.counts}")
    for col in ("person", "tier", *(s.value for s in Stage)):
        table.add_column(col)
    for p in listing.persons:
        table.add_row(p.person_id, p.current_tier, *(f"{s.state} ({s.opens}..{s.closes})" for s in p.stages))
    console.print(table)
    if out:
        out.write_text(listing.model_dump_json(indent=1), encoding="utf-8")


@cases_app.command("decisions")
def decisions(
    start: Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="first day")],
    end: Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="last day")],
    office: Annotated[str | None, typer.Option(help="one office (default all)")] = None,
) -> None:
    """Tier decisions proposed, approved and rejected, and the override rate, for a period."""
    from serving.cases import decision_report

    report = decision_report(_store(), start=start.date(), end=end.date(), office=office)
    console.print_json(report.model_dump_json())


def review(
    as_of: Annotated[dt.datetime, typer.Option("--as-of", formats=["%Y-%m-%d"], help="meeting date")],
    office: Annotated[str | None, typer.Option(help="office (司法所); omit with --all")] = None,
    every_office: Annotated[bool, typer.Option("--all", help="everyone on the roll of every office")] = False,
    lang: Annotated[Language, typer.Option(help="language of the list")] = Language.ZH,
    csv: Annotated[Path | None, typer.Option(help="write the list as CSV")] = None,
    html: Annotated[Path | None, typer.Option(help="write the printable HTML page")] = None,
    actor: Annotated[str | None, typer.Option(help="who runs it; default cli:<user>")] = None,
) -> None:
    """The monthly review meeting: score everyone on the roll, store the assessments and the run."""
    from serving.cases import review_csv, review_html, run_review
    from serving.cli._runtime import offline_scorer, use_project_bentoml_home

    if (office is None) == (not every_office):
        raise CliError("give --office X or --all")
    settings = get_settings()
    use_project_bentoml_home(settings)
    scorer, audit = offline_scorer(settings)
    language: Lang = "zh" if lang is Language.ZH else "en"
    run = _refusing(
        lambda: run_review(
            _store(),
            scorer,
            audit,
            office=office,
            as_of=as_of.date(),
            actor=actor or f"cli:{getpass.getuser()}",
            lang=language,
        )
    )
    for r in run.rows[:20]:
        console.print(
            f"{r.alert:6s} {r.person_id} {r.probability:6.1%} tier by risk {r.tier_by_risk:8s} "
            f"current {r.current_tier:8s} {'' if r.mismatch == 'none' else r.mismatch}  {_escape(r.summary)}"
        )
    console.print(f"run {run.run_id}: {run.count} people, {json.dumps(run.counts)}")
    if csv:
        csv.write_text(review_csv(run), encoding="utf-8")
    if html:
        html.write_text(review_html(run), encoding="utf-8")


def register(app: typer.Typer) -> None:
    """Add ``cases`` and ``review`` to ``riskctl``."""
    app.add_typer(cases_app, name="cases")
    app.command("review")(review)
