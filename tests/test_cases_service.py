"""The case endpoints in-process: score by id as by record, review meeting, decisions, roles and offices."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bentoml
import pandas as pd
import pytest
from cases_support import subset
from service_support import ServiceModels, case_home, fresh_home, in_process_service
from starlette.testclient import TestClient

from features.schema import CaseTables
from features.vocab import Stage
from models.tier_policy import TierPolicy
from serving.audit import AuditStore
from serving.cases import CaseStore, ReviewRun, get_review, review_csv, review_html, review_runs, run_review
from serving.scoring import Scorer, load_served, requests_from_tables
from serving.scoring.schemas import ScoreRequest
from serving.settings import get_settings

OFFICE, OTHER = "hexi", "chengguan"
TOKENS = {
    "cw": ("caseworker", "wang", OFFICE),
    "sup": ("supervisor", "li", OFFICE),
    "cw2": ("caseworker", "zhao", OTHER),
    "sup2": ("supervisor", "he", OTHER),
    "aud": ("auditor", "zhou", None),
    "mod": ("modeler", "qian", None),
}
MEETING = dt.date(2023, 6, 1)


def h(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {name}"}


@pytest.fixture(scope="module")
def tables(service_models: ServiceModels) -> CaseTables:
    return subset(service_models[0], 1200)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, tables: CaseTables) -> Path:
    """The module's case store and tokens, made once; each test works on a copy (``home``)."""
    return case_home(tmp_path_factory.mktemp("cases-home"), tables, tokens=TOKENS)


@pytest.fixture()
def home(template: Path, tmp_path: Path) -> Path:
    return fresh_home(template, tmp_path)


@pytest.fixture()
def client(home: Path) -> Iterator[TestClient]:
    with in_process_service(home) as c:
        yield c


def on_roll(tables: CaseTables, office: str, day: dt.date) -> pd.DataFrame:
    """Who is on supervision in ``office`` on ``day`` (the term covers it, not revoked before it)."""
    p, ts = tables.persons, pd.Timestamp(day)
    assert tables.outcomes is not None
    revoked = tables.outcomes.loc[tables.outcomes["revocation_date"] < ts, "person_id"]
    return p[
        (p["office"] == office)
        & (p["supervision_start"] <= ts)
        & (p["supervision_end"] >= ts)
        & ~p["person_id"].isin(revoked)
    ]


def test_score_by_id_gives_the_same_answer_as_posting_the_record(client: TestClient, tables: CaseTables) -> None:
    person = tables.persons[tables.persons["office"] == OFFICE].iloc[[4]]
    for stage in Stage:
        body = requests_from_tables(person, tables.events, stage, lang="en")[0]
        posted = client.post("/score", json=body, headers=h("cw"))
        day = ScoreRequest.model_validate(body).assessment_date  # the stage's date, as posted
        by_id = client.post(
            "/cases/score",
            json={"person_id": body["person"]["person_id"], "stage": stage.value, "lang": "en", "as_of": str(day)},
            headers=h("cw"),
        )
        assert posted.status_code == by_id.status_code == 200, by_id.text
        a, b = posted.json(), by_id.json()
        for key in ("probability", "band", "tier", "reasons", "explanation", "as_of", "events_used"):
            assert a[key] == b[key], key
        assert a["assessment_id"] != b["assessment_id"]


def test_case_routes_by_role(client: TestClient, tables: CaseTables) -> None:
    pid = tables.persons[tables.persons["office"] == OFFICE]["person_id"].iloc[0]
    bodies = {
        "/cases/event": {"person_id": pid, "date": "2020-01-01", "event_type": "report_late", "as_of": "2030-01-01"},
        "/cases/score": {"person_id": pid, "stage": "intake"},
        "/cases/due": {"office": OFFICE, "as_of": "2022-01-01"},
        "/cases/propose": {
            "person_id": pid,
            "to_tier": "ordinary",
            "reason_code": "other",
            "reason": "a test reason",
            "assessment_id": "00000000-0000-0000-0000-000000000000",
        },
        "/cases/approve": {"decision_id": "nope", "comment": "ok"},
        "/cases/reject": {"decision_id": "nope", "comment": "ok"},
        "/cases/review_run": {"run_id": "nope"},
        "/cases/decision_report": {"start": "2020-01-01", "end": "2030-01-01"},
    }
    allowed = {
        "/cases/event": {"cw"},
        "/cases/score": {"cw"},
        "/cases/due": {"cw", "sup"},
        "/cases/propose": {"cw"},
        "/cases/approve": {"sup"},
        "/cases/reject": {"sup"},
        "/cases/review_run": {"cw", "sup"},
        "/cases/decision_report": {"sup", "aud"},
    }
    for route, body in bodies.items():
        for who in ("cw", "sup", "aud", "mod"):
            r = client.post(route, json=body, headers=h(who))
            assert (r.status_code != 403) == (who in allowed[route]), (route, who, r.status_code, r.text)
        assert client.post(route, json=body).status_code == 401


def test_events_and_due_list_over_http(client: TestClient, tables: CaseTables) -> None:
    pid = tables.persons[tables.persons["office"] == OFFICE]["person_id"].iloc[1]
    ok = client.post(
        "/cases/event",
        json={"person_id": pid, "date": "2024-03-01", "event_type": "warning", "as_of": "2024-03-02"},
        headers=h("cw"),
    )
    assert ok.status_code == 200 and ok.json()["recorded_by"] == "wang"
    late = client.post(
        "/cases/event",
        json={"person_id": pid, "date": "2024-03-05", "event_type": "warning", "as_of": "2024-03-02"},
        headers=h("cw"),
    )
    assert late.status_code == 422 and late.json()["detail"][0]["loc"] == ["date"] and pid in late.json()["error"]
    other = client.post(
        "/cases/event", json={"person_id": pid, "date": "2024-03-01", "event_type": "warning"}, headers=h("cw2")
    )
    assert other.status_code == 403 and other.json()["detail"][0]["loc"] == ["person_id"]
    unknown = client.post(
        "/cases/event", json={"person_id": "NOBODY", "date": "2024-03-01", "event_type": "warning"}, headers=h("cw")
    )
    assert unknown.status_code == 404
    due = client.post("/cases/due", json={"office": OFFICE, "as_of": str(MEETING)}, headers=h("sup"))
    assert due.status_code == 200 and due.json()["count"] == len(on_roll(tables, OFFICE, MEETING))
    assert client.post("/cases/due", json={"office": OTHER, "as_of": str(MEETING)}, headers=h("sup")).status_code == 403
    unknown = client.post("/cases/due", json={"office": "atlantis", "as_of": str(MEETING)}, headers=h("aud"))
    assert unknown.status_code == 403  # auditors do not read due lists


def test_review_meeting_what_moved_adds_up_and_runs_are_stored(client: TestClient, tables: CaseTables) -> None:
    first = client.post("/cases/review", json={"office": OFFICE, "as_of": str(MEETING), "lang": "zh"}, headers=h("sup"))
    assert first.status_code == 200, first.text
    later = MEETING + dt.timedelta(days=92)
    second = client.post("/cases/review", json={"office": OFFICE, "as_of": str(later), "lang": "en"}, headers=h("sup"))
    run = second.json()
    assert run["backdated"] is True and run["supersedes"] == []
    assert run["count"] == len(on_roll(tables, OFFICE, later)) and run["count"] > 10
    probs = [r["probability"] for r in run["rows"]]
    assert probs == sorted(probs, reverse=True)
    moved = [r for r in run["rows"] if r["previous_assessment_id"]]
    assert len(moved) > 5
    for r in moved:
        assert math.fsum(p["log_odds"] for p in r["moved"]) == pytest.approx(r["change_log_odds"], abs=1e-9)
        assert math.fsum(p["points"] for p in r["moved"]) == pytest.approx(
            100 * (r["probability"] - r["previous_probability"]), abs=1e-6
        )
    assert any(p["text"] for r in moved for p in r["moved"])
    again = client.post("/cases/review_run", json={"run_id": run["run_id"]}, headers=h("sup"))
    assert again.json() == run
    csv = client.post("/cases/review_run", json={"run_id": run["run_id"], "format": "csv"}, headers=h("sup"))
    assert csv.status_code == 200 and csv.content.startswith(b"\xef\xbb\xbf")  # a BOM: Excel reads UTF-8
    assert csv.text.lstrip("\ufeff").splitlines()[0].startswith("rank,person id,stage,risk")  # the run's language
    assert len(csv.text.splitlines()) == run["count"] + 1
    html = client.post("/cases/review_run", json={"run_id": first.json()["run_id"], "format": "html"}, headers=h("sup"))
    assert html.status_code == 200 and "风险研判分析会名单" in html.text
    assert html.text.count("<tr>") == first.json()["count"] + 1
    assert client.post("/cases/review_run", json={"run_id": run["run_id"]}, headers=h("cw2")).status_code == 403
    assert client.post("/verify", json={}, headers=h("aud")).json()["ok"]


def test_decision_flow_over_http_keeps_the_trail_intact(client: TestClient, tables: CaseTables) -> None:
    pid = tables.persons[tables.persons["office"] == OFFICE]["person_id"].iloc[2]
    a = client.post("/cases/score", json={"person_id": pid, "stage": "midterm"}, headers=h("cw")).json()
    body = {
        "person_id": pid,
        "to_tier": "ordinary",
        "reason_code": "risk_assessment",
        "reason": "中期评估风险低，表现稳定",
        "assessment_id": a["assessment_id"],
    }
    assert client.post("/cases/propose", json={**body, "to_tier": "strict"}, headers=h("cw")).status_code == 409
    assert client.post("/cases/propose", json=body, headers=h("cw2")).status_code == 403
    bad = client.post("/cases/propose", json={**body, "reason_code": "whim"}, headers=h("cw"))
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["reason_code"]
    p = client.post("/cases/propose", json=body, headers=h("cw")).json()
    assert p["status"] == "proposed" and p["reason_label"] == "风险评估结果"
    decide = {"decision_id": p["decision_id"], "comment": "同意"}
    assert client.post("/cases/approve", json=decide, headers=h("sup2")).status_code == 403
    done = client.post("/cases/approve", json=decide, headers=h("sup"))
    assert done.status_code == 200 and done.json()["current_tier"] == "ordinary"
    due = client.post("/cases/due", json={"office": OFFICE, "as_of": str(MEETING)}, headers=h("cw")).json()
    assert {p["person_id"]: p["current_tier"] for p in due["persons"]}.get(pid, "ordinary") == "ordinary"
    report = client.post(
        "/cases/decision_report", json={"start": "2000-01-01", "end": "2100-01-01"}, headers=h("aud")
    ).json()
    assert report["total"]["approved"] >= 1
    verify = client.post("/verify", json={}, headers=h("aud")).json()
    assert verify["ok"] and verify["head"]["decisions"]["length"] >= 2


def test_mismatches_are_flagged_both_ways(service_models: ServiceModels, tables: CaseTables, tmp_path: Path) -> None:
    settings = get_settings()
    served = {s: load_served(bentoml.models.get(f"{settings.model_name(s)}:latest"), s) for s in Stage}
    store = CaseStore(f"sqlite:///{tmp_path / 'cases.db'}")
    store.import_tables(tables)
    audit = AuditStore(f"sqlite:///{tmp_path / 'audit.db'}", secret="3c" * 32)
    roll = on_roll(tables, OFFICE, MEETING)["person_id"].tolist()
    with store.write() as conn:
        # as an approved decision would leave it (written directly: this test is about the review's flags)
        conn.exec_driver_sql("UPDATE tiers SET tier = 'ordinary' WHERE person_id = ?", (roll[0],))
    policy = TierPolicy.load()
    lowered = run_review(store, Scorer(served, policy), audit, office=OFFICE, as_of=MEETING, actor="t", lang="en")
    assert {r.mismatch for r in lowered.rows if r.person_id != roll[0]} >= {"lower"}
    cutoffs = {"medium_from": 1e-9, "high_from": 2e-9}
    everyone_high = policy.model_copy(
        update={"stages": {s: sp.model_copy(update=cutoffs) for s, sp in policy.stages.items()}}
    )
    raised = run_review(store, Scorer(served, everyone_high), audit, office=OFFICE, as_of=MEETING, actor="t")
    flags = {r.person_id: r.mismatch for r in raised.rows}
    assert flags[roll[0]] == "raise" and set(flags.values()) == {"raise", "none"}
    assert all(r.alert == "red" or r.alert == "orange" for r in raised.rows)
    stored = get_review(store, raised.run_id)
    assert stored == raised and review_csv(stored) == review_csv(raised) and "<table>" in review_html(raised)
    assert audit.verify().ok and audit.count() == 2 * len(roll)
    store.close()
    audit.close()


def test_review_command_writes_csv_and_html(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from serving.cli import app

    monkeypatch.setenv("RISK_HOME", str(home))
    out_csv, out_html = tmp_path / "review.csv", tmp_path / "review.html"
    runner = CliRunner()
    done = runner.invoke(
        app,
        [
            "review",
            "--office",
            OFFICE,
            "--as-of",
            str(MEETING),
            "--csv",
            str(out_csv),
            "--html",
            str(out_html),
            "--actor",
            "meeting",
        ],
    )
    assert done.exit_code == 0, done.output
    lines = out_csv.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("\ufeff序号,人员编号,评估阶段,风险概率") and len(lines) > 10
    assert "<table>" in out_html.read_text(encoding="utf-8")
    refused = runner.invoke(app, ["review", "--office", "atlantis", "--as-of", str(MEETING)])
    assert refused.exit_code == 2 and "unknown office" in refused.output


def test_review_runs_are_one_per_office_and_date_and_never_count_as_the_formal_assessment(
    client: TestClient, home: Path
) -> None:
    """Issue 20, defect 7: a rerun supersedes the earlier run (kept readable); review scores leave the due
    list as it was; a backdated run is a supervisor's and says so; a run dated after today is refused."""
    day = MEETING + dt.timedelta(days=30)
    due = client.post("/cases/due", json={"office": OFFICE, "as_of": str(day)}, headers=h("sup")).json()
    first = client.post("/cases/review", json={"office": OFFICE, "as_of": str(day)}, headers=h("sup")).json()
    again = client.post("/cases/review", json={"office": OFFICE, "as_of": str(day)}, headers=h("sup")).json()
    assert again["supersedes"] == [first["run_id"]] and first["backdated"] and again["backdated"]
    after = client.post("/cases/due", json={"office": OFFICE, "as_of": str(day)}, headers=h("sup")).json()
    assert after["counts"] == due["counts"]  # the meeting's scores did not mark anything done
    kept = client.post("/cases/review_run", json={"run_id": first["run_id"]}, headers=h("sup"))
    assert kept.status_code == 200 and kept.json()["run_id"] == first["run_id"]  # superseded, still readable
    store = CaseStore(f"sqlite:///{home / 'cases.db'}")
    try:
        runs = {r["run_id"]: r for r in review_runs(store, office=OFFICE)}
    finally:
        store.close()
    assert runs[first["run_id"]]["superseded_by"] == again["run_id"] and runs[again["run_id"]]["superseded_by"] is None
    by_cw = client.post("/cases/review", json={"office": OFFICE, "as_of": str(day)}, headers=h("cw"))
    assert by_cw.status_code == 403 and "仅司法所负责人" in by_cw.text
    future = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    r = client.post("/cases/review", json={"office": OFFICE, "as_of": future, "lang": "en"}, headers=h("sup"))
    assert r.status_code == 422 and "after today" in r.json()["error"]


def test_the_alert_colour_depends_on_rules_rises_and_each_stages_cut_offs_and_says_why() -> None:
    """Issue 21, defect 4: "8.4% shows blue where 8.3% shows yellow" is the policy at work: a low band is
    yellow through a mandatory rule or a rise of 3 points, and the bands' cut-offs differ by stage. Each
    coloured row says which condition gave its colour; the legend says them all, from the policy."""
    from features.vocab import Stage
    from models.tier_policy import Band
    from serving.cases import ReviewPolicy, ReviewRun

    shipped = TierPolicy.load()
    probabilities = {Stage.INTAKE: (0.10, 0.25), Stage.MIDTERM: (0.10, 0.25), Stage.RELEASE: (0.15, 0.35)}
    policy = ReviewPolicy.load()
    tiers = shipped.model_copy(  # cut-offs written as probabilities: the same on any model
        update={
            "stages": {
                s: sp.model_copy(update=dict(zip(("medium_from", "high_from"), probabilities[s], strict=True)))
                for s, sp in shipped.stages.items()
            }
        }
    )

    def row(p: float, *, stage: str = "midterm", rule_id: str | None = None, before: float | None = None) -> Any:
        """A review row (its colour by the policy) as a stored run holds it."""
        band = tiers.band(stage, p).value
        rise = None if before is None else p - before
        colour = policy.alert(band=Band(band), rule_id=rule_id, rise=rise).value
        fields = dict(
            person_id="p",
            stage=stage,
            assessment_id="a",
            probability=p,
            band=band,
            alert=colour,
            alert_label="",
            tier_by_risk="ordinary",
            effective_tier="ordinary",
            rule_id=rule_id,
            current_tier="ordinary",
            mismatch="none",
            previous_assessment_id=None,
            previous_as_of=None,
            previous_probability=before,
            change_log_odds=None,
            moved=[],
            summary="",
        )
        run = ReviewRun.model_validate(
            dict(
                run_id="r",
                office=OFFICE,
                as_of=MEETING,
                created_at="",
                actor="t",
                lang="zh",
                policy_version=policy.version,
                count=1,
                counts={},
                rows=[fields],
            )
        )
        return run.rows[0]

    blue, by_rule, by_rise = row(0.084), row(0.083, rule_id="sanctions"), row(0.083, before=0.05)
    assert (blue.alert, by_rule.alert, by_rise.alert) == ("blue", "yellow", "yellow")
    assert policy.alert_reason(blue, policy.version, "zh", tiers) is None  # the default colour: nothing held
    rule_text = next(r.zh for r in tiers.stage(Stage.MIDTERM).rules if r.id == "sanctions")
    assert policy.alert_reason(by_rule, policy.version, "zh", tiers) == f"适用强制规则（{rule_text}）"
    assert policy.alert_reason(by_rise, policy.version, "en", tiers) == (
        "risk up 3.3 points since the previous assessment (3 or more)"
    )
    assert policy.alert_reason(by_rise, "an older version", "en", tiers) is None  # its conditions may differ
    # the same 12% is medium (yellow) at mid-term and low (blue) at release: each stage has its cut-offs
    assert (row(0.12).alert, row(0.12, stage="release").alert) == ("yellow", "blue")
    legend = {c.value: words for c, words in policy.legend("zh", tiers)}
    assert list(legend) == ["red", "orange", "yellow", "blue"]
    assert "风险比上次评估升高3个百分点及以上" in legend["yellow"] and legend["blue"] == ["不符合以上任一条件"]
    notes = " ".join(policy.legend_notes("zh", tiers))
    assert "解矫评估：15% 及以上为中，35% 及以上为高" in notes and "不只取决于概率" in notes
    assert "相对分界" not in notes
    # the shipped policy states shares: the legend says so, and that each stage's model turns them into probabilities
    notes = " ".join(policy.legend_notes("zh", shipped))
    assert "入矫评估、中期评估、解矫评估：风险最高的30%为中及以上，风险最高的10%为高" in notes
    assert "相对分界" in notes and "同一概率在不同阶段可能属于不同风险等级" in notes
    assert "medium from the riskiest 30%, high from the riskiest 10%" in " ".join(policy.legend_notes("en", shipped))


def test_a_backdated_run_says_so_on_paper_and_exports_follow_the_readers_language(client: TestClient) -> None:
    """From the walk-through: the print view and the CSV of a backdated review looked like a meeting held on
    its date, and were always in the run's language."""
    day = MEETING + dt.timedelta(days=61)
    run = client.post("/cases/review", json={"office": OFFICE, "as_of": str(day), "lang": "zh"}, headers=h("sup"))
    stored = ReviewRun.model_validate(run.json())
    assert stored.backdated
    zh_csv, en_csv = review_csv(stored), review_csv(stored, "en")
    assert "补做的研判" in zh_csv.splitlines()[1] and "A backdated review" in en_csv.splitlines()[1]
    assert "研判日期" not in en_csv.splitlines()[0]
    assert "补做的研判" in review_html(stored) and "A backdated review" in review_html(stored, lang="en")
