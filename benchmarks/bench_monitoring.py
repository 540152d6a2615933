"""Benchmark of the monitor, revalidation and shadow replay (issue 25's targets):
``python benchmarks/bench_monitoring.py --assessments 100000``.

Trains a small mid-term model on a 10,000-person synthetic cohort into a temporary BentoML store, scores the
mid-term requests of a second cohort (``--persons``) with it and stores them in a fresh SQLite audit store as
the service does, each request ``--assessments / --persons`` times (a new assessment id each time; the same
person assessed again), with a tier decision proposed beside one in twenty. Then it times, in a temporary
folder:

- the monitor over every stored assessment (read, profile comparison, checks; the HTML report written);
- revalidation of every stored assessment on the cohort's outcomes (reading, maturity, the tables with group
  calibration's bootstrap);
- shadow replay of ``--replay`` stored requests through a candidate (the baseline logistic model), as
  assessments per second: the replay as it runs (stored requests trusted, brief answers) and, side by side in
  the same run, the validated path it replaced (every stored request validated again as a ``ScoreRequest``,
  full answers: ``shadow_replay(validate=True)``), the two timed in turn in each repeat; their reports must be
  equal.

Each is run ``--repeat`` times and the median is printed. Figures are wall-clock seconds on a shared 2-core
machine: compare runs side by side. ``--parts shadow`` times the replay alone (the store is still built).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
SECRET = "cd" * 32


def _timed(fn: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[float, T]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def _median(repeat: int, fn: Callable[[], T]) -> tuple[float, T]:
    times, out = [], None
    for _ in range(repeat):
        seconds, out = _timed(fn)
        times.append(seconds)
    assert out is not None
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark in a temporary folder (removed at the end: the stored assessments take a gigabyte)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assessments", type=int, default=100_000)
    parser.add_argument("--persons", type=int, default=20_000, help="distinct persons scored (then repeated)")
    parser.add_argument("--replay", type=int, default=20_000, help="stored requests replayed through a candidate")
    parser.add_argument("--trees", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="replay processes (riskctl shadow --workers)")
    parser.add_argument(
        "--parts", default="monitor,revalidate,shadow", help="what to time, comma-separated (default: all three)"
    )
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    if not parts or not parts <= {"monitor", "revalidate", "shadow"}:
        parser.error(f"--parts: choose among monitor, revalidate, shadow; got {args.parts!r}")
    args.parts = parts
    logging.basicConfig(level=logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="monitoring-bench-"))
    os.environ.setdefault("BENTOML_HOME", str(work / "bentoml"))  # before bentoml is imported
    try:
        _run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(args: argparse.Namespace, work: Path) -> None:
    import bentoml
    import numpy as np

    from evaluation.monitoring import MonitorConfig, write_report
    from features.labels import LabelStatus, label_assessments, make_stage_frame
    from features.pipeline import assessment_dates
    from features.synthetic import CohortConfig, generate_cohort
    from features.vocab import Stage
    from models.tier_policy import TierPolicy
    from serving.audit import AuditStore
    from serving.cases import ReviewPolicy
    from serving.monitoring import monitor_period, revalidate_stored
    from serving.scoring import Scorer, load_served, requests_from_tables, save_served
    from serving.scoring.schemas import ScoreRequest
    from serving.settings import get_settings
    from training.config import TrainConfig
    from training.fit import fit_stage

    out = sys.stdout.write
    out(f"monitoring benchmark: {args.assessments:,} stored assessments, work folder {work}\n")
    train = generate_cohort(CohortConfig(persons=10_000, seed=99))
    config = TrainConfig.load().override(search={"budget": 1}, booster={"max_rounds": args.trees})
    fit = fit_stage(make_stage_frame(train, Stage.MIDTERM), config=config, seed=0, temporal=False)
    settings = get_settings()
    save_served(settings, Stage.MIDTERM, fit.model, version="bench", metadata={})
    served = load_served(bentoml.models.get(f"{settings.model_name(Stage.MIDTERM)}:latest"), Stage.MIDTERM)
    tiers, review = TierPolicy.load(), ReviewPolicy.load()
    scorer = Scorer({Stage.MIDTERM: served}, tiers)

    cohort = generate_cohort(CohortConfig(persons=args.persons, seed=7))
    assert cohort.outcomes is not None
    when = assessment_dates(cohort.persons, Stage.MIDTERM)
    status = label_assessments(when, cohort.outcomes, horizon_months=12)["status"]
    keep = (when["as_of"].dt.date <= dt.date.today()) & status.isin([LabelStatus.LABELLED, LabelStatus.CENSORED])
    bodies = requests_from_tables(cohort.persons[keep.to_numpy()], cohort.events, Stage.MIDTERM, lang="zh")
    seconds, scored = _timed(lambda: scorer.score([ScoreRequest.model_validate(b) for b in bodies]))
    out(f"scored {len(scored):,} distinct requests in {seconds:.1f} s\n")
    store = AuditStore(f"sqlite:///{work / 'audit.db'}", secret=SECRET)
    fields = [s.audit_fields("bench") for s in scored]
    t0, stored = time.perf_counter(), 0
    rng = np.random.default_rng(0)
    while stored < args.assessments:
        batch = []
        start = stored % len(fields)
        for f in fields[start : start + min(1000, args.assessments - stored)]:
            new = str(uuid.uuid4())
            batch.append({**f, "assessment_id": new, "response": {**f["response"], "assessment_id": new}})
        records = store.append_many(batch)
        for record, f in zip(records, batch, strict=True):
            if rng.random() < 0.05:
                store.add_decision_step(
                    decision_id=str(uuid.uuid4()),
                    step="proposed",
                    assessment_id=record.assessment_id,
                    person_id=str(f["person_id"]),
                    office="bench",
                    from_tier="ordinary",
                    to_tier="strict",
                    reason_code="other",
                    text="bench",
                    actor="bench",
                )
        stored += len(batch)
    out(f"stored {stored:,} assessments in {time.perf_counter() - t0:.0f} s (set-up, not a target)\n")
    since, until = dt.date.today().isoformat(), (dt.date.today() + dt.timedelta(days=1)).isoformat()
    profile_record = served.model.reference_profile
    assert profile_record is not None
    from evaluation.monitoring import ReferenceProfile

    profile = ReferenceProfile.from_record(profile_record)

    def run_monitor() -> Any:
        reports = monitor_period(
            store,
            stage=Stage.MIDTERM,
            since=since,
            until=until,
            profiles=lambda name, version: profile,
            config=MonitorConfig.load(),
            tiers=tiers,
            review=review,
        )
        for report in reports:
            write_report(report, work / "monitor")
        return reports

    if "monitor" in args.parts:
        seconds, reports = _median(args.repeat, run_monitor)
        out(f"monitor over {reports[0].rows:,} assessments: median {seconds:.1f} s of {args.repeat}  target <= 60 s\n")

    outcomes = cohort.outcomes

    def run_revalidation() -> Any:
        return revalidate_stored(store, outcomes, as_of=dt.date(2040, 1, 1), review_ids=set())

    if "revalidate" in args.parts:
        seconds, report = _median(args.repeat, run_revalidation)
        matured = int(report.counts["matured"].sum())
        out(
            f"revalidation of {stored:,} assessments ({matured:,} matured) with outcomes: median {seconds:.1f} s of "
            f"{args.repeat}  target <= 60 s\n"
        )
    if "shadow" in args.parts:
        _shadow(args, store, fit, served, tiers, review, since)


def _shadow(args: argparse.Namespace, store: Any, fit: Any, served: Any, tiers: Any, review: Any, since: str) -> None:
    """The replay as it runs and the validated path, timed in turn in each repeat (the same load on both)."""
    import dataclasses

    from features.vocab import Stage
    from serving.monitoring import shadow_replay
    from serving.scoring import Scorer, ServedModel

    out = sys.stdout.write
    candidate = ServedModel(Stage.MIDTERM, fit.baseline, served.name, "candidate", "bench", {})
    replay_scorer = Scorer({Stage.MIDTERM: candidate}, tiers)
    first = list(store.iter_assessments(batch=5000))[: args.replay]
    replay_until = first[-1].created_at

    def run_shadow(validate: bool) -> Any:
        return shadow_replay(
            store,
            candidate,
            scorer=replay_scorer,
            review=review,
            since=since,
            until=replay_until,
            workers=args.workers,
            validate=validate,
        )

    times: dict[bool, list[float]] = {False: [], True: []}
    reports: dict[bool, Any] = {}
    for _ in range(args.repeat):
        for validate in (True, False):
            seconds, reports[validate] = _timed(run_shadow, validate)
            times[validate].append(seconds)
    if dataclasses.asdict(reports[True]) != dataclasses.asdict(reports[False]):
        raise SystemExit("the replay's report differs from the validated path's")
    rows = reports[False].rows
    load = os.getloadavg()
    out(
        f"shadow replay of {rows:,} stored requests ({args.workers} processes, same report on both paths, "
        f"tiers changed: {reports[False].changed('tier'):,}; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}):\n"
    )
    for validate, name in ((True, "validated again, full answers"), (False, "trusted, brief answers")):
        median = statistics.median(times[validate])
        runs = ", ".join(f"{rows / t:,.0f}" for t in times[validate])
        out(f"  {name}: median {median:.1f} s of {args.repeat}, {rows / median:,.0f} assessments/s (runs: {runs})\n")
    out("  target >= 2,000/s\n")


if __name__ == "__main__":
    main()
