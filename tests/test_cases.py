"""Case store: all-or-nothing idempotent imports, recorded events, due list, tier decisions, decision report.

Every test runs on SQLite and, when ``RISK_TEST_POSTGRES_URL`` is set, on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pandas as pd
import pytest
from cases_support import BACKENDS, hand_tables, index_row, person_row, store_url, subset

from features.schema import CaseTables
from features.synthetic import CohortConfig, generate_cohort
from serving.audit import AuditStore
from serving.auth import Principal, Role
from serving.cases import (
    CaseError,
    CaseStore,
    DecisionOut,
    approve,
    decision_report,
    due_list,
    propose,
    read_dir,
    reject,
)

SECRET = "1e" * 32


@pytest.fixture(scope="module")
def cohort() -> CaseTables:
    return subset(generate_cohort(CohortConfig(persons=300, seed=7)), 300)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CaseStore]:
    url, drop = store_url(request.param, tmp_path)
    s = CaseStore(url)
    yield s
    s.close()
    drop()


def test_sqlite_store_file_is_private(tmp_path: Path) -> None:
    CaseStore(f"sqlite:///{tmp_path / 'var' / 'cases.db'}").close()
    assert (tmp_path / "var" / "cases.db").stat().st_mode & 0o777 == 0o600


def test_import_then_reimport_changes_nothing(store: CaseStore, cohort: CaseTables) -> None:
    first = store.import_tables(cohort, source="export-1")
    assert (first.persons_added, first.events_added, first.outcomes_added) == (300, len(cohort.events), 300)
    again = store.import_tables(cohort, source="export-1")
    assert not again.changed and again.import_id is None
    assert again.persons_unchanged == 300 and again.events_already_stored == len(cohort.events)
    assert "nothing changed" in again.text()
    assert store.counts()["events"] == len(cohort.events)


def test_one_bad_row_refuses_the_whole_import(store: CaseStore, cohort: CaseTables) -> None:
    events = cohort.events.astype({"event_type": str})
    events.loc[17, "event_type"] = "piracy"
    with pytest.raises(CaseError) as err:
        store.import_tables(CaseTables(cohort.persons, events, cohort.outcomes))
    assert err.value.status == 422 and "events row 17" in err.value.message and "event_type" in err.value.message
    assert store.counts() == {"persons": 0, "events": 0, "outcomes": 0, "decisions": 0, "review_runs": 0}


def test_only_new_events_are_added_and_changed_persons_updated(store: CaseStore, cohort: CaseTables) -> None:
    early = cohort.events[cohort.events["date"] < "2020-01-01"]
    store.import_tables(CaseTables(cohort.persons, early, cohort.outcomes))
    persons = cohort.persons.copy()
    persons.loc[3, "office"] = "moved-office"
    twice = cohort.events.iloc[[0]]
    summary = store.import_tables(
        CaseTables(persons, pd.concat([cohort.events, twice], ignore_index=True), cohort.outcomes)
    )
    assert summary.events_added == len(cohort.events) - len(early) + 1  # the repeated event is a second event
    assert summary.events_already_stored == len(early)
    assert (summary.persons_updated, summary.persons_added) == (1, 0)
    assert store.person(cast(str, persons.loc[3, "person_id"]))["office"] == "moved-office"
    assert store.counts()["events"] == len(cohort.events) + 1


def test_csv_export_imports_like_parquet(store: CaseStore, cohort: CaseTables, tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    for name in ("persons", "events", "outcomes"):
        getattr(cohort, name).to_csv(folder / f"{name}.csv", index=False)
    first = store.import_tables(read_dir(folder))
    assert first.persons_added == 300 and first.events_added == len(cohort.events)
    assert not store.import_tables(cohort).changed  # the same records as the parquet tables


def test_recorded_event_is_validated_and_refusals_write_nothing(store: CaseStore, cohort: CaseTables) -> None:
    store.import_tables(cohort)
    pid = cast(str, cohort.persons.loc[0, "person_id"])
    birth = cast(pd.Timestamp, cohort.persons.loc[0, "birth_date"]).date()
    row = store.record_event(pid, date=dt.date(2025, 1, 2), event_type="warning", actor="cw", as_of=dt.date(2025, 1, 3))
    assert row["source"] == "recorded" and row["recorded_by"] == "cw"
    before = store.counts()["events"]
    cases: list[tuple[dict[str, Any], int, str]] = [
        (dict(person_id="nobody", date=dt.date(2025, 1, 2), event_type="warning"), 404, "person_id"),
        (dict(person_id=pid, date=dt.date(2025, 2, 2), event_type="warning"), 422, "date"),  # after as_of
        (dict(person_id=pid, date=birth - dt.timedelta(days=1), event_type="warning"), 422, "date"),
        (dict(person_id=pid, date=dt.date(2025, 1, 2), event_type="piracy"), 422, "event_type"),
    ]
    for kwargs, status, field in cases:
        with pytest.raises(CaseError) as err:
            store.record_event(**kwargs, actor="cw", as_of=dt.date(2025, 1, 3))
        assert err.value.status == status and field in err.value.message and err.value.loc == [field]
    assert store.counts()["events"] == before


def test_due_list_states_at_known_dates(store: CaseStore) -> None:
    store.import_tables(
        hand_tables(
            [
                person_row("A", start="2024-01-01", end="2025-01-01"),  # midpoint 2024-07-02
                person_row("B", start="2023-01-01", end="2024-02-15"),
                person_row("C", start="2024-01-01", end="2025-01-01", office="t2"),
            ]
        )
    )

    def states(as_of: dt.date) -> dict[str, dict[str, str]]:
        listing = due_list(store, office="t1", as_of=as_of)
        return {p.person_id: {s.stage: s.state for s in p.stages} for p in listing.persons}

    assert states(dt.date(2024, 1, 5)) == {
        "A": {"intake": "due", "midterm": "not_yet", "release": "not_yet"},
        "B": {"intake": "overdue", "midterm": "overdue", "release": "upcoming"},  # release window opens 01-16
    }
    assert states(dt.date(2024, 1, 20))["A"]["intake"] == "overdue"
    store.note_assessments([index_row(str(uuid.uuid4()), "A", stage="intake", as_of=dt.date(2024, 1, 3))])
    later = states(dt.date(2024, 5, 20))
    assert later["A"] == {"intake": "done", "midterm": "upcoming", "release": "not_yet"}  # midterm opens 06-02
    assert "B" not in later  # off the roll after the end of the term
    assert states(dt.date(2024, 7, 20))["A"]["midterm"] == "due"
    assert states(dt.date(2024, 8, 2))["A"]["midterm"] == "overdue"
    listing = due_list(store, office="t1", as_of=dt.date(2024, 1, 5))
    assert listing.persons[0].current_tier == "strict" and listing.counts["overdue"] == 2
    with pytest.raises(CaseError) as err:
        due_list(store, office="nowhere", as_of=dt.date(2024, 1, 5))
    assert err.value.status == 404 and err.value.loc == ["office"]


@pytest.fixture()
def flow(store: CaseStore, tmp_path: Path) -> Iterator[tuple[CaseStore, AuditStore, dict[str, str]]]:
    """Two persons of office t1 and one of t2, each with a stored assessment (tier by risk ordinary)."""
    store.import_tables(
        hand_tables(
            [
                person_row("A", start="2024-01-01", end="2025-01-01"),
                person_row("B", start="2024-01-01", end="2025-01-01"),
                person_row("C", start="2024-01-01", end="2025-01-01", office="t2"),
            ]
        )
    )
    audit = AuditStore(f"sqlite:///{tmp_path / 'audit.db'}", secret=SECRET)
    ids = {}
    for pid in "ABC":
        ids[pid] = str(uuid.uuid4())
        audit.append_assessment(
            assessment_id=ids[pid],
            person_id=pid,
            stage="midterm",
            model_name="m",
            model_version="1",
            policy_version="p",
            request={},
            response={},
            actor="cw",
        )
        store.note_assessments([index_row(ids[pid], pid, stage="midterm", as_of=dt.date(2024, 7, 2))])
    yield store, audit, ids
    audit.close()


CW = Principal(Role.CASEWORKER, "wang", "t1")
SUP = Principal(Role.SUPERVISOR, "li", "t1")


def _propose(
    store: CaseStore, audit: AuditStore, ids: dict[str, str], pid: str = "A", who: Principal = CW, **changes: Any
) -> DecisionOut:
    args = (
        dict(
            person_id=pid,
            to_tier="ordinary",
            reason_code="risk_assessment",
            reason="low risk at the mid-term assessment",
            assessment_id=ids[pid],
        )
        | changes
    )
    return propose(store, audit, principal=who, **args)


def test_approval_changes_the_tier_rejection_does_not(flow: tuple[CaseStore, AuditStore, dict[str, str]]) -> None:
    store, audit, ids = flow
    p = _propose(store, audit, ids)
    assert p.status == "proposed" and store.person("A")["tier"] == "strict"
    done = approve(store, audit, principal=SUP, decision_id=p.decision_id, comment="agreed at the meeting")
    assert done.status == "approved" and done.current_tier == "ordinary" == store.person("A")["tier"]
    q = _propose(store, audit, ids, pid="B", reason_code="good_conduct")
    r = reject(store, audit, principal=SUP, decision_id=q.decision_id, comment="too early")
    assert r.status == "rejected" and store.person("B")["tier"] == "strict"
    steps = [s.step for d in (p, q) for s in audit.decision_steps(d.decision_id)]
    assert steps == ["proposed", "approved", "proposed", "rejected"]
    assert audit.verify().ok and audit.head()["decisions"][0] == 4
    with pytest.raises(CaseError) as err:  # decided once only
        approve(store, audit, principal=SUP, decision_id=q.decision_id, comment="changed my mind")
    assert err.value.status == 409


@pytest.mark.parametrize(
    ("case", "status", "field"),
    [
        ("same tier", 409, "to_tier"),
        ("other office", 403, "person_id"),
        ("supervisor proposes", 403, "role"),
        ("unknown reason code", 422, "reason_code"),
        ("unknown person", 404, "person_id"),
        ("someone else's assessment", 404, "assessment_id"),
        ("no office on token", 403, "office"),
    ],
)
def test_refused_proposals_write_nothing(
    flow: tuple[CaseStore, AuditStore, dict[str, str]], case: str, status: int, field: str
) -> None:
    store, audit, ids = flow
    variants: dict[str, dict[str, Any]] = {
        "same tier": dict(to_tier="strict"),
        "other office": dict(pid="C"),
        "supervisor proposes": dict(who=SUP),
        "unknown reason code": dict(reason_code="whim"),
        "unknown person": dict(pid="Z"),
        "someone else's assessment": dict(assessment_id=ids["B"]),
        "no office on token": dict(who=Principal(Role.CASEWORKER, "zhao")),
    }
    changes = variants[case]
    if changes.get("pid") == "Z":
        ids = {**ids, "Z": ids["A"]}
    with pytest.raises(CaseError) as err:
        _propose(store, audit, ids, **changes)
    assert err.value.status == status and err.value.loc == [field], err.value.message
    assert store.counts()["decisions"] == 0 and audit.head()["decisions"][0] == 0


def test_decisions_by_the_wrong_role_or_office_are_refused(flow: tuple[CaseStore, AuditStore, dict[str, str]]) -> None:
    store, audit, ids = flow
    p = _propose(store, audit, ids)
    for who in (CW, Principal(Role.SUPERVISOR, "he", "t2"), Principal(Role.AUDITOR, "zhou")):
        with pytest.raises(CaseError) as err:
            approve(store, audit, principal=who, decision_id=p.decision_id, comment="ok")
        assert err.value.status == 403
    assert store.person("A")["tier"] == "strict" and audit.head()["decisions"][0] == 1


def test_decision_report_counts_and_override_rate(flow: tuple[CaseStore, AuditStore, dict[str, str]]) -> None:
    store, audit, ids = flow
    a = _propose(store, audit, ids)  # to ordinary = the tier by risk: not an override
    approve(store, audit, principal=SUP, decision_id=a.decision_id, comment="agreed")
    b = _propose(store, audit, ids, pid="B", reason_code="family_crisis")
    reject(store, audit, principal=SUP, decision_id=b.decision_id, comment="not enough")
    c = _propose(store, audit, ids, to_tier="strict", reason_code="serious_violation")  # back to strict: override
    approve(store, audit, principal=SUP, decision_id=c.decision_id, comment="agreed")
    today = dt.date.today()
    report = decision_report(store, start=today - dt.timedelta(days=1), end=today)
    assert (report.total.proposed, report.total.approved, report.total.rejected) == (3, 2, 1)
    assert report.total.overrides == 1 and report.total.override_rate == 0.5
    assert [r.key for r in report.by_reason] == ["family_crisis", "risk_assessment", "serious_violation"]
    assert [(r.key, r.proposed) for r in report.by_caseworker] == [("wang", 3)]
    later = decision_report(store, start=today + dt.timedelta(days=1), end=today + dt.timedelta(days=2))
    assert later.total.proposed == 0


def test_migrations_are_shipped_and_applied_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    CaseStore(url).close()
    store = CaseStore(url)  # opening again: already at head
    from sqlalchemy import text

    with store.engine.connect() as conn:
        assert conn.execute(text("select version_num from case_store_version")).scalar() == "0004"
    store.close()
    assert os.path.exists(tmp_path / "c.db")


def test_cli_import_refuses_a_bad_row_with_exit_code_2_and_says_when_nothing_changed(
    cohort: CaseTables, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from serving.cli import app

    monkeypatch.setenv("RISK_HOME", str(tmp_path / "home"))
    good, bad = tmp_path / "good", tmp_path / "bad"
    assert cohort.outcomes is not None
    for folder in (good, bad):
        folder.mkdir()
        cohort.persons.to_csv(folder / "persons.csv", index=False)
        cohort.outcomes.to_csv(folder / "outcomes.csv", index=False)
    cohort.events.to_csv(good / "events.csv", index=False)
    events = cohort.events.astype({"event_type": str})
    events.loc[5, "date"] = "1800-01-01"  # before birth
    events.to_csv(bad / "events.csv", index=False)
    runner = CliRunner()
    refused = runner.invoke(app, ["cases", "import", str(bad)])
    assert refused.exit_code == 2 and "events row 5" in refused.output and "'date'" in refused.output
    assert runner.invoke(app, ["cases", "import", str(good)]).exit_code == 0
    again = runner.invoke(app, ["cases", "import", str(good)])
    assert again.exit_code == 0 and "nothing changed" in again.output
    office = cohort.persons["office"].iloc[0]
    due = runner.invoke(app, ["cases", "due", "--office", office, "--as-of", "2022-06-01"])
    assert due.exit_code == 0 and office in due.output
    assert runner.invoke(app, ["cases", "due", "--office", "atlantis", "--as-of", "2022-06-01"]).exit_code == 2
    pid = cohort.persons["person_id"].iloc[0]
    recorded = runner.invoke(app, ["cases", "event", "--person", pid, "--date", "2022-06-01", "--type", "warning"])
    assert recorded.exit_code == 0 and "recorded event" in recorded.output
    late = runner.invoke(app, ["cases", "event", "--person", pid, "--date", "2099-06-01", "--type", "warning"])
    assert late.exit_code == 2 and "'date'" in late.output
    report = runner.invoke(app, ["cases", "decisions", "--start", "2026-01-01", "--end", "2026-12-31"])
    assert report.exit_code == 0 and '"proposed": 0' in report.output


def test_demo_loads_the_cohort_into_the_case_store(
    cohort: CaseTables, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from serving.cli import load_case_store

    monkeypatch.setenv("RISK_HOME", str(tmp_path))
    load_case_store(cohort, source="demo")
    load_case_store(cohort, source="demo")  # a second demo run changes nothing
    store = CaseStore(f"sqlite:///{tmp_path / 'cases.db'}")
    assert store.counts()["persons"] == 300 and store.counts()["events"] == len(cohort.events)
    assert set(store.offices()) <= {"chengguan", "dongcheng", "xicheng", "nanhu", "beishan", "hexi"}
    store.close()


def test_an_exports_current_tier_is_the_starting_tier_and_never_overrides_a_decision(tmp_path: Path) -> None:
    """Issue 20, defect 6: the current tier at import comes from the export when it carries one (a mix of
    strict and ordinary, not everyone strict); a later export moves it only where no decision was taken."""
    tables = generate_cohort(CohortConfig(persons=300, seed=7))
    export = subset(tables, 200, current_tier=True)
    assert set(export.persons["current_tier"]) == {"strict", "ordinary"}
    store = CaseStore(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        store.import_tables(export)
        frame = store.persons_frame()
        by_id = dict(zip(frame["person_id"], frame["tier"], strict=True))
        assert by_id == dict(zip(export.persons["person_id"], export.persons["current_tier"], strict=True))
        a, b = export.persons["person_id"].iloc[0], export.persons["person_id"].iloc[1]
        with store.write() as conn:  # as an approved decision leaves it
            conn.exec_driver_sql("UPDATE tiers SET source = 'decision', tier = 'strict' WHERE person_id = ?", (a,))
        flipped = export.persons.copy()
        flipped["current_tier"] = flipped["current_tier"].map({"strict": "ordinary", "ordinary": "strict"})
        store.import_tables(CaseTables(flipped, export.events, export.outcomes))
        assert store.person(a)["tier"] == "strict"  # the decision taken here stands
        assert store.person(b)["tier"] == flipped.loc[flipped["person_id"] == b, "current_tier"].item()
        bare = subset(tables, 220)  # an export without tiers: new persons arrive strict
        store.import_tables(bare)
        newcomers = bare.persons["person_id"].iloc[200:]
        assert all(store.person(p)["tier"] == "strict" for p in newcomers)
    finally:
        store.close()


def test_the_caseworkers_day_lists_their_caseload_most_urgent_first(tmp_path: Path) -> None:
    """Issue 20, the "today" page: the persons assigned to the user and those assigned to nobody (not another
    caseworker's, not another office's), overdue before due before rules ending this month before decided
    proposals; a decided proposal stays listed for days, marked new until the next visit."""
    from serving.cases import today_list

    today = dt.date.today()
    recent = today - dt.timedelta(days=60)  # the first-two-months rule's last day is today
    rows = [
        {**person_row("A", start=str(recent), end=str(recent + dt.timedelta(days=700))), "caseworker": "wang"},
        {**person_row("B", start=str(recent), end=str(recent + dt.timedelta(days=700))), "caseworker": "zhao"},
        {**person_row("C", start=str(today - dt.timedelta(days=3)), end=str(today + dt.timedelta(days=700)))},
        {**person_row("D", start=str(recent), end=str(recent + dt.timedelta(days=700)), office="t2")},
    ]
    rows[2]["caseworker"] = None
    store = CaseStore(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        store.import_tables(hand_tables(rows))
        with store.write() as conn:
            now = dt.datetime.now(dt.UTC).isoformat()
            conn.exec_driver_sql(
                "INSERT INTO decisions (decision_id, person_id, office, assessment_id, from_tier, to_tier, "
                "tier_by_risk, reason_code, reason, status, proposed_by, proposed_at, decided_by, decided_at, comment) "
                "VALUES ('d1', 'A', 't1', 'x', 'strict', 'ordinary', 'ordinary', 'good_conduct', '表现良好', "
                "'rejected', 'wang', ?, 'li', ?, '再观察')",
                (now, now),
            )
        day = today_list(store, office="t1", user="wang", as_of=today)
        people = {i.person_id for i in day.items}
        assert day.assigned and day.caseload == 2 and people == {"A", "C"}
        kinds = [i.kind for i in day.items]
        assert kinds == sorted(kinds, key=["red_alert", "overdue", "orange_alert", "due", "rule_ends", "decided"].index)
        assert ("overdue", "A") in {(i.kind, i.person_id) for i in day.items}  # intake window closed unassessed
        assert ("due", "C") in {(i.kind, i.person_id) for i in day.items}
        ends = [i for i in day.items if i.kind == "rule_ends"]
        if (recent + dt.timedelta(days=60)).month == today.month:
            assert [(i.person_id, i.date) for i in ends if i.person_id == "A"] == [
                ("A", recent + dt.timedelta(days=60))
            ]
        assert [i.decision_id for i in day.items if i.kind == "decided"] == ["d1"]
        again = today_list(store, office="t1", user="wang", as_of=today)
        assert [(i.decision_id, i.new) for i in day.items if i.kind == "decided"] == [("d1", True)]
        # still listed on the next visit (for 14 days), no longer new
        assert again.since is not None and [(i.decision_id, i.new) for i in again.items if i.kind == "decided"] == [
            ("d1", False)
        ]
        office = today_list(store, office="t1", user="nobody-assigned", as_of=today)
        assert not office.assigned and {i.person_id for i in office.items} >= {"A", "B", "C"}
        assert "D" not in {i.person_id for i in office.items}
    finally:
        store.close()


def test_the_step_down_list_offers_who_may_be_ordinary_and_remembers_not_now(tmp_path: Path) -> None:
    """Issue 20, the supervisor's step-down list: a strict person whose time-limited rule has ended, and one
    ordinary by risk at the latest reviews, come up; "not now" takes a person off until the reason's period
    ends and is counted in the decision report; a step-down decided at once changes the tier and is chained."""
    from serving.cases import decide_step_down, decision_report, defer_step_down, step_down_list

    today = dt.date.today()
    start = today - dt.timedelta(days=120)  # the first two months are over
    rows = [person_row(p, start=str(start), end=str(start + dt.timedelta(days=700))) for p in ("A", "B", "C")]
    store = CaseStore(f"sqlite:///{tmp_path / 'c.db'}")
    audit = AuditStore(f"sqlite:///{tmp_path / 'a.db'}", secret=SECRET)
    try:
        store.import_tables(hand_tables(rows))  # no current tier in the export: everyone arrives strict
        ids = {}
        for pid, rule in (("A", "first_two_months"), ("B", None), ("C", None)):
            ids[pid] = str(uuid.uuid4())
            audit.append_assessment(
                assessment_id=ids[pid],
                person_id=pid,
                stage="intake",
                model_name="m",
                model_version="1",
                policy_version="p",
                request={},
                response={},
                explanation={"features": {"offence": "theft", "flag_gang": 0}},
                actor="wang",
            )
            row = index_row(ids[pid], pid, stage="intake", as_of=start)
            store.note_assessments([{**row, "rule_id": rule, "tier": "strict" if rule else "ordinary"}])
        with store.write() as conn:  # two reviews found B ordinary by risk, C strict at the later one
            for days, c_tier in ((60, "ordinary"), (30, "strict")):
                payload = {
                    "rows": [
                        {"person_id": "B", "tier_by_risk": "ordinary", "rule_id": None},
                        {"person_id": "C", "tier_by_risk": c_tier, "rule_id": None},
                    ]
                }
                conn.exec_driver_sql(
                    "INSERT INTO review_runs (run_id, office, as_of, created_at, actor, lang, count, payload, "
                    "backdated) VALUES (?, 't1', ?, ?, 'li', 'zh', 2, ?, 0)",
                    (str(uuid.uuid4()), str(today - dt.timedelta(days=days)), now(), json.dumps(payload)),
                )
        listed = {i.person_id: i for i in step_down_list(store, audit, office="t1", as_of=today)}
        assert set(listed) == {"A", "B"}
        assert listed["A"].why == "rule_ended" and listed["A"].rule_ended == start + dt.timedelta(days=60)
        assert listed["B"].why == "ordinary_by_risk" and len(listed["B"].reviews) == 2
        with pytest.raises(CaseError) as refused:
            defer_step_down(store, principal=SUP, person_id="A", reason_code="whim", comment="不行")
        assert refused.value.status == 422
        with pytest.raises(CaseError) as other:
            defer_step_down(
                store,
                principal=Principal(Role.SUPERVISOR, "x", "t2"),
                person_id="A",
                reason_code="observe",
                comment="再看",
            )
        assert other.value.status == 403
        defer_step_down(store, principal=SUP, person_id="A", reason_code="observe", comment="再观察一个月")
        assert {i.person_id for i in step_down_list(store, audit, office="t1", as_of=today)} == {"B"}
        back = today + dt.timedelta(days=31)  # the 'observe' period (30 days) is over
        assert "A" in {i.person_id for i in step_down_list(store, audit, office="t1", as_of=back)}
        report = decision_report(store, start=today, end=today)
        assert report.step_downs_deferred == {"observe": 1}
        chained = audit.head()["decisions"][0]
        done = decide_step_down(
            store, audit, principal=SUP, person_id="B", assessment_id=ids["B"], comment="连续两次研判为普管"
        )
        assert done.status == "approved" and store.person("B")["tier"] == "ordinary"
        assert audit.head()["decisions"][0] == chained + 2  # proposed and approved, both chained
        assert "B" not in {i.person_id for i in step_down_list(store, audit, office="t1", as_of=today)}
    finally:
        audit.close()
        store.close()


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()
