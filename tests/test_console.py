"""The web console in-process (the whole service's ASGI app): sign-in, roles, CSRF, pages, actions.

The browser tests (tests/test_console_browser.py) drive the same pages in Chromium against a real
``riskctl serve``; these check the server's rules request by request, quickly.
"""

from __future__ import annotations

import csv as csvlib
import datetime as dt
import io
import json
import re
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from cases_support import subset
from service_support import ServiceModels, case_home, fresh_home, in_process_service, token
from starlette.testclient import TestClient
from starlette.types import ASGIApp

from features.schema import PERSON_COLUMNS, CaseTables
from features.vocab import Offence, Stage
from serving.auth import issue_token, revoke_tokens
from serving.cases import CaseStore, Colour, ReviewPolicy, due_list
from serving.scoring import requests_from_tables

OFFICE, OTHER = "chengguan", "dongcheng"
TOKENS = {
    "cw": ("caseworker", "wang", OFFICE),
    "sup": ("supervisor", "li", OFFICE),
    "cw2": ("caseworker", "zhao", OTHER),
    "aud": ("auditor", "zhou", None),
}
MEETING = dt.date(2023, 6, 1)


@pytest.fixture(scope="module")
def tables(service_models: ServiceModels) -> CaseTables:
    return subset(service_models[0], 600)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, tables: CaseTables) -> Path:
    """The module's case store and tokens, made once; each test works on a copy (``home``)."""
    return case_home(tmp_path_factory.mktemp("console-home"), tables, tokens=TOKENS)


@pytest.fixture()
def home(template: Path, tmp_path: Path) -> Path:
    return fresh_home(template, tmp_path)


@pytest.fixture(scope="module")
def office_people(template: Path) -> list[str]:
    """Person ids on the office's roll at the meeting date, as the case store counts them."""
    store = CaseStore(f"sqlite:///{template / 'cases.db'}")
    try:
        return store.roll(OFFICE, MEETING)["person_id"].astype(str).tolist()
    finally:
        store.close()


@pytest.fixture()
def app(home: Path) -> Iterator[ASGIApp]:
    with in_process_service(home, base_url="https://testserver") as c:
        yield c.app


@pytest.fixture(scope="module")
def person(service_models: ServiceModels) -> dict[str, Any]:
    tables, _ = service_models
    outside = tables.persons.iloc[600:630]  # not in the case store (its first 600): a record posted by anyone
    body = requests_from_tables(outside, tables.events, Stage.MIDTERM, lang="zh")
    return max(body, key=lambda b: len(b["events"]))


def client(app: ASGIApp, role: str | None = None) -> TestClient:
    """A browser-like client signed in as ``role`` (a role of service_support) or a TOKENS name."""
    c = TestClient(app, base_url="https://testserver", follow_redirects=False)
    if role:
        signed = sign_in(c, role if role in TOKENS else token(role))
        assert signed.status_code == 303, signed.text
    return c


def csrf_of(html: str) -> str:
    return found(r'name="csrf" value="([^"]+)"', html)


def sign_in(c: TestClient, raw_token: str) -> Any:  # an httpx response: untyped here (starlette types it with httpx2)
    page = c.get("/console/login")
    return c.post("/console/login", data={"csrf": csrf_of(page.text), "token": raw_token, "next": "/console/"})


def form_of(person: dict[str, Any], stage: str = "midterm") -> dict[str, str]:
    p = person["person"]
    data = {k: ("on" if v is True else str(v)) for k, v in p.items() if v is not False}
    data["stage"] = stage
    data["events"] = "\n".join(
        f"{e['date']} {e['event_type']}" + (f" {e['value']}" if e.get("value") is not None else "")
        for e in person["events"]
    )
    return data


def score(c: TestClient, person: dict[str, Any]) -> str:
    page = c.get("/console/score")
    r = c.post("/console/score", data={**form_of(person), "csrf": csrf_of(page.text)})
    assert r.status_code == 303, r.text[:2000]
    location: str = r.headers["location"]
    return location.rsplit("/", 1)[1]


def test_sign_in_sets_a_secure_http_only_same_site_cookie_that_expires(app: ASGIApp) -> None:
    c = TestClient(app, base_url="https://testserver", follow_redirects=False)
    assert c.get("/console/score").headers["location"].startswith("/console/login?next=")
    r = sign_in(c, "cw")
    assert r.status_code == 303 and r.headers["location"] == "/console/"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("risk_console_session="))
    assert all(flag in cookie.lower() for flag in ("httponly", "samesite=strict", "secure", "max-age=28800"))
    assert c.get("/console/").headers["location"] == "/console/today"  # a caseworker's day starts there
    assert c.get("/console/roster").status_code == 200
    sup = client(app, "sup")
    assert sup.get("/console/").headers["location"] == "/console/proposals"


def test_unknown_token_and_modeler_are_refused(app: ASGIApp) -> None:
    c = TestClient(app, base_url="https://testserver", follow_redirects=False)
    r = sign_in(c, "not-a-token")
    assert r.status_code == 401 and "无效" in r.text
    r = sign_in(c, token("modeler"))
    assert r.status_code == 403 and "risk_console_session" not in r.headers.get("set-cookie", "")


def test_sign_in_form_without_its_csrf_token_is_refused(app: ASGIApp) -> None:
    c = TestClient(app, base_url="https://testserver", follow_redirects=False)
    c.get("/console/login")
    r = c.post("/console/login", data={"token": token("auditor")})
    assert r.status_code == 403 and "risk_console_session" not in r.headers.get("set-cookie", "")


def test_a_form_without_or_with_a_wrong_csrf_token_does_nothing(
    app: ASGIApp, home: Path, person: dict[str, Any]
) -> None:
    c = client(app, "caseworker")
    before = count(home)
    for data in ({}, {"csrf": "0" * 64}):
        r = c.post("/console/score", data={**form_of(person), **data})
        assert r.status_code == 403 and "防伪" in r.text
    assert count(home) == before


def test_role_checks_on_the_server_even_for_a_form_posted_directly(
    app: ASGIApp, home: Path, person: dict[str, Any], office_people: list[str]
) -> None:
    auditor, caseworker, supervisor = client(app, "aud"), client(app, "cw"), client(app, "sup")
    csrf = csrf_of(auditor.get("/console/audit").text)
    before = count(home)
    r = auditor.post("/console/score", data={**form_of(person), "csrf": csrf})
    assert r.status_code == 403 and "审计人员" in r.text
    assert auditor.get(f"/console/person/{office_people[0]}").status_code == 403
    sup_csrf = csrf_of(supervisor.get("/console/proposals").text)
    assert (
        supervisor.post(
            f"/console/person/{office_people[0]}/score", data={"csrf": sup_csrf, "stage": "midterm"}
        ).status_code
        == 403
    )
    assert count(home) == before
    assert caseworker.get("/console/audit").status_code == 403
    assert caseworker.get("/console/proposals").status_code == 403
    cw_csrf = csrf_of(caseworker.get("/console/roster").text)
    assert caseworker.post("/console/verify", data={"csrf": cw_csrf}).status_code == 403
    approve = caseworker.post("/console/proposals/x/approve", data={"csrf": cw_csrf, "comment": "ok ok"})
    assert approve.status_code == 403


def test_another_office_is_refused(app: ASGIApp, office_people: list[str]) -> None:
    other = client(app, "cw2")
    assert other.get(f"/console/person/{office_people[0]}").status_code == 403
    roster = other.get("/console/roster")
    assert roster.status_code == 200 and office_people[0] not in roster.text


def test_score_now_stores_the_api_answer_and_shows_it(app: ASGIApp, home: Path, person: dict[str, Any]) -> None:
    c = client(app, "caseworker")
    before = count(home)
    assessment_id = score(c, person)
    assert count(home) == before + 1
    page = c.get(f"/console/result/{assessment_id}")
    assert page.status_code == 200 and "<svg" in page.text and "典型人员" in page.text
    with sqlite3.connect(home / "audit.db") as db:
        actor, response = db.execute(
            "select actor, response_json from assessments where assessment_id = ?", (assessment_id,)
        ).fetchone()
    assert actor == "caseworker-user"
    stored = json.loads(response)
    assert f"{stored['probability'] * 100:.1f}%" in page.text
    assert all(r["text"] in page.text for r in stored["reasons"])


def test_a_bad_form_names_the_field_and_stores_nothing(app: ASGIApp, home: Path, person: dict[str, Any]) -> None:
    c = client(app, "caseworker")
    data = {**form_of(person), "birth_date": "1990-13-45", "events": "2024-01-01 not_an_event"}
    before = count(home)
    r = c.post("/console/score", data={**data, "csrf": csrf_of(c.get("/console/score").text)})
    assert r.status_code == 400
    assert "person.birth_date" in r.text and "events[0].event_type" in r.text
    assert count(home) == before


def test_roster_search_and_filters(app: ASGIApp, office_people: list[str]) -> None:
    c = client(app, "cw")
    page = c.get("/console/roster", params={"as_of": MEETING.isoformat()})
    assert page.status_code == 200 and all(pid in page.text for pid in office_people[:5])
    one = c.get("/console/roster", params={"as_of": MEETING.isoformat(), "q": office_people[3]})
    assert office_people[3] in one.text and office_people[4] not in one.text
    strict = c.get("/console/roster", params={"as_of": MEETING.isoformat(), "tier": "strict", "state": "overdue"})
    assert strict.status_code == 200
    bad = c.get("/console/roster", params={"as_of": "June"}).text  # a Chinese page says it in Chinese
    assert "不是有效日期" in bad and "not a date" not in bad


def pending_of(listing: str, person_id: str) -> str:
    """The id of ``person_id``'s pending proposal on the supervisor's proposals page."""
    return found(rf'id="h-([0-9a-f-]+)"><a href="[^"]*/person/{re.escape(person_id)}"', listing)


PROPOSABLE = re.compile(r'<select id="to_tier" name="to_tier">\s*<option')


def scored_proposable(cw: TestClient, people: list[str]) -> tuple[str, str]:
    """The first of ``people`` whose page, once scored at mid-term, lets a tier change be proposed (no
    mandatory rule in force keeps them strict), with that page."""
    for pid in people:
        page = c_get(cw, f"/console/person/{pid}")
        r = cw.post(f"/console/person/{pid}/score", data={"csrf": csrf_of(page), "stage": "midterm"})
        assert r.status_code == 303, r.text[:500]
        page = c_get(cw, r.headers["location"])
        if PROPOSABLE.search(page):
            return pid, page
    raise AssertionError("every person is held strict by a rule")


def test_score_now_propose_approve_and_reject(app: ASGIApp, home: Path, office_people: list[str]) -> None:
    cw = client(app, "cw")
    before = count(home)
    pid, page = scored_proposable(cw, office_people[1:])
    assert count(home) > before
    assert "已评估" in page and "风险变化" in page and "<svg" in page
    tier_now = found(r'<dd class="big">([^<]+)</dd>', page)
    to = first_option(page, "to_tier")
    assessment_id = first_option(page, "assessment_id")
    short = cw.post(
        f"/console/person/{pid}/propose",
        data={
            "csrf": csrf_of(page),
            "to_tier": to,
            "reason_code": "serious_violation",
            "reason": "no",
            "assessment_id": assessment_id,
        },
    )
    assert short.status_code == 422 and "reason" in short.text
    r = cw.post(
        f"/console/person/{pid}/propose",
        data={
            "csrf": csrf_of(page),
            "to_tier": to,
            "reason_code": "serious_violation",
            "reason": "两次警告，需加强管理",
            "assessment_id": assessment_id,
        },
    )
    assert r.status_code == 303, r.text[:500]
    again = cw.post(
        f"/console/person/{pid}/propose",
        data={
            "csrf": csrf_of(page),
            "to_tier": to,
            "reason_code": "serious_violation",
            "reason": "两次警告，需加强管理",
            "assessment_id": assessment_id,
        },
    )
    assert again.status_code == 409
    sup = client(app, "sup")
    listing = c_get(sup, "/console/proposals")
    assert "两次警告" in listing and pid in listing
    decision_id = pending_of(listing, pid)  # other tests of the module may have left proposals pending
    r = sup.post(f"/console/proposals/{decision_id}/approve", data={"csrf": csrf_of(listing), "comment": "同意"})
    assert r.status_code == 303
    after = c_get(cw, f"/console/person/{pid}")
    assert found(r'<dd class="big">([^<]+)</dd>', after) != tier_now
    twice = sup.post(f"/console/proposals/{decision_id}/reject", data={"csrf": csrf_of(listing), "comment": "不同意"})
    assert twice.status_code == 409
    # a second proposal, rejected: the tier stays
    back = first_option(after, "to_tier")
    cw.post(
        f"/console/person/{pid}/propose",
        data={
            "csrf": csrf_of(after),
            "to_tier": back,
            "reason_code": "good_conduct",
            "reason": "表现良好，按时报到",
            "assessment_id": assessment_id,
        },
    )
    listing = c_get(sup, "/console/proposals")
    decision_id = pending_of(listing, pid)
    r = sup.post(f"/console/proposals/{decision_id}/reject", data={"csrf": csrf_of(listing), "comment": "再观察"})
    assert r.status_code == 303
    final = c_get(cw, f"/console/person/{pid}")
    assert found(r'<dd class="big">([^<]+)</dd>', final) == found(r'<dd class="big">([^<]+)</dd>', after)
    assert "已驳回" in final and "再观察" in final


def test_review_meeting_print_view_and_csv(app: ASGIApp) -> None:
    sup = client(app, "sup")
    page = c_get(sup, "/console/review")
    r = sup.post("/console/review", data={"csrf": csrf_of(page), "as_of": MEETING.isoformat()})
    assert r.status_code == 303
    shown = c_get(sup, r.headers["location"])
    assert "风险研判分析会" in shown and "预警" in shown
    csv = sup.get(r.headers["location"] + "/csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv.headers["content-disposition"] and csv.text.count("\n") > 2
    printed = sup.get(r.headers["location"] + "/print")
    assert printed.status_code == 200 and "<table" in printed.text
    assert client(app, "cw2").get(r.headers["location"]).status_code == 403
    only_moves = c_get(sup, r.headers["location"] + "?mismatch=1").split("<tbody>")[1]
    assert only_moves.count("<tr>") == only_moves.count("建议从严") + only_moves.count("建议放宽")
    # the roster filters by the alert colour of this meeting
    rows = list(csvlib.DictReader(io.StringIO(csv.text.lstrip("\ufeff"))))
    blue = sorted(row["人员编号"] for row in rows if row["alert_code"] == "blue")
    roster = c_get(sup, f"/console/roster?as_of={MEETING.isoformat()}&alert=blue")
    assert "取自 " + MEETING.isoformat() in roster
    listed = roster.split("<tbody>")[1]
    assert listed.count("<tr>") == min(len(blue), 100) and all(f">{p}<" in listed for p in blue[:20])


def found(pattern: str, html: str) -> str:
    """The first group of ``pattern`` in the page (the test fails when it is not there)."""
    match = re.search(pattern, html)
    assert match, f"not on the page: {pattern}"
    return match.group(1)


def first_option(html: str, select_id: str) -> str:
    """The value of the first option of a select of the page."""
    return found(rf'<select id="{select_id}" name="{select_id}">\s*<option value="([^"]+)"', html)


def c_get(c: TestClient, path: str) -> str:
    r = c.get(path)
    assert r.status_code == 200, (path, r.status_code, r.text[:500])
    text: str = r.text
    return text


def test_auditor_log_filters_assessment_page_verify_and_decisions(app: ASGIApp, office_people: list[str]) -> None:
    cw = client(app, "cw")
    pid = office_people[2]
    page = c_get(cw, f"/console/person/{pid}")
    cw.post(f"/console/person/{pid}/score", data={"csrf": csrf_of(page), "stage": "release"})
    page = c_get(cw, f"/console/person/{pid}")
    decided = first_option(page, "assessment_id")
    to = first_option(page, "to_tier")
    r = cw.post(
        f"/console/person/{pid}/propose",
        data={
            "csrf": csrf_of(page),
            "to_tier": to,
            "reason_code": "other",
            "reason": "supervision report of 2024-09-02",
            "assessment_id": decided,
        },
    )
    assert r.status_code == 303
    c = client(app, "aud")
    log = c.get("/console/audit")
    assert log.status_code == 200 and decided in log.text
    assert decided in c.get("/console/audit", params={"decided": "yes"}).text
    assert decided not in c.get("/console/audit", params={"decided": "no"}).text
    assert decided not in c.get("/console/audit", params={"stage": "intake"}).text
    assert decided not in c.get("/console/audit", params={"actor": "somebody-else"}).text
    assert decided in c.get("/console/audit", params={"actor": "wang", "stage": "release"}).text
    assert decided not in c.get("/console/audit", params={"until": "2000-01-01"}).text
    bad = c.get("/console/audit", params={"since": "yesterday"}).text
    assert "不是有效日期" in bad and "not a date" not in bad
    one = c.get(f"/console/audit/{decided}")
    assert one.status_code == 200 and "supervision report of 2024-09-02" in one.text
    assert "record_hash" in one.text and "base_value" not in one.text.split("完整解释")[0]
    assert c.get("/console/audit/not-an-id").status_code == 404
    verify = c.post("/console/verify", data={"csrf": csrf_of(c.get("/console/verify").text)})
    assert verify.status_code == 200 and "审计链完整" in verify.text
    assert "最新签名检查点" in verify.text and "signature" in verify.text  # the signed checkpoint is shown
    assert "审计员须自行保存的凭据" in verify.text and "checkpoints.jsonl" in verify.text  # the anchors to keep
    decisions = c_get(c, "/console/decisions")
    assert "wang" in decisions and OFFICE in decisions and "偏离率" in decisions
    mine = c_get(client(app, "sup"), "/console/decisions")
    assert "wang" in mine and 'id="office"' not in mine  # a supervisor sees their own office only


def test_sign_out_ends_the_session_on_the_server(app: ASGIApp) -> None:
    c = client(app, "auditor")
    cookie = c.cookies.get("risk_console_session")
    r = c.post("/console/logout", data={"csrf": csrf_of(c.get("/console/audit").text)})
    assert r.status_code == 303
    replay = TestClient(app, base_url="https://testserver", follow_redirects=False)
    replay.cookies.set("risk_console_session", cookie)
    assert replay.get("/console/audit").status_code == 303  # back to sign-in: the old cookie is worthless


def test_a_revoked_token_ends_its_sessions_at_once(app: ASGIApp, home: Path) -> None:
    new = issue_token(home / "auth.json", role="auditor", user="temp-auditor")
    c = TestClient(app, base_url="https://testserver", follow_redirects=False)
    assert sign_in(c, new).status_code == 303
    assert c.get("/console/audit").status_code == 200
    issue_token(home / "auth.json", role="auditor", user="temp-auditor")  # replaces (revokes) the first
    assert c.get("/console/audit").status_code == 303


def test_language_switch_and_security_headers(app: ASGIApp) -> None:
    c = client(app, "auditor")
    zh = c.get("/console/audit")
    assert 'lang="zh-CN"' in zh.text and "评估记录" in zh.text
    r = c.get("/console/lang/en", params={"next": "/console/audit?stage=intake"})
    assert r.status_code == 303 and r.headers["location"] == "/console/audit?stage=intake"
    en = c.get("/console/audit")
    assert 'lang="en"' in en.text and "Assessment log" in en.text
    assert c.get("/console/lang/en", params={"next": "https://evil.example/"}).headers["location"] == "/console/"
    assert "default-src 'none'" in en.headers["content-security-policy"]
    assert en.headers["x-frame-options"] == "DENY" and en.headers["cache-control"] == "no-store"


def test_pages_reference_only_their_own_origin(app: ASGIApp, person: dict[str, Any], office_people: list[str]) -> None:
    c = client(app, "cw")
    assessment_id = score(c, person)
    pages = [
        c_get(c, "/console/score"),
        c_get(c, f"/console/result/{assessment_id}"),
        c_get(c, "/console/roster"),
        c_get(c, f"/console/person/{office_people[0]}"),
        c_get(c, "/console/review"),
    ]
    a = client(app, "aud")
    pages += [c_get(a, "/console/audit"), c_get(a, f"/console/audit/{assessment_id}"), c_get(a, "/console/decisions")]
    pages += [c_get(client(app, "sup"), "/console/proposals")]
    for html in pages:
        for url in re.findall(r'(?:src|href|action)="([^"]*)"', html):
            assert url.startswith(("/console/", "?", "#")), url
    css = c.get("/console/static/console.css")
    assert css.status_code == 200 and "url(" not in css.text and "@import" not in css.text


def count(home: Path) -> int:
    with sqlite3.connect(home / "audit.db") as db:
        n: int = db.execute("select count(*) from assessments").fetchone()[0]
        return n


def test_tier_by_risk_is_the_answers_own_when_it_has_one() -> None:
    from models.tier_policy import TierPolicy
    from serving.scoring import answer_tier_by_risk as tier_by_risk

    policy = TierPolicy.load()
    tier: dict[str, Any] = {"tier": {"code": "strict"}}
    answer = {"stage": {"code": "midterm"}, "band": {"code": "high"}, "tier": tier}
    assert tier_by_risk(answer, policy) == "strict"  # from the policy: high is a strict band
    tier["tier_by_risk"] = {"code": "ordinary", "label": "普管"}
    assert tier_by_risk(answer, policy) == "ordinary"  # the answer's own field wins (issue 12's two tiers)


def test_an_assessment_page_of_another_office_is_refused(app: ASGIApp, office_people: list[str]) -> None:
    """A caseworker of another office gets no answer by its id (design.md: office scope reaches pages opened
    by an assessment id); the caseworker of the person's office, and one who scored a posted record, do."""
    cw, other = client(app, "cw"), client(app, "cw2")
    pid = office_people[4]
    page = c_get(cw, f"/console/person/{pid}")
    cw.post(f"/console/person/{pid}/score", data={"csrf": csrf_of(page), "stage": "midterm"})
    assessment_id = first_option(c_get(cw, f"/console/person/{pid}"), "assessment_id")
    assert cw.get(f"/console/result/{assessment_id}").status_code == 200
    refused = other.get(f"/console/result/{assessment_id}")
    # the page names neither the person nor anything of the answer (only the language link repeats the URL asked)
    assert refused.status_code == 403 and pid not in refused.text and "<svg" not in refused.text


def test_what_moved_runs_from_the_earlier_date_to_the_later(app: ASGIApp, home: Path, office_people: list[str]) -> None:
    """Assessments recorded out of date order (a backdated one last) still compare earlier -> later."""
    pid = office_people[5]
    store = CaseStore(f"sqlite:///{home / 'cases.db'}")
    try:
        start = store.person(pid)["supervision_start"]
        end = store.person(pid)["supervision_end"]
    finally:
        store.close()
    opens, _ = ReviewPolicy.load().due.window(Stage.MIDTERM).dates(start, end)  # inside the mid-term window
    later, earlier = (opens + dt.timedelta(days=d) for d in (20, 5))
    api = TestClient(app, base_url="https://testserver")
    for as_of in (later, earlier):  # the later date is recorded first
        r = api.post(
            "/cases/score",
            json={"person_id": pid, "stage": "midterm", "as_of": as_of.isoformat()},
            headers={"Authorization": "Bearer cw"},
        )
        assert r.status_code == 200, r.text
    page = c_get(client(app, "cw"), f"/console/person/{pid}")
    assert f"{earlier} → {later}" in page and f"{later} → {earlier}" not in page
    moved = re.search(r'id="h-moved".*?</section>', page, flags=re.S)
    assert moved and "对数几率" not in moved.group(0)  # sizes in percentage points, none that round to zero
    assert all(float(v) != 0.0 for v in re.findall(r'class="num (?:up|down)">([+-]\d+\.\d)</td>', moved.group(0)))


def test_lengths_are_checked_on_the_server_and_only_approve_or_reject_decides(
    app: ASGIApp, home: Path, office_people: list[str]
) -> None:
    """Issue 20, defect 9: a 10,000-character reason or comment posted past the browser's limits is refused
    (nothing stored), and a proposal's action is approve or reject, nothing else."""
    cw, sup = client(app, "cw"), client(app, "sup")
    pid, page = scored_proposable(cw, office_people[6:])
    form = {
        "csrf": csrf_of(page),
        "to_tier": first_option(page, "to_tier"),
        "reason_code": "serious_violation",
        "assessment_id": first_option(page, "assessment_id"),
    }
    long = cw.post(f"/console/person/{pid}/propose", data={**form, "reason": "长" * 10_000})
    assert long.status_code == 422 and "4000" in long.text
    assert pid not in c_get(sup, "/console/proposals")  # nothing was proposed
    assert cw.post(f"/console/person/{pid}/propose", data={**form, "reason": "两次警告，需加强管理"}).status_code == 303
    listing = c_get(sup, "/console/proposals")
    decision_id = pending_of(listing, pid)
    csrf = csrf_of(listing)
    odd = sup.post(f"/console/proposals/{decision_id}/frobnicate", data={"csrf": csrf, "comment": "同意"})
    assert odd.status_code == 404
    wordy = sup.post(f"/console/proposals/{decision_id}/approve", data={"csrf": csrf, "comment": "意" * 6000})
    assert wordy.status_code == 422
    assert pending_of(c_get(sup, "/console/proposals"), pid) == decision_id  # still pending, undecided


# ----------------------------------------------------------------------------- issue 20: dates, rules, events
def _store(home: Path) -> CaseStore:
    return CaseStore(f"sqlite:///{home / 'cases.db'}")


def test_no_assessment_is_dated_after_today_and_a_window_not_yet_open_is_refused_with_its_date(
    app: ASGIApp, home: Path
) -> None:
    """Issue 20, defect 1: 'score now' dates the assessment today (or at the end of an ended term), never at a
    future stage date; a stage whose window has not opened is refused with the day it opens, nothing stored."""
    store = _store(home)
    try:
        roll = store.roll(OFFICE, dt.date.today())
        running = roll[roll["supervision_end"] > pd.Timestamp(dt.date.today() + dt.timedelta(days=31))]
        assert not running.empty, "the test cohort needs someone whose term runs past next month"
        person = store.person(str(running["person_id"].iloc[0]))
    finally:
        store.close()
    pid, end = person["person_id"], person["supervision_end"]
    opens, _ = ReviewPolicy.load().due.window(Stage.RELEASE).dates(person["supervision_start"], end)
    cw, api = client(app, "cw"), TestClient(app, base_url="https://testserver")
    before = count(home)
    page = c_get(cw, f"/console/person/{pid}")
    r = cw.post(f"/console/person/{pid}/score", data={"csrf": csrf_of(page), "stage": "release"})
    assert r.status_code == 409 and str(opens) in r.text and "解矫评估自" in r.text
    r = api.post("/cases/score", json={"person_id": pid, "stage": "release"}, headers={"Authorization": "Bearer cw"})
    assert r.status_code == 409 and str(opens) in r.json()["error"]
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    r = api.post(
        "/cases/score",
        json={"person_id": pid, "stage": "intake", "as_of": tomorrow, "lang": "en"},
        headers={"Authorization": "Bearer cw"},
    )
    assert r.status_code == 422 and "after today" in r.json()["error"]
    assert count(home) == before  # nothing stored
    r = api.post("/cases/score", json={"person_id": pid, "stage": "intake"}, headers={"Authorization": "Bearer cw"})
    assert r.status_code == 200 and r.json()["as_of"] == dt.date.today().isoformat()
    # the stateless route refuses a stage date after today too, in the caller's language
    body = {"person": {c: str(v) if isinstance(v, dt.date) else v for c, v in person.items() if c in PERSON_COLUMNS}}
    r = api.post("/score", json={**body, "stage": "release", "lang": "zh"}, headers={"Authorization": "Bearer cw"})
    assert r.status_code == 400 and "晚于今天" in r.text


def test_a_mandatory_rule_is_a_floor_for_the_proposal_and_the_approval(app: ASGIApp, office_people: list[str]) -> None:
    """Issue 20, defect 2: no proposal and no approval moves a person below the tier a rule in force requires;
    the refusal names the rule, and the page says so and offers no lower tier."""
    cw, sup = client(app, "cw"), client(app, "sup")
    pid, page = scored_proposable(cw, office_people[8:])
    form = {
        "csrf": csrf_of(page),
        "to_tier": "ordinary",
        "reason_code": "good_conduct",
        "reason": "表现良好，按时报到",
        "assessment_id": first_option(page, "assessment_id"),
    }
    assert cw.post(f"/console/person/{pid}/propose", data=form).status_code == 303
    # two warnings recorded on the page, and a new score: the 'sanctions' rule now holds
    r = c_get(cw, f"/console/person/{pid}")
    as_of = dt.date.fromisoformat(found(r'<option value="[0-9a-f-]+"[^>]*>\S+ (\d{4}-\d\d-\d\d) ·', r))
    day = (as_of - dt.timedelta(days=1)).isoformat()  # events dated on the assessment day are not used
    for _ in range(2):
        done = cw.post(
            f"/console/person/{pid}/event",
            data={"csrf": csrf_of(r), "date": day, "event_type": "warning", "value": ""},
        )
        assert done.status_code == 303, done.text[:400]
    r = cw.post(f"/console/person/{pid}/score", data={"csrf": csrf_of(r), "stage": "midterm"})
    page = c_get(cw, r.headers["location"])
    assert "受到警告或治安管理处罚累计两次及以上" in page and not PROPOSABLE.search(page)
    listing = c_get(sup, "/console/proposals")
    decision_id = pending_of(listing, pid)
    refused = sup.post(f"/console/proposals/{decision_id}/approve", data={"csrf": csrf_of(listing), "comment": "同意"})
    assert refused.status_code == 409 and "受到警告或治安管理处罚累计两次及以上" in refused.text
    assert pending_of(c_get(sup, "/console/proposals"), pid) == decision_id  # still pending, tier unchanged
    api = TestClient(app, base_url="https://testserver")
    r = api.post(
        "/cases/propose",
        json={
            "person_id": pid,
            "to_tier": "ordinary",
            "reason_code": "good_conduct",
            "reason": "表现良好，按时报到",
            "assessment_id": form["assessment_id"],
            "lang": "en",
        },
        headers={"Authorization": "Bearer cw"},
    )
    assert r.status_code == 409  # pending already; the rule is checked on a fresh proposal below
    assert (
        sup.post(
            f"/console/proposals/{decision_id}/reject", data={"csrf": csrf_of(listing), "comment": "规则适用"}
        ).status_code
        == 303
    )
    r = api.post(
        "/cases/propose",
        json={
            "person_id": pid,
            "to_tier": "ordinary",
            "reason_code": "good_conduct",
            "reason": "表现良好，按时报到",
            "assessment_id": form["assessment_id"],
            "lang": "en",
        },
        headers={"Authorization": "Bearer cw"},
    )
    assert r.status_code == 409 and "'sanctions'" in r.json()["error"] and "correct the record" in r.json()["error"]


def test_a_refused_form_comes_back_as_typed_and_events_are_refused_after_today(
    app: ASGIApp, office_people: list[str]
) -> None:
    """Issue 20, defects 8 and 9: the event form validates as the API does; a refused proposal keeps its text."""
    cw = client(app, "cw")
    pid, page = scored_proposable(cw, office_people[10:])
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    r = cw.post(
        f"/console/person/{pid}/event",
        data={"csrf": csrf_of(page), "date": tomorrow, "event_type": "warning", "value": ""},
    )
    assert r.status_code == 422 and "晚于记录日期" in r.text and f'value="{tomorrow}"' in r.text
    r = cw.post(
        f"/console/person/{pid}/event", data={"csrf": csrf_of(page), "date": "2024-13-45", "event_type": "warning"}
    )
    assert r.status_code == 422 and "不是有效日期" in r.text
    typed = "这段理由很长" * 700
    r = cw.post(
        f"/console/person/{pid}/propose",
        data={
            "csrf": csrf_of(page),
            "to_tier": "ordinary",
            "reason_code": "family_crisis",
            "reason": typed,
            "assessment_id": first_option(page, "assessment_id"),
        },
    )
    assert r.status_code == 422 and typed in r.text and 'value="family_crisis" selected' in r.text


def test_chinese_pages_say_what_is_wrong_in_chinese(app: ASGIApp, person: dict[str, Any]) -> None:
    """Issue 20, defect 10: a Chinese page never shows pydantic's English messages, and the intake flags'
    labels are the vocabulary's own (not parsed back out of a description)."""
    c = client(app, "caseworker")
    page = c.get("/console/score")
    assert "三无人员(无家可归、无亲可投、无业可就)" in page.text and "no home, no relatives" not in page.text
    form = {k: v for k, v in form_of(person).items() if k != "sex"}
    form["events"] = "2020-01-01 unheard_of\n2020-02-30 warning\nnonsense"
    r = c.post("/console/score", data={**form, "csrf": csrf_of(page.text)})
    assert r.status_code == 400
    assert "Field required" not in r.text and "Input should be" not in r.text and "expected 'date" not in r.text
    assert "第3行" in r.text
    r = c.post(
        "/console/score", data={**form_of(person), "events": "2020-01-01 unheard_of", "csrf": csrf_of(page.text)}
    )
    assert r.status_code == 400 and "取值不在允许范围内" in r.text and "Input should be" not in r.text
    en = client(app, "caseworker")
    en.get("/console/lang/en", params={"next": "/console/score"})
    page = en.get("/console/score")
    assert "three withouts&#39; (no home, no relatives, no job)</label>" in page.text


CJK = re.compile(r"[\u4e00-\u9fff]")


def test_stored_answers_render_in_the_viewers_language_and_keep_their_bytes(
    app: ASGIApp, home: Path, office_people: list[str]
) -> None:
    """Issue 20, defect 10: an answer stored in Chinese reads in English on an English page (band, tiers,
    reasons, review alerts and summaries), while the stored answer stays byte for byte as returned."""
    cw = client(app, "cw")
    pid, page = scored_proposable(cw, office_people[12:])  # scored in Chinese
    assessment_id = first_option(page, "assessment_id")
    sup = client(app, "sup")
    listing = c_get(sup, "/console/review")
    r = sup.post("/console/review", data={"csrf": csrf_of(listing), "as_of": MEETING.isoformat()})
    run_path = r.headers["location"]
    for c in (cw, sup):
        c.get("/console/lang/en", params={"next": "/console/"})
    en = c_get(cw, f"/console/person/{pid}")
    answers = re.findall(r'<section class="card answer".*?</section>', en, flags=re.S)
    assert answers and all(not CJK.search(a) for a in answers), [CJK.findall(a)[:10] for a in answers]
    result = c_get(cw, f"/console/result/{assessment_id}")
    shown = re.search(r'<section class="card answer".*?</section>', result, flags=re.S)
    assert shown and not CJK.search(shown.group(0))
    aud = client(app, "aud")
    aud.get("/console/lang/en", params={"next": "/console/"})
    stored = re.search(r"<pre[^>]*>(.*?)</pre>", c_get(aud, f"/console/audit/{assessment_id}"), flags=re.S)
    assert stored and "&#34;lang&#34;: &#34;zh&#34;" in stored.group(1) and CJK.search(stored.group(1))  # as returned
    run = c_get(sup, run_path)
    table = re.search(r'<table class="review">.*?</table>', run, flags=re.S)
    assert table and "橙色预警" not in table.group(0) and "自" not in table.group(0)
    assert "risk" in table.group(0)


STATE_ZH = {"due": "应评估", "overdue": "已逾期", "upcoming": "即将到期", "done": "已完成", "not_yet": "未到期"}
MISMATCH_ZH = {"raise": "建议从严", "lower": "建议放宽"}  # the review page's words (serving/console/_i18n.py)
REVOKED_ZH = "会话已结束：登录所用的访问令牌已被吊销或更换"


def people_listed(html: str) -> list[str]:
    """The person ids of the roster's table, in order."""
    return re.findall(r'<td><a href="/console/person/([^"]+)">', html.split("<tbody>")[1])


def test_the_roster_pages_keeping_its_filters(
    app: ASGIApp, office_people: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 21, defect 1: the roster stopped at 500 rows; it pages (``page``), says which rows it shows of how
    many, and its previous / next links keep the search, the filters and the date."""
    monkeypatch.setattr("serving.console._cases.ROSTER_PAGE", 10)
    c, day, n = client(app, "cw"), MEETING.isoformat(), len(office_people)
    pages = -(-n // 10)
    assert pages >= 3
    seen = []
    for page_no in range(1, pages + 1):
        html = c_get(c, f"/console/roster?as_of={day}&q=S000&page={page_no}")
        listed = people_listed(html)
        assert len(listed) == min(10, n - 10 * (page_no - 1))
        first = 10 * (page_no - 1) + 1
        assert f"显示第 {first}–{first + len(listed) - 1} 人，共 {n} 人" in html
        assert f"第 {page_no}/{pages} 页" in html
        links = {
            rel: href.replace("&amp;", "&") for href, rel in re.findall(r'<a href="([^"]+)" rel="(prev|next)">', html)
        }
        if page_no > 1:
            assert links["prev"] == f"/console/roster?q=S000&as_of={day}&page={page_no - 1}"
        if page_no < pages:
            assert links["next"] == f"/console/roster?q=S000&as_of={day}&page={page_no + 1}"
        assert ("prev" in links) == (page_no > 1) and ("next" in links) == (page_no < pages)
        seen += listed
    assert sorted(seen) == sorted(office_people)  # each person once over the pages
    assert people_listed(c_get(c, f"/console/roster?as_of={day}&page=99")) == seen[10 * (pages - 1) :]
    assert people_listed(c_get(c, f"/console/roster?as_of={day}&page=x")) == seen[:10]
    strict = c_get(c, f"/console/roster?as_of={day}&tier=strict&state=overdue&alert=red")
    assert 'rel="next"' not in strict or "tier=strict&amp;state=overdue&amp;alert=red" in strict


def test_the_roster_counts_people_and_assessments_apart_and_writes_deadlines_in_words(
    app: ASGIApp, home: Path, office_people: list[str]
) -> None:
    """Issue 21, defects 2 and 3: "在册 215 人 … 已逾期 416" mixed people and assessments; each state now
    says how many people have an assessment in it and how many assessments that is. Deadlines read
    "截止 2024-05-09" / "due by 2024-05-09", and an upcoming window "2024-05-09 起" / "opens 2024-05-09"."""
    store = CaseStore(f"sqlite:///{home / 'cases.db'}")
    try:
        listing = due_list(store, office=OFFICE, as_of=MEETING)
    finally:
        store.close()
    c = client(app, "cw")
    html = c_get(c, f"/console/roster?as_of={MEETING.isoformat()}")
    status = re.search(r'<p class="meta" role="status">(.*?)</p>', html, flags=re.S)
    assert status and f"在册 {listing.count} 人，符合筛选条件 {listing.count} 人" in status.group(1)
    assert listing.counts.get("overdue")
    for state, assessments in listing.counts.items():
        people = sum(any(s.state == state for s in p.stages) for p in listing.persons)
        assert f"{STATE_ZH[state]} {people} 人（{assessments} 项评估）" in status.group(1)
    assert "≤" not in html
    due = [(p, s) for p in listing.persons for s in p.stages if s.state in ("due", "overdue")]
    assert due and all(f"截止 {s.closes}" in html for _, s in due[:10])
    # an upcoming window says when it opens: ten days before a person's mid-term window
    person = next(p for p in listing.persons if p.stages[1].opens - dt.timedelta(days=10) > p.supervision_start)
    opens = person.stages[1].opens
    soon = c_get(c, f"/console/roster?as_of={opens - dt.timedelta(days=10)}&q={person.person_id}")
    assert f"{opens} 起" in soon
    c.get("/console/lang/en", params={"next": "/console/"})
    en = c_get(c, f"/console/roster?as_of={opens - dt.timedelta(days=10)}&q={person.person_id}")
    assert (
        f"opens {opens}" in en
        and "due</span>" in en
        and "by 20" in en
        and "due due" not in en
        and re.search(r"overdue: people \d+, assessments \d+", en)
    )


def test_the_alert_colours_are_explained_on_the_roster_and_the_review(app: ASGIApp) -> None:
    """Issue 21, defect 4: a legend, from the review policy, says what each colour means (a low band can be
    yellow through a rule or a rise; each stage has its cut-offs), and each coloured row of the review says
    which condition gave its colour."""
    sup = client(app, "sup")
    page = c_get(sup, "/console/review")
    r = sup.post("/console/review", data={"csrf": csrf_of(page), "as_of": MEETING.isoformat()})
    shown = c_get(sup, r.headers["location"])
    roster = c_get(sup, f"/console/roster?as_of={MEETING.isoformat()}")
    policy = ReviewPolicy.load()
    for html in (roster, shown):
        assert "预警颜色说明" in html and "按上表顺序判断" in html and "不符合以上任一条件" in html
        assert "风险比上次评估升高3个百分点及以上" in html and "解矫评估：风险最高的30%为中及以上" in html
    rows = list(csvlib.DictReader(io.StringIO(sup.get(r.headers["location"] + "/csv").text.lstrip("\ufeff"))))
    coloured = [row for row in rows if row["alert_code"] != policy.alerts.default.value]
    assert coloured and shown.split("<tbody>")[1].count('class="sub why"') == len(coloured)


def test_review_csv_and_print_view_read_as_the_web_page(app: ASGIApp) -> None:
    """Issue 21, defects 5 and 6: the CSV starts with a BOM (Excel on a Chinese Windows), holds labels in the
    run's language and percentages (codes kept in their own columns); the print view names stages, fills
    its what-moved column or leaves it out, and says a mismatch in the web page's words."""
    sup = client(app, "sup")
    page = c_get(sup, "/console/review")
    run_path = sup.post("/console/review", data={"csrf": csrf_of(page), "as_of": MEETING.isoformat()}).headers[
        "location"
    ]
    csv = sup.get(run_path + "/csv")
    assert csv.content.startswith(b"\xef\xbb\xbf")
    rows = list(csvlib.DictReader(io.StringIO(csv.text.lstrip("\ufeff"))))
    assert rows and list(rows[0])[:4] == ["序号", "人员编号", "评估阶段", "风险概率"]
    stages = {s.value: s.label("zh") for s in Stage}
    colours = {c.value: c.label("zh") for c in Colour}
    for row in rows:
        assert row["评估阶段"] == stages[row["stage_code"]] and row["预警"] == colours[row["alert_code"]]
        assert re.fullmatch(r"\d{1,3}\.\d%", row["风险概率"]), row["风险概率"]
        move = row["mismatch_code"]
        assert row["模型建议调整"] == MISMATCH_ZH.get(move, "")
    assert not re.search(r"\d\.\d{4,}", csv.text)  # no raw floats
    printed = sup.get(run_path + "/print").text
    cells = re.findall(r"<td>([^<]*)</td>", printed)
    assert not set(cells) & set(Stage.codes()) and stages[rows[0]["stage_code"]] in cells
    assert "可降为普管" not in printed and "建议升为严管" not in printed and "<ul></ul>" not in printed
    for move in ("raise", "lower"):
        said = f'<td class="mismatch">{MISMATCH_ZH[move]}</td>'
        assert printed.count(said) == sum(row["mismatch_code"] == move for row in rows)
    headers = re.findall(r"<th>([^<]*)</th>", printed)
    assert "变化因素" not in headers and len(headers) == len(set(headers))


def test_the_sign_in_page_says_a_session_ended_because_its_token_was_revoked_or_it_expired(
    app: ASGIApp, home: Path
) -> None:
    """Issue 21, defect 7: a revoked token (or an expired session) sent the user to sign-in with no word why."""
    new = issue_token(home / "auth.json", role="auditor", user="temp-auditor")
    c = TestClient(app, base_url="https://testserver", follow_redirects=False)
    assert sign_in(c, new).status_code == 303
    assert revoke_tokens(home / "auth.json", user="temp-auditor") == 1
    for _ in range(2):  # the session stays ended, and says why on every visit until a new sign-in
        r = c.get("/console/audit")
        assert r.status_code == 303 and "ended=revoked" in r.headers["location"]
        assert REVOKED_ZH in c_get(c, r.headers["location"])
    posted = c.post("/console/verify", data={"csrf": "x"})
    assert posted.status_code == 401 and REVOKED_ZH in posted.text
    expired = client(app, "aud")
    with sqlite3.connect(home / "console.db") as db:  # every session's time is up
        db.execute("update console_sessions set expires_at = 0 where ended = 0")
    r = expired.get("/console/audit")
    assert r.status_code == 303 and "ended=expired" in r.headers["location"]
    assert "会话已过期" in c_get(expired, r.headers["location"])
    stranger = TestClient(app, base_url="https://testserver", follow_redirects=False)
    r = stranger.get("/console/audit")  # no session at all: nothing ended, nothing to say
    assert "ended=" not in r.headers["location"]
    assert REVOKED_ZH not in c_get(stranger, "/console/login?ended=nonsense")


def test_a_posted_record_does_not_join_the_persons_history_and_the_language_switch_survives_a_refused_form(
    app: ASGIApp, tables: CaseTables, office_people: list[str]
) -> None:
    """From the walk-through: a record posted to /score under the id of a person of the case store stayed out of
    the person's page (their history is what was scored from the stored record); and the language link on a
    page answering a refused form goes back to the form's page, not to the POST address (405)."""
    pid = office_people[14]
    body = requests_from_tables(tables.persons[tables.persons["person_id"] == pid], tables.events, Stage.MIDTERM)[0]
    body["person"]["offence"] = "robbery"  # made up: not what the case store holds
    api = TestClient(app, base_url="https://testserver")
    posted = api.post("/score", json=body, headers={"Authorization": "Bearer cw"})
    assert posted.status_code == 200, posted.text
    cw = client(app, "cw")
    page = c_get(cw, f"/console/person/{pid}")
    assert posted.json()["assessment_id"] not in page
    refused = cw.post(
        f"/console/person/{pid}/propose",
        data={"csrf": csrf_of(page), "to_tier": "ordinary", "reason_code": "other", "reason": "x"},
        headers={"referer": f"https://testserver/console/person/{pid}"},
    )
    assert refused.status_code == 422
    link = found(r'class="lang" href="([^"]+)"', refused.text)
    assert link.endswith(f"next=%2Fconsole%2Fperson%2F{pid}"), link


@pytest.mark.parametrize("value", ["1e308", "-50", "nan"])
def test_an_event_value_out_of_range_is_refused_in_the_callers_language(
    app: ASGIApp, office_people: list[str], value: str
) -> None:
    """From the walk-through: a monthly points score of 1e308 and a negative value were stored."""
    cw = client(app, "cw")
    pid = office_people[15]
    page = c_get(cw, f"/console/person/{pid}")
    r = cw.post(
        f"/console/person/{pid}/event",
        data={"csrf": csrf_of(page), "date": "2024-01-05", "event_type": "monthly_points", "value": value},
    )
    assert r.status_code == 422 and "字段 value" in r.text and "Input should" not in r.text
    assert "2024-01-05" not in c_get(cw, f"/console/person/{pid}").split('id="h-events"')[1].split("<form")[0]
    api = TestClient(app, base_url="https://testserver")
    r = api.post(
        "/cases/event",
        json={"person_id": pid, "date": "2024-01-05", "event_type": "monthly_points", "value": -50},
        headers={"Authorization": "Bearer cw"},
    )
    assert r.status_code in (400, 422) and "value" in r.text


def test_the_person_page_has_a_profile_and_the_tier_over_time(
    app: ASGIApp, home: Path, office_people: list[str]
) -> None:
    """Issue 20: a person profile (offence, age, term, flags) and the tier history as a timeline."""
    cw, sup = client(app, "cw"), client(app, "sup")
    pid, page = scored_proposable(cw, office_people[16:])
    store = _store(home)
    try:
        record = store.person(pid)
    finally:
        store.close()
    assert "城关司法所" in page.split("</h1>")[0]  # the office by its name from the export, not its code
    profile = re.search(r'id="h-profile".*?</section>', page, flags=re.S)
    assert profile and Offence(record["offence"]).label("zh") in profile.group(0)
    assert str(record["supervision_start"]) in profile.group(0) and "岁（" in profile.group(0)
    form = {
        "csrf": csrf_of(page),
        "to_tier": "ordinary",
        "reason_code": "good_conduct",
        "reason": "表现良好，按时报到",
        "assessment_id": first_option(page, "assessment_id"),
    }
    assert cw.post(f"/console/person/{pid}/propose", data=form).status_code == 303
    listing = c_get(sup, "/console/proposals")
    decided = sup.post(
        f"/console/proposals/{pending_of(listing, pid)}/approve", data={"csrf": csrf_of(listing), "comment": "同意"}
    )
    assert decided.status_code == 303
    page = c_get(cw, f"/console/person/{pid}")
    timeline = re.findall(r"<li><time>([^<]+)</time> <strong>([^<]+)</strong> · ([^<·]+)", page)
    assert [(tier, how.strip()) for _, tier, how in timeline] == [("严管", "入矫时"), ("普管", "审批决定")]
    assert timeline[1][0] == dt.date.today().isoformat()


def test_the_auditors_chinese_pages_have_no_english_terms(app: ASGIApp, office_people: list[str]) -> None:
    """From the walk-through: "raw score", "log-odds" and "policy" on the Chinese assessment page, English chain
    names and "both chains" over three on the verify page; and the proposal form no longer files a reason
    code the caseworker did not choose."""
    cw = client(app, "cw")
    _, page = scored_proposable(cw, office_people[17:])
    assert '<option value="" selected disabled>' in page
    assessment_id = first_option(page, "assessment_id")
    aud = client(app, "aud")
    shown = c_get(aud, f"/console/audit/{assessment_id}")
    head = shown.split('id="returned"')[0]  # the page's own words, before the JSON as returned
    assert "raw score" not in head and "policy " not in head and "模型分数" in head
    # the band and the cut-offs it came from, as the answer stored them (the shipped policy states shares)
    assert re.search(r"<dd>[低中高]（中 ≥ [\d.]+%，风险最高的30%；高 ≥ [\d.]+%，风险最高的10%）</dd>", head)
    verified = aud.post("/console/verify", data={"csrf": csrf_of(c_get(aud, "/console/verify"))})
    assert verified.status_code == 200
    assert "管理等级决定" in verified.text and "<td>decisions</td>" not in verified.text


def test_a_forged_record_is_refused_and_shown_to_the_auditor_until_resolved(
    app: ASGIApp, home: Path, office_people: list[str]
) -> None:
    """A forger appends a decision step with the right hash and head (the service stopped or not): the
    auditor's verify page names it, nothing is signed, and the refusal stays on the page (both languages)
    until ``riskctl audit resolve``."""
    from trail_support import rewrite, rows_of

    from serving.audit import RefusalLog

    cw = client(app, "cw")
    pid = office_people[2]
    page = c_get(cw, f"/console/person/{pid}")
    scored = cw.post(f"/console/person/{pid}/score", data={"csrf": csrf_of(page), "stage": "release"})
    assert scored.status_code == 303, scored.text[:300]
    aud = client(app, "aud")
    ok = aud.post("/console/verify", data={"csrf": csrf_of(c_get(aud, "/console/verify"))})
    assert "审计链完整" in ok.text
    url = f"sqlite:///{home / 'audit.db'}"
    assessment = rows_of(url, "assessments")[-1]
    forged = dict(
        step_id=str(uuid.uuid4()),
        decision_id=str(uuid.uuid4()),
        assessment_id=assessment["assessment_id"],
        created_at="2026-01-01T00:00:00+00:00",
        person_key=assessment["person_key"],
        step="approved",
        office=OFFICE,
        from_tier="strict",
        to_tier="ordinary",
        reason_code="other",
        text="",
        actor="sup-li",
    )
    rewrite(url, "decisions", [*rows_of(url, "decisions"), forged])
    stream = (home / "checkpoints" / "checkpoints.jsonl").read_text()
    broken = aud.post("/console/verify", data={"csrf": csrf_of(c_get(aud, "/console/verify"))})
    assert "审计链已损坏" in broken.text and forged["step_id"] in broken.text
    assert "拒绝签名" in broken.text and "链已损坏，未签发检查点" in broken.text
    assert (home / "checkpoints" / "checkpoints.jsonl").read_text() == stream  # nothing signed
    aud.get("/console/lang/en", params={"next": "/console/verify"})
    english = c_get(aud, "/console/verify")
    assert "Signing refused" in english and forged["step_id"] in english
    RefusalLog(home / "checkpoints").resolve(by="auditor", note="forged step removed from a restored copy")
    assert "Signing refused" not in c_get(aud, "/console/verify")


def test_an_event_recorded_on_the_person_page_is_chained_and_shown_to_the_auditor(
    app: ASGIApp, office_people: list[str]
) -> None:
    """design.md, "Tamper evidence, continued": a recorded event is a chained record; the auditor's case
    records page shows who recorded what and when (the person by key only), a refused one is not there."""
    cw = client(app, "cw")
    pid = office_people[4]
    page = c_get(cw, f"/console/person/{pid}")
    done = cw.post(
        f"/console/person/{pid}/event",
        data={"csrf": csrf_of(page), "date": "2024-09-01", "event_type": "police_penalty", "value": ""},
    )
    assert done.status_code == 303
    cw.post(f"/console/person/{pid}/event", data={"csrf": csrf_of(page), "date": "2024-13-45", "event_type": "warning"})
    aud = client(app, "aud")
    records = c_get(aud, "/console/case_records")
    assert records.count("录入事件") == 1 and "2024-09-01 治安管理处罚" in records and "wang" in records
    assert pid not in records  # keyed, never the raw id
    verified = aud.post("/console/verify", data={"csrf": csrf_of(c_get(aud, "/console/verify"))})
    assert "审计链完整" in verified.text and "案件记录" in verified.text
    assert client(app, "cw").get("/console/case_records").status_code == 403
