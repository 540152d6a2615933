"""``riskctl monitor`` and ``riskctl shadow`` on assessments stored by the scoring path (serving.monitoring)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from pathlib import Path

import bentoml
import numpy as np
import pandas as pd
import pytest
from service_support import SECRET, ServiceModels, write_auth
from typer.testing import CliRunner

from features.schema import CaseTables
from features.vocab import Stage
from models.tier_policy import TierPolicy
from serving.audit import AuditRecord, AuditStore
from serving.cases import ReviewPolicy
from serving.cli import app
from serving.monitoring import ShadowError, shadow_markdown, shadow_replay
from serving.scoring import Scorer, ServedModel, load_served, requests_from_tables, save_served
from serving.scoring.schemas import ScoreRequest
from serving.settings import get_settings

TODAY = dt.date.today()
PERIOD = ["--since", (TODAY - dt.timedelta(days=1)).isoformat()]


def _champion() -> ServedModel:
    return load_served(bentoml.models.get(f"{get_settings().model_name(Stage.MIDTERM)}:latest"), Stage.MIDTERM)


def _store_scored(home: Path, tables: CaseTables, *, persons: int, decided: int = 0) -> AuditStore:
    """Score ``persons`` mid-term requests with the champion and store them as the service does."""
    store = AuditStore(f"sqlite:///{home / 'audit.db'}", secret=SECRET)
    served = _champion()
    scorer = Scorer({Stage.MIDTERM: served}, TierPolicy.load())
    from features.labels import LabelStatus, label_assessments
    from features.pipeline import assessment_dates

    when = assessment_dates(tables.persons, Stage.MIDTERM)
    assert tables.outcomes is not None
    status = label_assessments(when, tables.outcomes, horizon_months=12)["status"]
    # assessed by today, and still under supervision (nobody revoked or re-offended before the assessment date
    # is assessed, nor in the training rows)
    due = (when["as_of"].dt.date <= TODAY) & status.isin([LabelStatus.LABELLED, LabelStatus.CENSORED])
    chosen = tables.persons[due.to_numpy()].head(persons)
    assert len(chosen) == persons
    bodies = requests_from_tables(chosen, tables.events, Stage.MIDTERM, lang="en")
    scored = scorer.score([ScoreRequest.model_validate(b) for b in bodies])
    records = store.append_many([s.audit_fields("caseworker-user") for s in scored])
    for record, s in zip(records[:decided], scored[:decided], strict=True):
        store.add_decision_step(
            decision_id=str(uuid.uuid4()),
            step="proposed",
            assessment_id=record.assessment_id,
            person_id=s.assessment.person_id,
            office="hexi",
            from_tier="ordinary",
            to_tier="strict",
            reason_code="other",
            text="seen at the visit",
            actor="caseworker-user",
        )
    return store


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service_models: ServiceModels) -> Path:
    monkeypatch.setenv("RISK_HOME", str(tmp_path))
    monkeypatch.setenv("RISK_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    write_auth(tmp_path)
    return tmp_path


def _planted(tables: CaseTables) -> CaseTables:
    """Three more missed reports for everybody in the fortnight before the mid-term assessment."""
    from features.pipeline import assessment_dates

    when = assessment_dates(tables.persons, Stage.MIDTERM)
    extra = pd.concat(
        [
            pd.DataFrame({"person_id": when["person_id"], "date": when["as_of"] - pd.Timedelta(days=d)})
            for d in (3, 8, 13)
        ]
    ).assign(event_type="report_missed", value=np.nan)
    return dataclasses.replace(tables, events=pd.concat([tables.events, extra], ignore_index=True))


def test_the_store_iterates_a_period_in_batches_oldest_first(home: Path, service_models: ServiceModels) -> None:
    store = _store_scored(home, service_models[0], persons=45)
    every = list(store.iter_assessments(batch=7))
    assert [r.seq for r in every] == list(range(1, 46))
    assert [r.assessment_id for r in every] == [r.assessment_id for r in reversed(store.recent(limit=100))]
    assert list(store.iter_assessments(stage="intake")) == []
    assert list(store.iter_assessments(until=TODAY.isoformat())) == []
    assert len(list(store.iter_assessments(since=TODAY.isoformat(), batch=1000))) == 45
    with pytest.raises(ValueError, match="batch"):
        next(store.iter_assessments(batch=0))


@pytest.mark.slow  # MLflow, a second model or the in-process service: seconds each
def test_monitor_passes_a_period_like_the_training_rows_and_logs_it(home: Path, service_models: ServiceModels) -> None:
    _store_scored(home, service_models[0], persons=900, decided=20).close()
    result = CliRunner().invoke(app, ["monitor", "--stage", "midterm", *PERIOD, "--out", str(home / "m")])
    assert result.exit_code == 0, result.output
    (folder,) = (home / "m").iterdir()
    record = json.loads((folder / "monitor.json").read_text())
    assert record["rows"] == 900 and record["judged"] and record["crossed"] == []
    checks = {c["name"]: c for c in record["checks"]}
    assert checks["decision_rate"]["value"] == pytest.approx(20 / 900)
    assert {"band=high", "tier_by_risk=strict", "score", "estimated_roc_auc", "age"} <= set(checks)
    assert "data:image/png;base64," in (folder / "monitor.html").read_text()
    import mlflow

    runs = mlflow.search_runs(experiment_names=["reoffence-monitoring"], output_format="list")
    assert len(runs) == 1 and runs[0].data.tags["crossed"] == "none"
    assert runs[0].data.metrics["rows"] == 900


def test_monitor_flags_a_planted_shift_and_exits_3(home: Path, service_models: ServiceModels) -> None:
    _store_scored(home, _planted(service_models[0]), persons=900).close()
    result = CliRunner().invoke(
        app, ["monitor", "--stage", "midterm", *PERIOD, "--out", str(home / "m"), "--no-mlflow"]
    )
    assert result.exit_code == 3, result.output
    (folder,) = (home / "m").iterdir()
    crossed = set(json.loads((folder / "monitor.json").read_text())["crossed"])
    assert {"report_missed_30d", "report_missed_term"} <= crossed
    assert not {"age", "offence", "prior_convictions", "sentence_months"} & crossed


def test_monitor_refuses_a_period_with_nothing_stored_and_a_model_without_a_profile(
    home: Path, service_models: ServiceModels
) -> None:
    result = CliRunner().invoke(app, ["monitor", "--stage", "midterm", *PERIOD, "--no-mlflow"])
    assert result.exit_code == 2 and "no midterm assessment stored" in result.output
    tables, fits = service_models
    old = fits[Stage.MIDTERM].model
    bare = type(old).__new__(type(old))
    bare.__dict__.update({k: v for k, v in old.__dict__.items() if k != "reference_profile_"})
    save_served(get_settings(), Stage.MIDTERM, bare, version="8")
    try:
        _store_scored(home, tables, persons=10).close()
        result = CliRunner().invoke(app, ["monitor", "--stage", "midterm", *PERIOD, "--no-mlflow"])
        assert result.exit_code == 2
        assert "version 8" in result.output and "retrain" in result.output
    finally:
        bentoml.models.delete(str(bentoml.models.get(f"{get_settings().model_name(Stage.MIDTERM)}:latest").tag))
    assert _champion().version == "7"


@pytest.mark.parametrize("path", ["--no-validate", "--validate"])
def test_shadow_replay_with_the_champion_changes_nothing(home: Path, service_models: ServiceModels, path: str) -> None:
    _store_scored(home, service_models[0], persons=250).close()
    tag = f"bento:{get_settings().model_name(Stage.MIDTERM)}:latest"
    result = CliRunner().invoke(
        app, ["shadow", "--candidate", tag, *PERIOD, "--out", str(home / "s"), "--workers", "1", path]
    )
    assert result.exit_code == 0, result.output
    (folder,) = (home / "s").iterdir()
    record = json.loads((folder / "shadow.json").read_text())
    assert record["rows"] == 250
    assert record["changed"] == {"band": 0, "tier_by_risk": 0, "tier": 0, "alert": 0}
    assert record["score_shift"]["mean_abs"] == 0.0 and record["tier_changes"] == []
    assert all(r["moved"] == 0 and r["mean_points"] == 0.0 for r in record["reasons"])


def test_shadow_replay_without_validating_stored_requests_again_gives_the_validated_report(
    home: Path, service_models: ServiceModels
) -> None:
    """The replay's fast path (stored requests trusted, brief answers) and the validated path (every stored
    request a ScoreRequest again, full answers) give the same report, to the last digit, with another model."""
    tables, fits = service_models
    store = _store_scored(home, tables, persons=200)
    fit = fits[Stage.MIDTERM]
    other = fit.baseline if _champion().model.kind == "lightgbm" else fit.model
    candidate = ServedModel(Stage.MIDTERM, other, "reoffence-midterm", "8", "test", {})
    scorer = Scorer({Stage.MIDTERM: candidate}, TierPolicy.load())
    run = dict(store=store, candidate=candidate, scorer=scorer, review=ReviewPolicy.load(), since=PERIOD[1])
    fast = shadow_replay(**run, until="9999")  # type: ignore[arg-type]
    validated = shadow_replay(**run, until="9999", validate=True)  # type: ignore[arg-type]
    assert fast.rows == validated.rows == 200 and fast.changed("band") > 0 and fast.reasons_moved
    assert dataclasses.asdict(fast) == dataclasses.asdict(validated)
    assert shadow_markdown(fast) == shadow_markdown(validated)


def test_shadow_replay_names_a_stored_request_the_schema_now_refuses(home: Path, service_models: ServiceModels) -> None:
    store = _store_scored(home, service_models[0], persons=3)
    records = list(store.iter_assessments())
    body = records[1].request
    body["events"][0]["event_type"] = "telegram_received"  # a category since taken out of the vocabulary
    changed = dataclasses.replace(records[1], request_json=json.dumps(body))

    class Trail:
        def iter_assessments(self, **_: object) -> list[AuditRecord]:
            return [records[0], changed, records[2]]

    served = _champion()
    scorer = Scorer({Stage.MIDTERM: served}, TierPolicy.load())
    for validate in (False, True):
        with pytest.raises(ShadowError, match=rf"assessment {changed.assessment_id}: .*field events\.0\.event_type"):
            shadow_replay(
                Trail(),  # type: ignore[arg-type]
                served,
                scorer=scorer,
                review=ReviewPolicy.load(),
                since=PERIOD[1],
                until="9999",
                validate=validate,
            )


@pytest.mark.slow  # MLflow, a second model or the in-process service: seconds each
def test_shadow_replay_with_another_model_counts_each_change_and_names_the_persons_by_key(
    home: Path, service_models: ServiceModels
) -> None:
    tables, fits = service_models
    store = _store_scored(home, tables, persons=300)
    fit = fits[Stage.MIDTERM]
    other = fit.baseline if _champion().model.kind == "lightgbm" else fit.model
    candidate = ServedModel(Stage.MIDTERM, other, "reoffence-midterm", "8", "test", {})
    scorer = Scorer({Stage.MIDTERM: candidate}, TierPolicy.load())
    report = shadow_replay(store, candidate, scorer=scorer, review=ReviewPolicy.load(), since=PERIOD[1], until="9999")
    stored = {r.assessment_id: r for r in store.iter_assessments()}
    # the same answers computed directly, record by record
    direct = scorer.score([ScoreRequest.model_validate(r.request) for r in stored.values()])
    bands = sum(
        r.response["band"]["code"] != d.assessment.band.code for r, d in zip(stored.values(), direct, strict=True)
    )
    tiers = [
        (r.person_key, r.response["tier"]["tier"]["code"], d.assessment.tier.tier.code)
        for r, d in zip(stored.values(), direct, strict=True)
        if r.response["tier"]["tier"]["code"] != d.assessment.tier.tier.code
    ]
    assert report.rows == 300 and report.changed("band") == bands > 0
    forked = shadow_replay(
        store, candidate, scorer=scorer, review=ReviewPolicy.load(), since=PERIOD[1], until="9999", workers=2
    )
    assert (forked.changes, forked.shift, forked.persons) == (report.changes, report.shift, report.persons)
    assert report.persons == tiers
    assert sum(report.direction("band").values()) == bands
    shift = [d.assessment.probability - r.response["probability"] for r, d in zip(stored.values(), direct, strict=True)]
    assert report.score_shift()["mean"] == pytest.approx(float(np.mean(shift)))
    assert all(len(key) == 64 for key, _, _ in report.persons)  # keyed ids, never a raw person id


def test_revalidation_through_the_store_equals_the_training_labels_of_the_same_persons(
    home: Path, service_models: ServiceModels
) -> None:
    """With every outcome known (a late as-of date), the matured formal assessments are the persons the training
    label code labels, with the same labels; AUC and Brier are those of a direct evaluation of those rows. Review
    scores are apart, approved decisions feed the override analysis."""
    from sklearn.metrics import brier_score_loss, roc_auc_score

    from features.labels import make_stage_frame
    from serving.monitoring import revalidate_stored

    tables, _ = service_models
    store = _store_scored(home, tables, persons=600, decided=30)
    records = list(store.iter_assessments())
    for r in records[:30]:  # approve the proposals: a raise from ordinary to strict
        (step,) = store.steps_beside([r.assessment_id])[r.assessment_id]
        store.add_decision_step(
            decision_id=step.decision_id,
            step="approved",
            assessment_id=r.assessment_id,
            person_id="unused",
            office="hexi",
            from_tier="ordinary",
            to_tier="strict",
            reason_code="other",
            text="agreed",
            actor="supervisor-user",
        )
    from features.labels import AGE_BAND_LABELS, AGE_BANDS
    from serving.monitoring import stored_assessments

    rows, _ = stored_assessments(store, until=None, review_ids=set())
    ages = [r.explanation["features"]["age"] for r in records]  # the age the model saw
    bands = pd.cut(np.array(ages, dtype=float), AGE_BANDS, right=False, labels=AGE_BAND_LABELS).astype(str)
    assert rows["age_band"].tolist() == list(bands)
    review_ids = {r.assessment_id for r in records[-50:]}
    assert tables.outcomes is not None
    report = revalidate_stored(store, tables.outcomes, as_of=dt.date(2040, 1, 1), review_ids=review_ids)
    frame = make_stage_frame(tables, Stage.MIDTERM)
    label = dict(zip(frame.meta["person_id"].astype(str).map(store.person_key), frame.y, strict=True))
    formal = [r for r in records if r.assessment_id not in review_ids and r.person_key in label]
    y = np.array([label[r.person_key] for r in formal])
    p = np.array([r.response["probability"] for r in formal])
    (perf,) = report.performance.itertuples(index=False)
    assert (perf.stage, perf.model_version, perf.n) == ("midterm", "7", len(formal))
    assert perf.roc_auc == pytest.approx(roc_auc_score(y, p), rel=1e-12)
    assert perf.brier == pytest.approx(brier_score_loss(y, p), rel=1e-12)
    assert report.review["n"].sum() == sum(r.person_key in label for r in records[-50:])
    counts = report.counts.set_index("kind")
    # the stored persons the training code censors (follow-up shorter than the horizon) are the immature ones
    censored = [r for r in records if r.assessment_id not in review_ids and r.person_key not in label]
    assert counts.loc["formal", "immature"] == len(censored) > 0
    assert counts.loc["formal", "matured"] == len(formal)
    overrides = report.overrides.set_index("override")
    raised = sum(
        r.response["tier"]["tier_by_risk"]["code"] == "ordinary" for r in records[:30] if r.person_key in label
    )
    assert overrides.loc["raised", "n"] == raised


@pytest.mark.slow  # MLflow, a second model or the in-process service: seconds each
def test_riskctl_revalidate_writes_the_report_with_outcomes_from_a_folder(
    home: Path, service_models: ServiceModels
) -> None:
    tables, _ = service_models
    _store_scored(home, tables, persons=300).close()
    tables.write(home / "tables")
    result = CliRunner().invoke(
        app, ["revalidate", "--as-of", "2040-01-01", "--outcomes", str(home / "tables"), "--no-mlflow"]
    )
    assert result.exit_code == 0, result.output
    folder = home / "revalidation" / "2040-01-01"
    record = json.loads((folder / "revalidation.json").read_text())
    assert record["performance"][0]["stage"] == "midterm" and record["performance"][0]["n"] > 200
    assert "Override analysis" in (folder / "revalidation.md").read_text()
    empty = CliRunner().invoke(app, ["revalidate", "--as-of", "2040-01-01", "--no-mlflow"])
    assert empty.exit_code == 2 and "no outcomes" in empty.output


@pytest.mark.slow  # MLflow, a second model or the in-process service: seconds each
def test_the_auditor_reads_the_revalidation_reports_in_the_console(home: Path, service_models: ServiceModels) -> None:
    import re

    from service_support import in_process_service, token
    from starlette.testclient import TestClient

    from evaluation.revalidation import revalidate, write_report
    from serving.monitoring import revalidation_dir

    tables, _ = service_models
    assert tables.outcomes is not None
    store = _store_scored(home, tables, persons=300)
    from serving.monitoring import keyed_outcomes, stored_assessments

    rows, _ = stored_assessments(store, until=None, review_ids=set())
    report = revalidate(
        rows, keyed_outcomes(store, tables.outcomes), as_of=dt.date(2040, 1, 1), horizons={"midterm": 12.0}
    )
    write_report(report, revalidation_dir(get_settings()) / "2040-01-01")
    store.close()
    with in_process_service(home, base_url="https://testserver") as api:
        c = TestClient(api.app, base_url="https://testserver", follow_redirects=False)
        page = c.get("/console/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        signed = c.post("/console/login", data={"csrf": csrf.group(1), "token": token("auditor"), "next": "/console/"})
        assert signed.status_code == 303
        shown = c.get("/console/revalidation?lang=en")
        assert shown.status_code == 200
        n = int(report.performance["n"].iloc[0])
        assert "2040-01-01" in shown.text and f"{n:,}" in shown.text
        assert "revalidation" in c.get("/console/audit").text  # the auditor's menu links it
        assert c.get("/console/revalidation?as_of=2039-01-01").status_code == 404
        assert c.get("/console/revalidation?as_of=nonsense").status_code == 200  # named, not guessed


def test_metrics_count_answers_by_stage_model_band_and_tier_and_decisions_by_direction(
    home: Path, service_models: ServiceModels
) -> None:
    from prometheus_client import REGISTRY
    from service_support import headers, in_process_service

    from serving.cases import DecisionOut
    from serving.monitoring import observe_decision

    tables, _ = service_models
    bodies = requests_from_tables(tables.persons.head(40), tables.events, Stage.MIDTERM, lang="en")
    bodies = [b for b in bodies if ScoreRequest.model_validate(b).assessment_date <= TODAY][:6]

    def count(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    with in_process_service(home) as client:
        answers = [client.post("/score", json=b, headers=headers("caseworker")).json() for b in bodies]
    assert len(answers) == 6 and all("band" in a for a in answers)
    for band in {a["band"]["code"] for a in answers}:
        mine = [a for a in answers if a["band"]["code"] == band]
        labels = {
            "stage": "midterm",
            "model_version": "7",
            "band": band,
            "tier": mine[0]["tier"]["tier"]["code"],
            "tier_by_risk": mine[0]["tier"]["tier_by_risk"]["code"],
        }
        assert count("risk_assessments_total", **labels) >= sum(
            a["tier"]["tier"]["code"] == labels["tier"] for a in mine
        )
    before = count("risk_probability_count", stage="midterm", model_version="7")
    assert before >= 6
    decision = DecisionOut(
        decision_id=str(uuid.uuid4()),
        person_id="S1",
        office="hexi",
        assessment_id=str(uuid.uuid4()),
        from_tier="ordinary",
        to_tier="strict",
        tier_by_risk="ordinary",
        reason_code="other",
        reason_label="other",
        reason="seen at the visit",
        status="approved",
        proposed_by="wang",
        proposed_at="2026-12-01T10:00:00",
        current_tier="strict",
    )
    labels = {"step": "approved", "direction": "raise", "departs": "yes", "reason_code": "other"}
    was = count("risk_decisions_total", **labels)
    observe_decision(decision)
    assert count("risk_decisions_total", **labels) == was + 1


@pytest.mark.slow  # MLflow, a second model or the in-process service: seconds each
def test_models_history_says_which_version_served_from_when_to_when(
    home: Path, service_models: ServiceModels, tmp_path: Path
) -> None:
    from serving.monitoring import served_history

    tables, fits = service_models
    store = _store_scored(home, tables, persons=20)
    save_served(get_settings(), Stage.MIDTERM, fits[Stage.MIDTERM].model, version="8")
    try:
        _store_scored(home, tables, persons=5).close()  # the same store, now answered by version 8
    finally:
        bentoml.models.delete(str(bentoml.models.get(f"{get_settings().model_name(Stage.MIDTERM)}:latest").tag))
    spans = served_history(store)
    assert [(s.model_version, s.assessments) for s in spans] == [("7", 20), ("8", 5)]
    assert spans[0].first <= spans[0].last <= spans[1].first <= spans[1].last
    result = CliRunner().invoke(app, ["models", "history"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("midterm:")]
    assert "version 7 served from" in lines[0] and "(20 assessments)" in lines[0]
    assert "version 8 served from" in lines[1] and "(5 assessments)" in lines[1]
    assert "registry not read" in result.output or "registered" in result.output


def test_promote_can_require_a_shadow_report_within_its_limits(home: Path) -> None:
    def report(**fields: object) -> Path:
        record = {
            "stage": "midterm",
            "candidate": "reoffence-midterm version 8",
            "within_limits": True,
            "problems": [],
            **fields,
        }
        path = home / f"shadow-{uuid.uuid4().hex}.json"
        path.write_text(json.dumps(record))
        return path

    cases = [
        (report(within_limits=False, problems=["12.0% of tiers change, more than 10%"]), "12.0% of tiers change"),
        (report(candidate="reoffence-midterm version 7"), "not midterm version 8"),
        (report(stage="intake"), "not midterm version 8"),
    ]
    for path, said in cases:
        args = ["promote", "--stage", "midterm", "--version", "8", "--shadow-report", str(path)]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2 and said in result.output, result.output
    assert not (home / "mlflow.db").exists()  # refused before the registry was read: nothing promoted
    result = CliRunner().invoke(app, ["promote", "--stage", "midterm", "--shadow-report", str(report())])
    assert result.exit_code == 2 and "--version" in result.output
    # within its limits, this version: the shadow check passes and the gate goes on to the registry
    args = ["promote", "--stage", "midterm", "--version", "8", "--shadow-report", str(report())]
    result = CliRunner().invoke(app, args)
    assert "--shadow-report" not in result.output and (home / "mlflow.db").exists()
