"""The case flows as a state machine (hypothesis.stateful): events, score by id, tier decisions and review
meetings in any order, with the library's functions called directly (no HTTP).

Each run starts from a fresh SQLite case store (a copy of one into which a 150-person cohort and two
hand-made persons were imported once) and a fresh audit trail, and works on a handful of persons of one
office. Rules: record an event, score a person by id at a drawn date (any date: in the future, before the
stage's window, after the term), propose / approve / reject a tier change, a violation coming to light
while a proposal waits (recorded, and the person scored again), run the office's review meeting at a drawn
date. A refused step (:class:`serving.cases.CaseError`) must leave nothing written.

Invariants, checked after every step:

1. no assessment in the case store's index is dated after today or outside the person's term;
2. no approved decision leaves a person below a mandatory rule's tier (checked after each approval);
3. "what moved" in every stored review run runs from an earlier date to the later one and its parts add up
   to the change in log-odds;
4. the due list counts a stage as done only on a formal assessment (index row without a run id), never on
   a review meeting's score, and on every formal one dated in the stage's window.
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import pytest
from cases_support import hand_tables, person_row, subset
from hypothesis import HealthCheck, Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from service_support import ServiceModels

from features.schema import CaseTables
from features.vocab import Stage
from models.tier_policy import TierPolicy
from serving.audit import AuditStore
from serving.auth import Principal, Role
from serving.cases import (
    CaseError,
    CaseStore,
    ReasonCode,
    ReviewPolicy,
    approve,
    decision,
    due_list,
    get_review,
    index_row,
    office_of,
    propose,
    reject,
    review_runs,
    run_review,
    same_office,
    tier_floor,
)
from serving.scoring import Scorer, ServedModel

SECRET = "7d" * 32
COHORT = 150
EVENT_TYPES = ("warning", "police_penalty", "grade_unqualified", "grade_good", "commendation", "report_missed")
ANCHORS = ("start", "midpoint", "end", "today")
WINDOW = ("opens", "closes")  # of the stage's due window (review policy); the mid-term one for events and reviews

SETTINGS = settings(
    max_examples=15,
    stateful_step_count=12,
    deadline=None,
    database=None,  # nothing written into the repository; a failure is replayed with --hypothesis-seed
    phases=(Phase.explicit, Phase.generate, Phase.shrink),  # no "explain" phase: a failing case is reported sooner
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


#: what the steps did, over the whole test (printed at its end: ``pytest -s``), to see the machine reach the flows
OUTCOMES: Counter[str] = Counter()


def now_and_then(one_in: int) -> st.SearchStrategy[bool]:
    """True about once in ``one_in`` draws (shrinks to False: the ordinary case)."""
    return st.sampled_from([False] * (one_in - 1) + [True])


def note(outcome: str) -> None:
    event(outcome)
    OUTCOMES[outcome] += 1


@dataclass(frozen=True)
class World:
    """What every run of the machine starts from: a case store imported once (copied per run), the scorer."""

    template: Path  # a directory holding cases.db with the cohort imported
    scorer: Scorer
    office: str
    persons: tuple[str, ...]  # a handful of the office's persons
    stranger: str  # a person of another office (refusals)
    all_ids: tuple[str, ...]  # everyone in the store
    office_ids: frozenset[str]  # everyone of the office (review meetings score them too)
    terms: dict[str, tuple[dt.date, dt.date]]  # person -> (supervision_start, supervision_end or revocation)


def _day(value: Any) -> dt.date:
    return pd.Timestamp(value).date()


def pick_persons(tables: CaseTables, today: dt.date) -> tuple[str, tuple[str, ...], str]:
    """The office with the most people on supervision today; a handful of its persons (on the roll today,
    ended recently, revoked) and one person of another office."""
    p = tables.persons
    ts = pd.Timestamp(today)
    ongoing = (p["supervision_start"] <= ts) & (p["supervision_end"] >= ts)
    by_office = p[ongoing].groupby("office").size()
    office = str(by_office.idxmax()) if len(by_office) else str(p["office"].value_counts().idxmax())
    mine = p[p["office"] == office].sort_values("person_id")
    chosen = list(mine[ongoing[mine.index]]["person_id"].head(3))
    ended = mine[mine["supervision_end"] < ts].sort_values("supervision_end", ascending=False)
    chosen += [pid for pid in ended["person_id"] if pid not in chosen][:2]
    assert tables.outcomes is not None
    revoked = set(tables.outcomes.loc[tables.outcomes["revocation_date"].notna(), "person_id"])
    chosen += [pid for pid in mine["person_id"] if pid in revoked and pid not in chosen][:1]
    chosen += [pid for pid in mine["person_id"] if pid not in chosen][: max(0, 5 - len(chosen))]
    stranger = str(p[p["office"] != office]["person_id"].iloc[0])
    return office, tuple(str(x) for x in chosen), stranger


@pytest.fixture(scope="module")
def world(service_models: ServiceModels, tmp_path_factory: pytest.TempPathFactory) -> World:
    cohort, fits = service_models
    tables = subset(cohort, COHORT)
    today = dt.date.today()
    office, persons, stranger = pick_persons(tables, today)
    # the synthetic terms are fixed in the past: two hand-made persons of the office keep the machine's
    # reach the same whatever the day it runs on - one in the first two months of the term (a time-limited
    # mandatory rule in force today), one with a gang flag (a rule in force as long as it holds)
    recent = person_row(
        "H-RECENT", start=str(today - dt.timedelta(days=40)), end=str(today + dt.timedelta(days=400)), office=office
    )
    gang = person_row(
        "H-GANG", start=str(today - dt.timedelta(days=300)), end=str(today + dt.timedelta(days=200)), office=office
    )
    gang["flag_gang"] = True
    template = tmp_path_factory.mktemp("stateful-template")
    store = CaseStore(f"sqlite:///{template / 'cases.db'}")
    store.import_tables(tables, source="stateful")
    store.import_tables(hand_tables([recent, gang]), source="stateful-hand")
    # the term runs from its start to its end, or to a revocation before that (a revocation ends it)
    assert tables.outcomes is not None
    revoked = {
        str(pid): _day(day)
        for pid, day in zip(tables.outcomes["person_id"], tables.outcomes["revocation_date"], strict=True)
        if not pd.isna(day)
    }
    terms = {
        str(r.person_id): (
            _day(r.supervision_start),
            min(_day(r.supervision_end), revoked.get(str(r.person_id), _day(r.supervision_end))),
        )
        for r in store.persons_frame().itertuples(index=False)
    }
    office_ids = frozenset(store.persons_frame(office=office)["person_id"].astype(str))
    store.close()
    served = {
        stage: ServedModel(
            stage=stage,
            model=fits[stage].model,
            name=f"reoffence-{stage.value}",
            version="7",
            bento_tag="t:1",
            metadata={},
        )
        for stage in Stage
    }
    return World(
        template=template,
        scorer=Scorer(served, TierPolicy.load()),
        office=office,
        persons=(*persons, "H-RECENT", "H-GANG"),
        stranger=stranger,
        all_ids=tuple(terms),
        office_ids=office_ids,
        terms=terms,
    )


# ----------------------------------------------------------------------------- strategies
# persons and dates are drawn lazily: the handful is known once the ``world`` fixture has made it
def _persons() -> st.SearchStrategy[str]:
    return st.sampled_from(CaseFlows.world.persons)


def _anyone() -> st.SearchStrategy[str]:
    return st.sampled_from((*CaseFlows.world.persons, CaseFlows.world.stranger))


PERSON = st.deferred(_persons)
ANYONE = st.deferred(_anyone)
# a date near a due window, near the person's term or today, or any date at all (future ones included)
WHEN = st.one_of(
    st.tuples(st.sampled_from(WINDOW), st.integers(-20, 40)),
    st.tuples(st.sampled_from(ANCHORS), st.integers(-75, 75)),
    st.tuples(st.just("absolute"), st.integers(dt.date(2000, 1, 1).toordinal(), dt.date(2031, 1, 1).toordinal())),
)


class CaseFlows(RuleBasedStateMachine):
    world: ClassVar[World]

    def __init__(self) -> None:
        super().__init__()
        w = self.world
        self.today = dt.date.today()
        self.dir = Path(tempfile.mkdtemp(prefix="case-flows-"))
        shutil.copytree(w.template, self.dir / "cases", dirs_exist_ok=True)
        self.store = CaseStore(f"sqlite:///{self.dir / 'cases' / 'cases.db'}")
        self.audit = AuditStore(f"sqlite:///{self.dir / 'audit.db'}", secret=SECRET)
        self.policy = TierPolicy.load()
        self.review_policy = ReviewPolicy.load()
        self.cw = Principal(Role.CASEWORKER, "wang", w.office)
        self.sup = Principal(Role.SUPERVISOR, "li", w.office)
        self.other_sup = Principal(Role.SUPERVISOR, "he", "elsewhere")
        self.decisions: list[str] = []
        self.checked_runs: set[str] = set()
        self.due_checked_at = -1  # the office's index rows when the due lists were last checked

    def teardown(self) -> None:
        self.store.close()
        self.audit.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # ------------------------------------------------------------------ helpers
    def resolve(self, person_id: str, when: tuple[str, int], stage: Stage = Stage.MIDTERM) -> dt.date:
        kind, n = when
        if kind == "absolute":
            return dt.date.fromordinal(n)
        start, end = self.world.terms[person_id]
        opens, closes = self.review_policy.due.window(stage).dates(start, end)
        anchors = {
            "opens": opens,
            "closes": closes,
            "start": start,
            "midpoint": start + (end - start) / 2,
            "end": end,
            "today": self.today,
        }
        return anchors[kind] + dt.timedelta(days=n)

    def index(self) -> pd.DataFrame:
        return self.store.assessments_frame(list(self.world.all_ids))

    def snapshot(self) -> dict[str, Any]:
        """Everything a step can write: counts of every table and chain, tiers, decisions' states."""
        tiers = self.store.persons_frame(person_ids=[*sorted(self.world.office_ids), self.world.stranger])
        return {
            **self.store.counts(),
            "audit_assessments": self.audit.count(),
            "index_rows": len(self.index()),
            "chains": self.audit.head(),
            "tiers": dict(zip(tiers["person_id"], tiers["tier"], strict=True)),
            "decisions_state": {d: decision(self.store, d)["status"] for d in self.decisions},
        }

    def refused_wrote_nothing(self, before: dict[str, Any], err: CaseError, step: str) -> None:
        floor = " (mandatory rule)" if "mandatory rule" in err.message else ""
        note(f"{step}: refused {err.status} {err.loc}{floor}")
        after = self.snapshot()
        assert after == before, f"a refused step ({err.status}: {err.message}) wrote something: {before} -> {after}"

    # ------------------------------------------------------------------ rules
    @rule(
        person=PERSON,
        when=WHEN,
        event_type=st.sampled_from(EVENT_TYPES),
        recorded_after=st.one_of(st.none(), st.integers(-3, 40)),
    )
    def record_event(self, person: str, when: tuple[str, int], event_type: str, recorded_after: int | None) -> None:
        day = self.resolve(person, when)
        as_of = None if recorded_after is None else day + dt.timedelta(days=recorded_after)
        before = self.snapshot()
        try:
            self.store.record_event(person, date=day, event_type=event_type, actor=self.cw.user, as_of=as_of)
        except CaseError as err:
            self.refused_wrote_nothing(before, err, "event")
            return
        assert self.store.counts()["events"] == before["events"] + 1
        note("event: recorded")

    @rule(person=ANYONE, stage=st.sampled_from(list(Stage)), when=st.one_of(st.none(), WHEN))
    def score_by_id(self, person: str, stage: Stage, when: tuple[str, int] | None) -> None:
        """ServiceCore.score_by_id without HTTP: office check, request from the record, score, audit, index.
        No ``when``: the default date (today, or the end of an ended term)."""
        self.score(person, stage, None if when is None else self.resolve(person, when, stage))

    def score(self, person: str, stage: Stage, as_of: dt.date | None) -> None:
        before = self.snapshot()
        try:
            same_office(office_of(self.cw), self.store.person(person)["office"], person)
            request = self.store.score_request(person, stage=stage, as_of=as_of, today=self.today)
            scored = self.world.scorer.score([request])
            self.audit.append_many([s.audit_fields(self.cw.user) for s in scored])
            self.store.note_assessments(
                [index_row(s.assessment, actor=self.cw.user, policy=self.world.scorer.policy) for s in scored]
            )
        except CaseError as err:
            self.refused_wrote_nothing(before, err, "score")
            return
        assert self.audit.count() == before["audit_assessments"] + 1
        assert len(self.index()) == before["index_rows"] + 1
        if as_of is not None:
            assert scored[0].assessment.as_of == as_of
        note("score: stored")

    def pending(self) -> list[str]:
        return [d for d in self.decisions if decision(self.store, d)["status"] == "proposed"]

    @precondition(lambda self: bool(self.pending()))
    @rule(
        data=st.data(),
        event_type=st.sampled_from(["grade_unqualified", "warning", "police_penalty"]),
        days_before=st.integers(1, 90),
    )
    def violation_comes_to_light(self, data: st.DataObject, event_type: str, days_before: int) -> None:
        """While a proposal waits, a violation of its person comes to light: the caseworker records it and
        scores the person again on the default date (their latest assessment), with the model a review
        meeting would use. A mandatory rule may now hold: the supervisor must not approve going below it."""
        persons = sorted({str(decision(self.store, d)["person_id"]) for d in self.pending()})
        person = data.draw(st.sampled_from(persons), label="person")
        start, end = self.world.terms[person]
        day = min(self.today, end)
        before = self.snapshot()
        try:
            self.store.record_event(
                person, date=max(start, day - dt.timedelta(days=days_before)), event_type=event_type, actor="wang"
            )
        except CaseError as err:
            self.refused_wrote_nothing(before, err, "event")
            return
        note("event: recorded")
        self.score(person, self.review_policy.review_stage(end, day), None)

    @precondition(lambda self: len(self.index()) > 0)
    @rule(
        data=st.data(),
        any_person=now_and_then(4),
        stranger=now_and_then(10),
        same_tier=now_and_then(5),
        reason_code=st.sampled_from([*ReasonCode.codes(), "whim"]),
        which=st.sampled_from(["latest", "latest", "latest", "any of theirs", "anyone's"]),
    )
    def propose_change(
        self, data: st.DataObject, any_person: bool, stranger: bool, same_tier: bool, reason_code: str, which: str
    ) -> None:
        """A caseworker's proposal, mostly of a scored person of the office (3 in 4: one no mandatory rule
        holds on today) to the other tier on their latest assessment; now and then the stranger, the tier they
        have, an unknown reason code, an older assessment or someone else's."""
        index = self.index()
        scored = sorted(set(index["person_id"].astype(str)) & self.world.office_ids)
        free = [p for p in scored if tier_floor(self.store, self.audit, p, policy=self.policy) is None]
        candidates = scored if any_person or not free else free
        person = self.world.stranger if stranger or not scored else data.draw(st.sampled_from(candidates), "person")
        current = self.store.person(person)["tier"]
        to_tier = current if same_tier else ("ordinary" if current == "strict" else "strict")
        mine = index[index["person_id"] == person]
        if which == "latest" and not mine.empty:
            assessment_id = str(mine["assessment_id"].iloc[-1])  # oldest first: the last is the latest
        else:
            pool = index if which == "anyone's" or mine.empty else mine
            # in the index's order (person, date, when made): ids are random, so sorting by them would make a
            # replayed example draw another assessment
            assessment_id = data.draw(st.sampled_from(list(pool["assessment_id"].astype(str))), "assessment_id")
        before = self.snapshot()
        try:
            out = propose(
                self.store,
                self.audit,
                principal=self.cw,
                person_id=person,
                to_tier=to_tier,
                reason_code=reason_code,
                reason="reassessed at the monthly review",
                assessment_id=assessment_id,
                policy=self.policy,
            )
        except CaseError as err:
            self.refused_wrote_nothing(before, err, "propose")
            return
        assert out.status == "proposed"
        note("propose: stored")
        self.decisions.append(out.decision_id)

    @precondition(lambda self: bool(self.decisions))
    @rule(data=st.data(), rejecting=now_and_then(3), other_office=now_and_then(7), any_decision=now_and_then(5))
    def decide(self, data: st.DataObject, rejecting: bool, other_office: bool, any_decision: bool) -> None:
        """A supervisor approves (2 in 3) or rejects a pending proposal; now and then one already decided, or
        a supervisor of another office."""
        pending = self.pending()
        pool = self.decisions if any_decision or not pending else pending
        decision_id = data.draw(st.sampled_from(pool), label="decision_id")
        who = self.other_sup if other_office else self.sup
        approving = not rejecting
        person = str(decision(self.store, decision_id)["person_id"])
        before = self.snapshot()
        step = approve if approving else reject
        try:
            out = step(
                self.store, self.audit, principal=who, decision_id=decision_id, comment="agreed", policy=self.policy
            )
        except CaseError as err:
            self.refused_wrote_nothing(before, err, "approve" if approving else "reject")
            return
        note(f"{out.status}: stored")
        if not approving:
            assert out.status == "rejected" and self.store.person(person)["tier"] == before["tiers"][person]
            return
        # invariant 2: an approval never leaves the person below a mandatory rule in force
        assert out.status == "approved"
        floor = tier_floor(self.store, self.audit, person, policy=TierPolicy.load())
        tier = self.store.person(person)["tier"]
        note(f"approved: floor {floor.rule.id if floor else None}, tier {tier}")
        if floor is not None:
            assert tier == "strict", (
                f"approved decision {decision_id} left {person} {tier!r} while the mandatory rule "
                f"{floor.rule.id!r} (assessment {floor.assessment_id}) keeps them strict"
            )

    @rule(person=PERSON, when=WHEN)
    def review(self, person: str, when: tuple[str, int]) -> None:
        """The monthly review meeting of the office, on a date near a person's term (or any date)."""
        as_of = self.resolve(person, when)
        before = self.snapshot()
        try:
            run = run_review(
                self.store,
                self.world.scorer,
                self.audit,
                office=self.world.office,
                as_of=as_of,
                actor=self.sup.user,
                lang="en",
                policy=self.review_policy,
                today=self.today,
            )
        except CaseError as err:
            self.refused_wrote_nothing(before, err, "review")
            return
        assert run.count > 0 and self.audit.count() == before["audit_assessments"] + run.count
        assert self.store.counts()["review_runs"] == before["review_runs"] + 1
        note("review: stored" + (" (with previous)" if any(r.previous_assessment_id for r in run.rows) else ""))

    # ------------------------------------------------------------------ invariants
    @invariant()
    def assessments_dated_in_term_and_not_after_today(self) -> None:
        index = self.index()
        for row in index.itertuples(index=False):
            day = _day(row.as_of)
            start, end = self.world.terms[str(row.person_id)]
            assert day <= self.today, f"assessment {row.assessment_id} of {row.person_id} dated {day}, after today"
            assert start <= day <= end, (
                f"assessment {row.assessment_id} of {row.person_id} dated {day}, outside the term {start}..{end}"
            )

    @invariant()
    def what_moved_runs_forward_and_adds_up(self) -> None:
        index = self.index()
        dated = {str(r.assessment_id): (str(r.person_id), _day(r.as_of)) for r in index.itertuples(index=False)}
        for listed in review_runs(self.store, office=self.world.office, limit=10_000):
            run_id = str(listed["run_id"])
            if run_id in self.checked_runs:
                continue
            run = get_review(self.store, run_id)
            for row in run.rows:
                if row.previous_assessment_id is None:
                    assert row.previous_as_of is None and row.change_log_odds is None and row.moved == []
                    continue
                assert row.previous_as_of is not None and row.previous_as_of < run.as_of, (
                    f"run {run_id} on {run.as_of}: {row.person_id} moved from {row.previous_as_of}"
                )
                assert dated.get(row.previous_assessment_id) == (row.person_id, row.previous_as_of)
                assert row.change_log_odds is not None
                total = math.fsum(part.log_odds for part in row.moved)
                assert math.isclose(total, row.change_log_odds, abs_tol=1e-6), (
                    f"run {run_id}, {row.person_id}: parts add up to {total}, the change is {row.change_log_odds}"
                )
            self.checked_runs.add(run_id)

    @invariant()
    def due_list_counts_only_formal_assessments(self) -> None:
        """On today and on every date an assessment of the office is dated (a due list changes only when an
        assessment is added: each date is checked again then)."""
        index = self.index()
        index = index[index["person_id"].isin(self.world.office_ids)]
        if len(index) == self.due_checked_at:
            return
        formal: dict[tuple[str, str], list[tuple[dt.date, str]]] = {}
        for row in index[index["run_id"].isna()].itertuples(index=False):
            formal.setdefault((str(row.person_id), str(row.stage)), []).append(
                (_day(row.as_of), str(row.assessment_id))
            )
        formal_ids = {aid for rows in formal.values() for _, aid in rows}
        for as_of in sorted({self.today, *(_day(d) for d in index["as_of"])}):
            listing = due_list(self.store, office=self.world.office, as_of=as_of, policy=self.review_policy)
            for person in listing.persons:
                for stage in person.stages:
                    rows = formal.get((person.person_id, stage.stage), [])
                    backing = [aid for day, aid in rows if stage.opens <= day <= as_of]
                    where = f"due list of {as_of}, {person.person_id} {stage.stage}"
                    if stage.state == "done":
                        assert backing, f"{where}: 'done' without a formal assessment in its window"
                        assert stage.last_assessment_id in formal_ids, (
                            f"{where}: 'done' on {stage.last_assessment_id}, not a formal assessment"
                        )
                    else:
                        assert not backing, f"{where}: {stage.state!r} despite the formal assessments {backing}"
        self.due_checked_at = len(index)


def test_case_flows_keep_their_invariants(world: World) -> None:
    CaseFlows.world = world
    OUTCOMES.clear()
    run_state_machine_as_test(CaseFlows, settings=SETTINGS)
    print("\n".join(f"{n:5d}  {what}" for what, n in sorted(OUTCOMES.items())))
