"""The canonical tables (design.md, "Data contract") and their validation.

Every source (synthetic cohort, public data sets, a case-management export, a request to the
service) is turned into three tables, and everything downstream reads only these:

``persons``
    one row per supervision term, keyed by ``person_id``;
``events``
    one row per dated event (``person_id``, ``date``, ``event_type``, optional ``value``);
``outcomes``
    ``person_id``, ``reoffence_date``, ``revocation_date`` (both nullable), ``followup_end``.

:func:`validate_tables` refuses bad rows with a :class:`DataValidationError` whose message names
the table, the row, the record id and the field. Column checks are pandera schemas; the checks
that span tables (an event before birth or after the end of follow-up, an event of an unknown
person) are vectorised pandas and report in the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from features.vocab import CATEGORICAL_COLUMNS, INTAKE_FLAGS, EventType, Labelled, Tier

PERSON_DATE_COLUMNS = ["birth_date", "supervision_start", "supervision_end"]
PERSON_COLUMNS = [
    "person_id",
    "sex",
    "birth_date",
    "education",
    "employment",
    "marital",
    "local",
    "supervision_type",
    "offence",
    "sentence_months",
    "supervision_start",
    "supervision_end",
    "prior_convictions",
    "prior_supervisions",
    *INTAKE_FLAGS,
]
#: Optional ``persons`` columns: kept in the records, never model inputs (``office``: the 司法所 in charge;
#: ``caseworker``: the user name of the caseworker assigned, whose "today" page lists the person;
#: ``office_name``: the office's name, which pages show instead of its code).
OPTIONAL_PERSON_COLUMNS = ["office", "caseworker", "office_name"]
#: Optional ``persons`` column: the person's management tier in the agency's records at export
#: (``features.vocab.Tier`` codes, empty where unknown); the case store starts from it.
CURRENT_TIER_COLUMN = "current_tier"
EVENT_COLUMNS = ["person_id", "date", "event_type", "value"]
OUTCOME_COLUMNS = ["person_id", "reoffence_date", "revocation_date", "followup_end"]
MAX_PROBLEMS_SHOWN = 20
#: Plausible dates of any record: far inside the 64-bit nanosecond range of pandas (1677 to 2262), so
#: that no date arithmetic overflows, and wide enough for every real supervision record.
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2100, 12, 31)
#: Plausible age at the start of supervision, in years.
MIN_AGE_YEARS, MAX_AGE_YEARS = 12, 110


@dataclass(frozen=True)
class Problem:
    """One refused value: where it is and what is wrong with it."""

    table: str
    row: int | None
    record_id: str | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.table} row {self.row}" if self.row is not None else self.table
        if self.record_id is not None:
            where += f" (person_id={self.record_id})"
        return f"{where}, field '{self.field}': {self.message}"


class DataValidationError(ValueError):
    """Input refused; ``problems`` lists every refused value (the message shows the first ones)."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        shown = "\n  ".join(str(p) for p in problems[:MAX_PROBLEMS_SHOWN])
        more = len(problems) - MAX_PROBLEMS_SHOWN
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"{len(problems)} problem(s) in the input:\n  {shown}{tail}")


@dataclass
class CaseTables:
    """The three canonical tables of one data set."""

    persons: pd.DataFrame
    events: pd.DataFrame
    outcomes: pd.DataFrame | None = None
    extra: dict[str, pd.DataFrame] = field(default_factory=dict)

    def write(self, out: str | Path, *, validate: bool = False) -> Path:
        """Write as Parquet files into ``out`` atomically: all tables or none.

        With ``validate=True`` the tables are validated first and nothing is written if refused.
        """
        if validate:
            validate_tables(self)
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.partial")
        if tmp.exists():
            _rmtree(tmp)
        tmp.mkdir()
        tables = {"persons": self.persons, "events": self.events, **self.extra}
        if self.outcomes is not None:
            tables["outcomes"] = self.outcomes
        for name, frame in tables.items():
            frame.to_parquet(tmp / f"{name}.parquet", index=False)
        if out.exists():
            _rmtree(out)
        tmp.rename(out)
        return out

    @classmethod
    def read(cls, path: str | Path, *, validate: bool = True) -> CaseTables:
        """Read the tables written by :meth:`write` (outcomes optional), validating them."""
        path = Path(path)
        if not (path / "persons.parquet").exists():
            raise FileNotFoundError(f"no canonical tables in {path} (persons.parquet missing)")
        persons = pd.read_parquet(path / "persons.parquet")
        events = pd.read_parquet(path / "events.parquet")
        outcomes_path = path / "outcomes.parquet"
        outcomes = pd.read_parquet(outcomes_path) if outcomes_path.exists() else None
        extra = {
            p.stem: pd.read_parquet(p)
            for p in path.glob("*.parquet")
            if p.stem not in {"persons", "events", "outcomes"}
        }
        tables = cls(persons, events, outcomes, extra)
        return validate_tables(tables) if validate else tables


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path)


def _date_column(nullable: bool = False) -> pa.Column:
    bounds = pa.Check.in_range(pd.Timestamp(EARLIEST_DATE), pd.Timestamp(LATEST_DATE))
    return pa.Column("datetime64[ns]", bounds, nullable=nullable, coerce=True)


def _category_column(vocab: type[Labelled]) -> pa.Column:
    return pa.Column(str, pa.Check.isin(vocab.codes()), nullable=False, coerce=True)


PERSONS_SCHEMA = pa.DataFrameSchema(
    {
        "person_id": pa.Column(str, nullable=False, coerce=True, unique=True),
        **{name: _category_column(vocab) for name, vocab in CATEGORICAL_COLUMNS.items()},
        "birth_date": _date_column(),
        "local": pa.Column(bool, nullable=False, coerce=True),
        "sentence_months": pa.Column(float, pa.Check.in_range(0, 600), nullable=False, coerce=True),
        "supervision_start": _date_column(),
        "supervision_end": _date_column(),
        "prior_convictions": pa.Column(int, pa.Check.ge(0), nullable=False, coerce=True),
        "prior_supervisions": pa.Column(int, pa.Check.ge(0), nullable=False, coerce=True),
        **{flag: pa.Column(bool, nullable=False, coerce=True) for flag in INTAKE_FLAGS},
        "office": pa.Column(str, pa.Check.str_length(1, 64), nullable=True, coerce=True, required=False),
        "caseworker": pa.Column(str, pa.Check.str_length(1, 128), nullable=True, coerce=True, required=False),
        "office_name": pa.Column(str, pa.Check.str_length(1, 128), nullable=True, coerce=True, required=False),
        CURRENT_TIER_COLUMN: pa.Column(str, pa.Check.isin(Tier.codes()), nullable=True, coerce=True, required=False),
    },
    strict=False,
    name="persons",
)

EVENTS_SCHEMA = pa.DataFrameSchema(
    {
        "person_id": pa.Column(str, nullable=False, coerce=True),
        "date": _date_column(),
        "event_type": _category_column(EventType),
        "value": pa.Column(float, nullable=True, coerce=True),
    },
    strict=False,
    name="events",
)

OUTCOMES_SCHEMA = pa.DataFrameSchema(
    {
        "person_id": pa.Column(str, nullable=False, coerce=True, unique=True),
        "reoffence_date": _date_column(nullable=True),
        "revocation_date": _date_column(nullable=True),
        "followup_end": _date_column(),
    },
    strict=False,
    name="outcomes",
)


def _schema_problems(table: str, frame: pd.DataFrame, schema: pa.DataFrameSchema) -> tuple[pd.DataFrame, list[Problem]]:
    """Validate one table with its pandera schema; return (validated frame, problems)."""
    missing = [name for name, c in schema.columns.items() if c.required and name not in frame.columns]
    if missing:
        return frame, [Problem(table, None, None, c, "required column is missing") for c in missing]
    frame = frame.reset_index(drop=True)
    try:
        return schema.validate(frame, lazy=True), []
    except SchemaErrors as err:
        return frame, _problems_from_failures(table, frame, err.failure_cases)


def _problems_from_failures(table: str, frame: pd.DataFrame, cases: pd.DataFrame) -> list[Problem]:
    problems = []
    ids = frame.get("person_id", None)
    # pandera's "index" column is read as a column: on a row tuple, ``case.index`` is the tuple's own method
    for index, case in zip(cases["index"], cases.itertuples(index=False), strict=True):
        row = None if pd.isna(index) else int(index)
        column = case.column if isinstance(case.column, str) and case.column != table else None
        check = str(case.check)
        if column is None:
            column = check
        record_id = str(ids.iloc[row]) if ids is not None and row is not None else None
        problems.append(Problem(table, row, record_id, column, _describe(check, case.failure_case)))
    return list(dict.fromkeys(problems))


def _describe(check: str, value: Any) -> str:
    if check.startswith("isin"):
        return f"unknown category {value!r}"
    if check == "not_nullable":
        return "required value is missing"
    if check.startswith("field_uniqueness") or check == "unique":
        return f"duplicate id {value!r}"
    if check.startswith("in_range(") and str(EARLIEST_DATE) in check:
        return f"date {pd.Timestamp(value):%Y-%m-%d} is outside the plausible range {EARLIEST_DATE} to {LATEST_DATE}"
    if check.startswith("coerce_dtype") or check.startswith("dtype"):
        return f"cannot read {value!r} as {check.split('(')[-1].rstrip(')')}"
    return f"{check} failed for {value!r}"


def _cross_problems(persons: pd.DataFrame, events: pd.DataFrame, outcomes: pd.DataFrame | None) -> list[Problem]:
    """Checks spanning tables: unknown persons, events before birth or after follow-up."""
    problems = _date_order_problems(persons)
    known = persons.drop_duplicates("person_id").set_index("person_id")  # a duplicate id is a problem of its own
    unknown = ~events["person_id"].isin(known.index)
    for row in events.index[unknown]:
        problems.append(
            Problem("events", int(row), events.loc[row, "person_id"], "person_id", "no such person in persons")
        )
    birth = events["person_id"].map(known["birth_date"])
    for row in events.index[(events["date"] < birth).to_numpy()]:
        problems.append(
            Problem(
                "events",
                int(row),
                events.loc[row, "person_id"],
                "date",
                f"event dated {events.loc[row, 'date']:%Y-%m-%d} before birth",
            )
        )
    if outcomes is not None:
        end = events["person_id"].map(outcomes.drop_duplicates("person_id").set_index("person_id")["followup_end"])
        for row in events.index[(events["date"] > end).to_numpy()]:
            problems.append(
                Problem(
                    "events",
                    int(row),
                    events.loc[row, "person_id"],
                    "date",
                    f"event dated {events.loc[row, 'date']:%Y-%m-%d} after the end of follow-up",
                )
            )
        problems += _outcome_problems(known, outcomes)
    return problems


def _date_order_problems(persons: pd.DataFrame) -> list[Problem]:
    problems = []
    age = (persons["supervision_start"] - persons["birth_date"]).dt.days / 365.25
    for row in persons.index[((age < MIN_AGE_YEARS) | (age > MAX_AGE_YEARS)).to_numpy()]:
        problems.append(
            Problem(
                "persons",
                int(row),
                str(persons.loc[row, "person_id"]),
                "birth_date",
                f"age at supervision_start would be {float(age.loc[row]):.1f} years, outside "
                f"{MIN_AGE_YEARS} to {MAX_AGE_YEARS}",
            )
        )
    for later, earlier in (("supervision_start", "birth_date"), ("supervision_end", "supervision_start")):
        for row in persons.index[(persons[later] <= persons[earlier]).to_numpy()]:
            problems.append(
                Problem(
                    "persons",
                    int(row),
                    persons.loc[row, "person_id"],
                    later,
                    f"{later} {persons.loc[row, later]:%Y-%m-%d} is not after "
                    f"{earlier} {persons.loc[row, earlier]:%Y-%m-%d}",
                )
            )
    return problems


def _outcome_problems(known: pd.DataFrame, outcomes: pd.DataFrame) -> list[Problem]:
    problems = []
    start = outcomes["person_id"].map(known["supervision_start"])
    for row in outcomes.index[~outcomes["person_id"].isin(known.index)]:
        problems.append(
            Problem("outcomes", int(row), outcomes.loc[row, "person_id"], "person_id", "no such person in persons")
        )
    for col in ("reoffence_date", "revocation_date", "followup_end"):
        before = (outcomes[col] < start).to_numpy()
        for row in outcomes.index[before]:
            problems.append(
                Problem("outcomes", int(row), outcomes.loc[row, "person_id"], col, "dated before supervision_start")
            )
    for col in ("reoffence_date", "revocation_date"):
        after = (outcomes[col] > outcomes["followup_end"]).to_numpy()
        for row in outcomes.index[after]:
            problems.append(
                Problem("outcomes", int(row), outcomes.loc[row, "person_id"], col, "dated after followup_end")
            )
    return problems


def validate_tables(tables: CaseTables) -> CaseTables:
    """Validate and coerce the canonical tables; raise :class:`DataValidationError` on any problem.

    Returns new tables with coerced dtypes (dates as ``datetime64[ns]``, categories as str).
    Events dated before supervision start are valid history; events before birth or after the
    end of follow-up are not.

    Every problem of every table is reported in one pass: the checks across tables (an event
    before its person's birth, an outcome of an unknown person) run even when a table has
    problems of its own, on the values that can be read (a date that cannot be read is one
    problem, not a second one in every check that uses it).
    """
    persons, problems = _schema_problems("persons", tables.persons, PERSONS_SCHEMA)
    events, event_problems = _schema_problems("events", tables.events, EVENTS_SCHEMA)
    problems += event_problems
    outcomes = tables.outcomes
    if outcomes is not None:
        outcomes, outcome_problems = _schema_problems("outcomes", outcomes, OUTCOMES_SCHEMA)
        problems += outcome_problems
    if problems:
        readable = [
            _readable(frame, schema) if frame is not None and _has_columns(frame, schema) else None
            for frame, schema in ((persons, PERSONS_SCHEMA), (events, EVENTS_SCHEMA), (outcomes, OUTCOMES_SCHEMA))
        ]
        if readable[0] is not None and readable[1] is not None:
            known = {(p.table, p.row, p.field) for p in problems}
            cross = _cross_problems(readable[0], readable[1], readable[2])
            problems += [p for p in cross if (p.table, p.row, p.field) not in known]
        raise DataValidationError(problems)
    problems = _cross_problems(persons, events, outcomes)
    if problems:
        raise DataValidationError(problems)
    return CaseTables(persons, events, outcomes, dict(tables.extra))


def _has_columns(frame: pd.DataFrame, schema: pa.DataFrameSchema) -> bool:
    return all(name in frame.columns for name, c in schema.columns.items() if c.required)


def _readable(frame: pd.DataFrame, schema: pa.DataFrameSchema) -> pd.DataFrame:
    """A table that failed its schema, with the values the cross-table checks use read leniently: dates that
    cannot be read are missing (NaT, so no comparison flags them again), ids as text."""
    frame = frame.reset_index(drop=True).copy()
    for name, column in schema.columns.items():
        if name in frame.columns and str(column.dtype).startswith("datetime64"):
            frame[name] = pd.to_datetime(frame[name], errors="coerce")
    if "person_id" in frame.columns:
        frame["person_id"] = frame["person_id"].astype(str)
    return frame
