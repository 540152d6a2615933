"""Office scope, route by route (design.md, "Dates, rules and offices"): caseworkers and supervisors see and
act on their own office's persons only, in every route and page, including pages reached by an assessment
id or a review run id; auditors read every office.

The routes are not listed by hand: they are read from the service's ASGI app (the BentoML routes, the GET
forms of ``serving.api.READ_ONLY_ROUTES`` and every route of the console mounted at ``/console``). Each
one is either in :data:`PERSON_FREE` (it answers nothing about a person) or in :data:`MATRIX` (how to call
it with office A's person, assessment, decision or review run); a route in neither fails
:func:`test_every_route_is_classified_and_the_tables_name_no_route_that_is_gone` and its own cases of the
matrix, so a new route forces a decision; a route whose request model or path names a person, assessment,
decision, run or office cannot be put in :data:`PERSON_FREE`. Each matrix route is then called
by a caseworker and a supervisor of office B: the answer must be 403 or 404 (a list of the caller's own
office: anything but an error of the server) and must hold nothing of office A's person (person id,
assessment ids, probability, reasons, decision, review run).

The calls themselves are checked too (:func:`test_the_matrix_calls_work_for_the_office_itself`): made by
office A's own caseworker, supervisor or auditor on a copy of the same stores they succeed, so a
refusal to office B comes from the office scope, not from a malformed call or an id that does not exist.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pandas as pd
import pytest
from cases_support import subset
from service_support import (
    ServiceModels,
    case_home,
    csrf_of,
    form_of,
    fresh_home,
    in_process_service,
    service_routes,
    signed_in,
)
from starlette.testclient import TestClient

from features.schema import CaseTables
from features.vocab import Stage
from serving.api import ROUTE_MODELS, ROUTE_PERMISSIONS
from serving.cases import CaseStore
from serving.scoring import requests_from_tables

OFFICE, OTHER = "chengguan", "dongcheng"
TOKENS = {
    "cw": ("caseworker", "wang", OFFICE),
    "sup": ("supervisor", "li", OFFICE),
    "cw2": ("caseworker", "zhao", OTHER),
    "sup2": ("supervisor", "chen", OTHER),
    "aud": ("auditor", "zhou", None),
}
OTHER_OFFICE_ROLES = ("cw2", "sup2")
MEETING = dt.date(2023, 6, 1)
FUTURE = (dt.date.today() + dt.timedelta(days=400)).isoformat()
PROPOSAL_REASON = "office scope matrix: a written reason"
COMMENT = "office scope matrix: a comment"


# ----------------------------------------------------------------------------- the routes of the app
def _collection_routes() -> list[str]:
    from serving.api import RiskService

    return sorted(service_routes(cast(Any, RiskService).to_asgi()))


ROUTES = _collection_routes()  # what the parametrized tests run over (the live app is compared below)

#: Routes that answer nothing about any person, with why.
PERSON_FREE: dict[str, str] = {
    "GET /": "BentoML's index page",
    "GET /livez": "platform probe",
    "GET /healthz": "platform probe",
    "GET /readyz": "platform probe",
    "GET /metrics": "request counts by route (unknown paths share one label)",
    "GET /schema.json": "BentoML's service schema",
    "GET /docs.json": "the OpenAPI document",
    "GET /static_content/{path:path}": "BentoML's static files",
    "POST /models": "model versions and their evaluation (modeler)",
    "GET /models": "model versions and their evaluation (modeler)",
    "POST /verify": "hash chain heads and a signed checkpoint (auditor)",
    "GET /verify": "hash chain heads and a signed checkpoint (auditor)",
    "GET /console/": "redirects to the role's start page",
    "GET /console/login": "sign-in form",
    "POST /console/login": "sign-in",
    "GET /console/lang/{lang}": "language switch (redirect)",
    "POST /console/logout": "sign-out",
    "GET /console/static/{path:path}": "the console's style sheet",
    "GET /console/score": "the empty scoring form",
    "GET /console/verify": "the verify button (auditor)",
    "POST /console/verify": "hash chain heads (auditor)",
    "GET /console/revalidation": "revalidation figures by stage, model version and group (auditor)",
}


# ----------------------------------------------------------------------------- office A's objects
@dataclass(frozen=True)
class World:
    """Office A's person with an assessment, a pending proposal and a review run (what B must not see)."""

    person_id: str
    record: dict[str, Any]  # the person's /score request (record and events), as A's store holds it
    assessment_id: str
    probability: str  # as in the answer's JSON
    reasons: tuple[str, ...]
    decision_id: str
    run_id: str
    review_assessment_id: str
    review_probability: str
    review_summary: str

    def markers(self, *, numbers: bool) -> dict[str, str]:
        """What of A's person must not appear in an answer to office B; ``numbers``: the probabilities as
        the pages print them too (short strings, looked for in refusals only)."""
        found = {
            "person_id": self.person_id,
            "assessment_id": self.assessment_id,
            "probability": self.probability,
            "decision_id": self.decision_id,
            "proposal reason": PROPOSAL_REASON,
            "run_id": self.run_id,
            "review assessment_id": self.review_assessment_id,
            "review probability": self.review_probability,
            "review summary": self.review_summary,
            **{f"reason {i}": text for i, text in enumerate(self.reasons)},
        }
        if numbers:
            for name, raw in (("probability", self.probability), ("review probability", self.review_probability)):
                p = float(raw)
                found[f"{name} as a page shows it"] = f"{p * 100:.1f}%"
                found[f"{name} as the audit page shows it"] = f"{p * 100:.2f}%"
        return found


# ----------------------------------------------------------------------------- the matrix
@dataclass(frozen=True)
class Call:
    method: str
    url: str
    json: Any = None
    data: dict[str, str] | None = None  # a console form (the caller's CSRF token is added)
    params: dict[str, str] | None = None


@dataclass(frozen=True)
class Case:
    """How one route is called with office A's objects.

    kind: what the route is keyed by: ``person``, ``assessment``, ``decision``, ``run``, ``office`` (an office
    named in the request), ``own-office`` (a list of the caller's office: no id, no office asked for), or
    ``posted-record`` (scores the record the caller posts: posted under the id of another office's person it
    acts on that person, whose page then shows the answer as their latest assessment, so it is refused too).
    owner: the token of office A (or the auditor) the same call works for (checked on a copy of the stores).
    owner_ok: the statuses that count as working for the owner (409: a pending proposal, decided already).
    """

    kind: str
    owner: str
    calls: Callable[[World], list[Call]]
    owner_ok: tuple[int, ...] = (200,)


EVENT_FORM = {"date": MEETING.isoformat(), "event_type": "warning", "value": ""}

MATRIX: dict[str, Case] = {
    # the API (bearer token)
    "POST /cases/event": Case(
        "person",
        "cw",
        lambda w: [
            Call(
                "POST",
                "/cases/event",
                json={"person_id": w.person_id, "date": MEETING.isoformat(), "event_type": "warning"},
            )
        ],
    ),
    "POST /cases/score": Case(
        "person",
        "cw",
        lambda w: [Call("POST", "/cases/score", json={"person_id": w.person_id, "stage": "intake", "lang": "en"})],
    ),
    "POST /cases/propose": Case(
        "person",
        "cw",
        lambda w: [
            Call(
                "POST",
                "/cases/propose",
                json={
                    "person_id": w.person_id,
                    "to_tier": "strict",
                    "reason_code": "other",
                    "reason": PROPOSAL_REASON,
                    "assessment_id": w.assessment_id,
                },
            )
        ],
        owner_ok=(409,),  # the proposal made while preparing is pending: the office check came first
    ),
    "POST /person_assessments": Case(
        "person", "aud", lambda w: [Call("POST", "/person_assessments", json={"person_id": w.person_id})]
    ),
    "POST /assessment": Case(
        "assessment", "aud", lambda w: [Call("POST", "/assessment", json={"assessment_id": w.assessment_id})]
    ),
    "GET /assessment": Case(
        "assessment", "aud", lambda w: [Call("GET", "/assessment", params={"assessment_id": w.assessment_id})]
    ),
    "POST /cases/approve": Case(
        "decision",
        "sup",
        lambda w: [Call("POST", "/cases/approve", json={"decision_id": w.decision_id, "comment": COMMENT})],
        owner_ok=(200, 409),
    ),
    "POST /cases/reject": Case(
        "decision",
        "sup",
        lambda w: [Call("POST", "/cases/reject", json={"decision_id": w.decision_id, "comment": COMMENT})],
        owner_ok=(200, 409),
    ),
    "POST /cases/review_run": Case(
        "run",
        "sup",
        lambda w: [
            Call("POST", "/cases/review_run", json={"run_id": w.run_id, "format": fmt})
            for fmt in ("json", "csv", "html")
        ],
    ),
    "POST /cases/due": Case(
        "office", "cw", lambda w: [Call("POST", "/cases/due", json={"office": OFFICE, "as_of": MEETING.isoformat()})]
    ),
    "POST /cases/review": Case(
        "office",
        "sup",
        lambda w: [Call("POST", "/cases/review", json={"office": OFFICE, "as_of": MEETING.isoformat()})],
    ),
    "POST /cases/decision_report": Case(
        "office",
        "sup",
        lambda w: [
            Call("POST", "/cases/decision_report", json={"start": "2000-01-01", "end": FUTURE, "office": OFFICE})
        ],
    ),
    "POST /score": Case("posted-record", "cw", lambda w: [Call("POST", "/score", json=w.record)]),
    "POST /score_batch": Case(
        "posted-record", "cw", lambda w: [Call("POST", "/score_batch", json={"records": [w.record]})]
    ),
    # the console (session cookie; forms carry the caller's CSRF token)
    "GET /console/person/{person_id}": Case("person", "cw", lambda w: [Call("GET", f"/console/person/{w.person_id}")]),
    "POST /console/person/{person_id}/score": Case(
        "person",
        "cw",
        lambda w: [Call("POST", f"/console/person/{w.person_id}/score", data={"stage": "intake"})],
        owner_ok=(303,),
    ),
    "POST /console/person/{person_id}/propose": Case(
        "person",
        "cw",
        lambda w: [
            Call(
                "POST",
                f"/console/person/{w.person_id}/propose",
                data={
                    "to_tier": "strict",
                    "reason_code": "other",
                    "reason": PROPOSAL_REASON,
                    "assessment_id": w.assessment_id,
                },
            )
        ],
        owner_ok=(409,),
    ),
    "POST /console/person/{person_id}/event": Case(
        "person",
        "cw",
        lambda w: [Call("POST", f"/console/person/{w.person_id}/event", data=EVENT_FORM)],
        owner_ok=(303,),
    ),
    "GET /console/result/{assessment_id}": Case(
        "assessment", "cw", lambda w: [Call("GET", f"/console/result/{w.assessment_id}")]
    ),
    "GET /console/audit/{assessment_id}": Case(
        "assessment", "aud", lambda w: [Call("GET", f"/console/audit/{w.assessment_id}")]
    ),
    "GET /console/review/{run_id}": Case("run", "sup", lambda w: [Call("GET", f"/console/review/{w.run_id}")]),
    "GET /console/review/{run_id}/{fmt:str}": Case(
        "run",
        "sup",
        lambda w: [Call("GET", f"/console/review/{w.run_id}/{fmt}") for fmt in ("csv", "print")],
    ),
    "POST /console/proposals/{decision_id}/{action:str}": Case(
        "decision",
        "sup",
        lambda w: [
            Call("POST", f"/console/proposals/{w.decision_id}/{action}", data={"comment": COMMENT})
            for action in ("approve", "reject")
        ],
        owner_ok=(303, 409),
    ),
    "GET /console/roster": Case(
        "own-office",
        "cw",
        lambda w: [
            Call("GET", "/console/roster", params={"as_of": MEETING.isoformat()}),
            Call("GET", "/console/roster", params={"as_of": MEETING.isoformat(), "q": w.person_id}),
        ],
    ),
    "GET /console/today": Case("own-office", "cw", lambda w: [Call("GET", "/console/today")]),
    "GET /console/step_down": Case("own-office", "sup", lambda w: [Call("GET", "/console/step_down")]),
    "POST /console/step_down/{person_id}/decide": Case(
        "person",
        "sup",
        lambda w: [
            Call(
                "POST",
                f"/console/step_down/{w.person_id}/decide",
                data={"assessment_id": w.assessment_id, "comment": "同意转为普管"},
            )
        ],
        owner_ok=(303, 409),  # 409 while A's person has a proposal pending (the owner's calls approve it first)
    ),
    "POST /console/step_down/{person_id}/defer": Case(
        "person",
        "sup",
        lambda w: [
            Call(
                "POST", f"/console/step_down/{w.person_id}/defer", data={"reason_code": "observe", "comment": "再观察"}
            )
        ],
        owner_ok=(303,),
    ),
    "GET /console/proposals": Case("own-office", "sup", lambda w: [Call("GET", "/console/proposals")]),
    "GET /console/review": Case("own-office", "sup", lambda w: [Call("GET", "/console/review")]),
    "POST /console/review": Case(
        "own-office",
        "sup",
        lambda w: [Call("POST", "/console/review", data={"as_of": FUTURE})],  # refused: a date after today
        owner_ok=(422,),
    ),
    "GET /console/decisions": Case(
        "own-office",
        "sup",
        lambda w: [Call("GET", "/console/decisions", params={"start": "2000-01-01", "office": OFFICE})],
    ),
    "GET /console/audit": Case("own-office", "aud", lambda w: [Call("GET", "/console/audit")]),
    "GET /console/case_records": Case("own-office", "aud", lambda w: [Call("GET", "/console/case_records")]),
    "POST /console/score": Case(
        "posted-record", "cw", lambda w: [Call("POST", "/console/score", data=form_of(w.record))], owner_ok=(303,)
    ),
}

#: What a request naming one of these fields, or a path parameter of this name, is keyed by.
KEYS = {
    "person_id": "person",
    "assessment_id": "assessment",
    "decision_id": "decision",
    "run_id": "run",
    "office": "office",
    "person": "posted-record",
    "records": "posted-record",
}


def declared_keys(route: str) -> set[str]:
    """What the route takes, read from the route itself: its API request model's fields, or its path."""
    path = route.split(" ", 1)[1]
    in_path = set(re.findall(r"\{(\w+)", path))
    fields = set(ROUTE_MODELS[path][0].model_fields) if path in ROUTE_MODELS else in_path
    return {KEYS[f] for f in fields if f in KEYS}


# ----------------------------------------------------------------------------- fixtures
def h(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {name}"}


class Callers:
    """The API client and one console session per token, each with its CSRF token."""

    def __init__(self, api: TestClient) -> None:
        self.api = api
        self._sessions: dict[str, tuple[TestClient, str]] = {}

    def session(self, who: str) -> tuple[TestClient, str]:
        if who not in self._sessions:
            c = signed_in(self.api.app, who)
            start = c.get("/console/audit" if TOKENS[who][0] == "auditor" else "/console/review")
            self._sessions[who] = (c, csrf_of(start.text))
        return self._sessions[who]

    def call(self, who: str, call: Call) -> Any:  # an httpx response
        if call.url.startswith("/console/"):
            c, csrf = self.session(who)
            if call.method == "GET":
                return c.get(call.url, params=call.params)
            return c.post(call.url, params=call.params, data={**(call.data or {}), "csrf": csrf})
        if call.method == "GET":
            return self.api.get(call.url, params=call.params, headers=h(who))
        return self.api.post(call.url, params=call.params, json=call.json, headers=h(who))


@pytest.fixture(scope="module")
def tables(service_models: ServiceModels) -> CaseTables:
    return subset(service_models[0], 400)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory, tables: CaseTables) -> tuple[Path, World]:
    """A RISK_HOME where office A's caseworker scored a person, proposed a tier change for them, and A's
    supervisor ran the review meeting; with the ids of all that."""
    home = case_home(tmp_path_factory.mktemp("office-scope"), tables, tokens=TOKENS)
    store = CaseStore(f"sqlite:///{home / 'cases.db'}")
    try:
        roll = store.roll(OFFICE, MEETING)
        # ordinary first: a proposal to raise a tier is never held back by a mandatory rule, so it can be approved
        people = sorted((store.person(str(pid)) for pid in roll["person_id"]), key=lambda p: p["tier"] != "ordinary")
    finally:
        store.close()
    assert people, "the test cohort needs people of office A on the roll at the meeting"
    with in_process_service(home, base_url="https://testserver") as api:
        chosen = None
        for person in people:
            pid, start = str(person["person_id"]), pd.Timestamp(person["supervision_start"]).date()
            scored = api.post(
                "/cases/score",
                json={"person_id": pid, "stage": "intake", "as_of": start.isoformat(), "lang": "zh"},
                headers=h("cw"),
            )
            assert scored.status_code == 200, scored.text
            proposed = api.post(
                "/cases/propose",
                json={
                    "person_id": pid,
                    "to_tier": "ordinary" if person["tier"] == "strict" else "strict",
                    "reason_code": "other",
                    "reason": PROPOSAL_REASON,
                    "assessment_id": scored.json()["assessment_id"],
                },
                headers=h("cw"),
            )
            if proposed.status_code == 200:
                chosen = (pid, scored, proposed.json()["decision_id"])
                break
            assert proposed.status_code == 409, proposed.text  # a mandatory rule keeps this one strict
        assert chosen, "no person of office A could be proposed for a tier change"
        pid, scored, decision_id = chosen
        review = api.post(
            "/cases/review", json={"office": OFFICE, "as_of": MEETING.isoformat(), "lang": "en"}, headers=h("sup")
        )
        assert review.status_code == 200, review.text
    answer, run = scored.json(), review.json()
    row = next(r for r in run["rows"] if r["person_id"] == pid)
    probability, review_probability = repr(float(answer["probability"])), repr(float(row["probability"]))
    assert f'"probability":{probability}' in scored.text.replace(" ", "")  # as the JSON has it
    record = requests_from_tables(
        tables.persons[tables.persons["person_id"] == pid], tables.events, Stage.INTAKE, lang="en"
    )[0]
    world = World(
        person_id=pid,
        record=record,
        assessment_id=answer["assessment_id"],
        probability=probability,
        reasons=tuple(r["text"] for r in answer["reasons"]),
        decision_id=decision_id,
        run_id=run["run_id"],
        review_assessment_id=row["assessment_id"],
        review_probability=review_probability,
        review_summary=row["summary"],
    )
    return home, world


@pytest.fixture(scope="module")
def owner_answers(
    prepared: tuple[Path, World], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[tuple[int, str]]]:
    """Every matrix call made by its owner (office A or the auditor) on a copy of the prepared stores,
    reads first: route -> [(status, body)]."""
    template, world = prepared
    home = fresh_home(template, tmp_path_factory.mktemp("office-scope-owner"))
    answers: dict[str, list[tuple[int, str]]] = {}
    order = sorted(MATRIX, key=lambda route: (route.startswith("POST"), route))
    with in_process_service(home, base_url="https://testserver") as api:
        callers = Callers(api)
        for route in order:
            case = MATRIX[route]
            answers[route] = [(r.status_code, r.text) for r in (callers.call(case.owner, c) for c in case.calls(world))]
    return answers


@pytest.fixture(scope="module")
def world(
    prepared: tuple[Path, World],
    owner_answers: dict[str, list[tuple[int, str]]],  # made first: one in-process service at a time
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Callers, World, dict[str, Any]]]:
    """The service over a copy of the prepared stores, for office B's calls; with office A's and the
    auditor's own reads, made before any call of office B (whatever order the tests run in)."""
    template, w = prepared
    home = fresh_home(template, tmp_path_factory.mktemp("office-scope-world"))
    with in_process_service(home, base_url="https://testserver") as api:
        callers = Callers(api)
        own = {
            "person page": callers.call("cw", Call("GET", f"/console/person/{w.person_id}")),
            "result page": callers.call("cw", Call("GET", f"/console/result/{w.assessment_id}")),
            "review run page": callers.call("sup", Call("GET", f"/console/review/{w.run_id}")),
            "proposals page": callers.call("sup", Call("GET", "/console/proposals")),
            "GET /assessment": callers.call("aud", MATRIX["GET /assessment"].calls(w)[0]),
            "POST /assessment": callers.call("aud", MATRIX["POST /assessment"].calls(w)[0]),
            "POST /person_assessments": callers.call("aud", MATRIX["POST /person_assessments"].calls(w)[0]),
            "audit page": callers.call("aud", MATRIX["GET /console/audit/{assessment_id}"].calls(w)[0]),
            "audit log": callers.call("aud", Call("GET", "/console/audit")),
            "decision report": callers.call("aud", MATRIX["POST /cases/decision_report"].calls(w)[0]),
            "auditor on the person page": callers.call("aud", Call("GET", f"/console/person/{w.person_id}")),
        }
        yield callers, w, own


# ----------------------------------------------------------------------------- the tests
def test_every_route_is_classified_and_the_tables_name_no_route_that_is_gone() -> None:
    unclassified = sorted(set(ROUTES) - set(MATRIX) - set(PERSON_FREE))
    assert not unclassified, f"routes neither in MATRIX nor in PERSON_FREE: {unclassified}"
    assert not set(MATRIX) & set(PERSON_FREE)
    gone = sorted((set(MATRIX) | set(PERSON_FREE)) - set(ROUTES))
    assert not gone, f"classified routes the app no longer has: {gone}"
    assert {f"POST {path}" for path in ROUTE_PERMISSIONS} <= set(ROUTES), "a protected route is not routed"
    assert {r.split(" ", 1)[1] for r in ROUTES if r.startswith("GET /console/")}, "the console is not mounted"


@pytest.mark.parametrize("route", ROUTES)
def test_what_a_route_takes_decides_its_class(route: str) -> None:
    """A route whose request or path names a person, an assessment, a decision, a run or an office cannot be
    called person-free, and the matrix calls it by what it takes."""
    keys = declared_keys(route)
    if route in PERSON_FREE:
        assert not keys, f"{route} takes {keys}: it is not person-free"
        return
    assert route in MATRIX, (
        f"{route} is not classified: add it to MATRIX (or, if it says nothing of a person, PERSON_FREE)"
    )
    case = MATRIX[route]
    if keys:
        assert case.kind in keys, f"{route} takes {keys} but the matrix calls it as {case.kind!r}"
    else:  # a console form names no id in its path: a list of the caller's office, or a posted record
        assert case.kind in ("own-office", "posted-record"), f"{route} takes no id: {case.kind!r} is not possible"


def test_the_live_app_has_the_routes_collected(world: tuple[Callers, World, dict[str, Any]]) -> None:
    callers, _, _ = world
    assert sorted(service_routes(callers.api.app)) == ROUTES


@pytest.mark.parametrize("route", [r for r in ROUTES if r not in PERSON_FREE])
def test_the_matrix_calls_work_for_the_office_itself(
    route: str, owner_answers: dict[str, list[tuple[int, str]]]
) -> None:
    assert route in MATRIX, f"{route} is not classified: add it to MATRIX or PERSON_FREE"
    for status, body in owner_answers[route]:
        assert status in MATRIX[route].owner_ok, (route, MATRIX[route].owner, status, body[:500])


@pytest.mark.parametrize("who", OTHER_OFFICE_ROLES)
@pytest.mark.parametrize("route", [r for r in ROUTES if r not in PERSON_FREE])
def test_office_scope_matrix(route: str, who: str, world: tuple[Callers, World, dict[str, Any]]) -> None:
    """A caseworker and a supervisor of office B get no answer about office A's person by any route."""
    assert route in MATRIX, f"{route} is not classified: add it to MATRIX or PERSON_FREE"
    callers, w, _ = world
    case = MATRIX[route]
    for call in case.calls(w):
        r = callers.call(who, call)
        asked = json.dumps([call.url, call.json, call.data, call.params], ensure_ascii=False)
        if case.kind == "own-office":  # the caller's own office's list (or a refusal): A's objects are not in it
            assert r.status_code < 500, (route, who, r.status_code, r.text[:500])
        else:
            assert r.status_code in (403, 404), f"{call.method} {call.url} as {who}: {r.status_code} {r.text[:500]}"
        # what the caller put in the request may come back (a refusal naming the field); nothing else of A's
        markers = w.markers(numbers=r.status_code >= 400)
        leaked = {name: m for name, m in markers.items() if m in r.text and m not in asked}
        if call.data is not None:  # a console form: refused for the office or role, not for its CSRF token
            assert "防伪" not in r.text, f"{call.url} as {who}: refused for its CSRF token"
        assert not leaked, f"{call.method} {call.url} as {who} ({r.status_code}) leaks {leaked}: {r.text[:800]}"


def test_office_a_sees_its_own_person_and_the_auditor_reads_every_office(
    world: tuple[Callers, World, dict[str, Any]],
) -> None:
    """The positive side, so that the refusals above are about data that is there (read before office B's calls)."""
    _, w, own = world
    page = own["person page"]
    assert page.status_code == 200 and w.person_id in page.text
    assert w.assessment_id in page.text and f"{float(w.probability) * 100:.1f}%" in page.text
    result = own["result page"]
    assert result.status_code == 200 and f"{float(w.probability) * 100:.1f}%" in result.text
    assert all(text in result.text for text in w.reasons)
    assert own["review run page"].status_code == 200 and w.person_id in own["review run page"].text
    listing = own["proposals page"]
    assert listing.status_code == 200 and w.decision_id in listing.text and PROPOSAL_REASON in listing.text
    for name in ("GET /assessment", "POST /assessment"):
        r = own[name]
        assert r.status_code == 200 and r.json()["assessment_id"] == w.assessment_id, (name, r.text[:300])
        assert r.json()["response"]["probability"] == float(w.probability)
    r = own["POST /person_assessments"]
    assert r.status_code == 200 and w.assessment_id in {a["assessment_id"] for a in r.json()["assessments"]}
    r = own["audit page"]
    assert r.status_code == 200 and w.assessment_id in r.text and PROPOSAL_REASON in r.text
    assert own["audit log"].status_code == 200 and w.assessment_id in own["audit log"].text
    r = own["decision report"]
    assert r.status_code == 200 and r.json()["total"]["proposed"] >= 1, r.text[:300]
    # the auditor reads the trail; the office's case pages stay the office's
    assert own["auditor on the person page"].status_code == 403
