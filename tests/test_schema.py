"""Validation of the canonical tables: each kind of bad row is refused with a message naming it."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.schema import CaseTables, DataValidationError, validate_tables


@pytest.fixture()
def tables(cohort: CaseTables) -> CaseTables:
    p = cohort.persons.head(5).copy()
    ids = set(p["person_id"])
    e = cohort.events[cohort.events["person_id"].astype(str).isin(ids)].copy()
    e["person_id"] = e["person_id"].astype(str)
    e["event_type"] = e["event_type"].astype(str)
    assert cohort.outcomes is not None
    o = cohort.outcomes[cohort.outcomes["person_id"].isin(ids)].copy()
    return CaseTables(p.reset_index(drop=True), e.reset_index(drop=True), o.reset_index(drop=True))


def refused(tables: CaseTables) -> DataValidationError:
    with pytest.raises(DataValidationError) as info:
        validate_tables(tables)
    return info.value


def test_valid_tables_pass_and_are_coerced(tables: CaseTables) -> None:
    out = validate_tables(tables)
    assert str(out.persons["birth_date"].dtype) == "datetime64[ns]"
    assert len(out.events) == len(tables.events)


def test_unknown_category_is_named(tables: CaseTables) -> None:
    tables.persons.loc[2, "offence"] = "piracy"
    err = refused(tables)
    pid = cast(str, tables.persons.loc[2, "person_id"])
    assert f"persons row 2 (person_id={pid}), field 'offence': unknown category 'piracy'" in str(err)


def test_unknown_event_type_is_named(tables: CaseTables) -> None:
    tables.events.loc[0, "event_type"] = "teleported"
    err = refused(tables)
    assert "events row 0" in str(err) and "field 'event_type'" in str(err) and "'teleported'" in str(err)


def test_missing_required_field_is_named(tables: CaseTables) -> None:
    tables.persons.loc[1, "birth_date"] = None
    err = refused(tables)
    assert "persons row 1" in str(err) and "field 'birth_date': required value is missing" in str(err)


def test_missing_column_is_named(tables: CaseTables) -> None:
    err = refused(CaseTables(tables.persons.drop(columns="sex"), tables.events, tables.outcomes))
    assert "field 'sex': required column is missing" in str(err)


def test_event_before_birth_is_refused(tables: CaseTables) -> None:
    pid = cast(str, tables.persons.loc[0, "person_id"])
    birth = pd.Timestamp(cast(pd.Timestamp, tables.persons.loc[0, "birth_date"]))
    bad = pd.DataFrame(
        {"person_id": [pid], "date": [birth - pd.Timedelta(days=3)], "event_type": ["warning"], "value": [None]}
    )
    events = pd.concat([tables.events, bad], ignore_index=True)
    err = refused(CaseTables(tables.persons, events, tables.outcomes))
    assert f"(person_id={pid}), field 'date'" in str(err) and "before birth" in str(err)


def test_event_after_followup_is_refused(tables: CaseTables) -> None:
    assert tables.outcomes is not None
    pid = tables.outcomes.iloc[0]["person_id"]
    late = pd.Timestamp(tables.outcomes.iloc[0]["followup_end"]) + pd.Timedelta(days=1)
    bad = pd.DataFrame({"person_id": [pid], "date": [late], "event_type": ["warning"], "value": [None]})
    err = refused(CaseTables(tables.persons, pd.concat([tables.events, bad], ignore_index=True), tables.outcomes))
    assert "after the end of follow-up" in str(err)


def test_event_before_supervision_start_is_valid_history(tables: CaseTables) -> None:
    pid = cast(str, tables.persons.loc[0, "person_id"])
    start = pd.Timestamp(cast(pd.Timestamp, tables.persons.loc[0, "supervision_start"]))
    early = pd.DataFrame(
        {"person_id": [pid], "date": [start - pd.Timedelta(days=30)], "event_type": ["family_divorce"], "value": [None]}
    )
    validate_tables(CaseTables(tables.persons, pd.concat([tables.events, early], ignore_index=True), tables.outcomes))


def test_end_before_start_is_refused(tables: CaseTables) -> None:
    start = pd.Timestamp(cast(pd.Timestamp, tables.persons.loc[3, "supervision_start"]))
    tables.persons.loc[3, "supervision_end"] = start - pd.Timedelta(days=1)
    err = refused(tables)
    assert "persons row 3" in str(err) and "field 'supervision_end'" in str(err) and "is not after" in str(err)


def test_duplicate_ids_are_refused(tables: CaseTables) -> None:
    tables.persons.loc[4, "person_id"] = cast(str, tables.persons.loc[0, "person_id"])
    err = refused(tables)
    assert "duplicate id" in str(err) and "persons row 4" in str(err)


def test_event_of_unknown_person_is_refused(tables: CaseTables) -> None:
    bad = pd.DataFrame(
        {"person_id": ["nobody"], "date": [pd.Timestamp("2020-01-01")], "event_type": ["warning"], "value": [None]}
    )
    err = refused(CaseTables(tables.persons, pd.concat([tables.events, bad], ignore_index=True), tables.outcomes))
    assert "(person_id=nobody), field 'person_id': no such person" in str(err)


def test_refused_input_writes_nothing(tables: CaseTables, tmp_path: Path) -> None:
    tables.persons.loc[0, "sex"] = "unknown-sex"
    with pytest.raises(DataValidationError):
        tables.write(tmp_path / "out", validate=True)
    assert not (tmp_path / "out").exists()
    assert not any(tmp_path.iterdir())


def test_write_read_round_trip(tables: CaseTables, tmp_path: Path) -> None:
    tables.write(tmp_path / "t", validate=True)
    back = CaseTables.read(tmp_path / "t")
    assert list(back.persons["person_id"]) == list(tables.persons["person_id"])
    assert len(back.events) == len(tables.events)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    bad_person=st.integers(0, 4),
    born_before=st.integers(0, 4),
    bad_type=st.booleans(),
    bad_outcome=st.booleans(),
)
def test_every_problem_of_every_table_is_reported_in_one_pass(
    tables: CaseTables, bad_person: int, born_before: int, bad_type: bool, bad_outcome: bool
) -> None:
    """Whatever the mix of problems, each is named: an event dated before birth is reported even when persons
    (or events themselves, or outcomes) have problems of their own."""
    persons, events = tables.persons.copy(), tables.events.copy()
    assert tables.outcomes is not None
    outcomes = tables.outcomes.copy()
    persons.loc[bad_person, "offence"] = "piracy"
    pid = str(persons.loc[born_before, "person_id"])
    birth = pd.Timestamp(cast(pd.Timestamp, persons.loc[born_before, "birth_date"]))
    early = {"person_id": [pid], "date": [birth - pd.Timedelta(days=3)], "event_type": ["warning"], "value": [None]}
    events = pd.concat([events, pd.DataFrame(early)], ignore_index=True)
    if bad_type:
        events.loc[0, "event_type"] = "teleported"
    if bad_outcome:
        outcomes.loc[0, "person_id"] = "nobody"
    text = str(refused(CaseTables(persons, events, outcomes)))
    pid_bad = str(persons.loc[bad_person, "person_id"])
    assert f"persons row {bad_person} (person_id={pid_bad}), field 'offence': unknown category 'piracy'" in text
    assert f"events row {len(events) - 1} (person_id={pid}), field 'date'" in text and "before birth" in text
    assert ("'teleported'" in text) == bad_type
    assert ("outcomes row 0 (person_id=nobody), field 'person_id': no such person" in text) == bad_outcome
