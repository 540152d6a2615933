"""Benchmark of the case store (issue 13's targets): ``python benchmarks/bench_cases.py --persons 100000``.

Builds a synthetic cohort whose supervision terms all start in one quarter (so that nearly everyone
is on the roll at the meeting dates) with offices of about ``--office-size`` people, writes it as
Parquet, and measures on a fresh SQLite case store and audit store in a temporary folder:

- import from Parquet (read, validate, write), then re-importing the same export (nothing changes);
- the due list of one office (median of 5);
- the monthly review of one office (scoring, what moved, storing the assessments and the run),
  after an earlier review so that everyone has a previous assessment (median of 3 offices);
- the monthly review of everyone on the roll (``--all``; earlier review included, both timed).

Models: small stage models trained on a 10,000-person cohort into a temporary BentoML store (the
scoring cost depends on the trees; ``--trees`` sets their number). Figures are wall-clock seconds
on a shared machine: compare runs side by side.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    from features.vocab import Stage
    from serving.scoring import ServedModel

log = logging.getLogger(__name__)
T = TypeVar("T")
START_FROM, START_TO = "2021-10-01", "2021-12-31"
EARLIER, MEETING = dt.date(2022, 1, 15), dt.date(2022, 2, 15)


def _timed(fn: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[float, T]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def _export(folder: Path, persons: int, office_size: int, seed: int) -> Path:
    from features.synthetic import CohortConfig, generate_cohort

    tables = generate_cohort(CohortConfig(persons=persons, seed=seed, start_from=START_FROM, start_to=START_TO))
    n_offices = max(1, persons // office_size)
    rng = np.random.default_rng(seed)
    tables.persons["office"] = np.array([f"office-{i:03d}" for i in range(n_offices)], dtype=object)[
        rng.integers(0, n_offices, persons)
    ]
    return tables.write(folder / "export")


def _models(trees: int) -> dict[Stage, ServedModel]:
    import bentoml

    from features.labels import make_stage_frame
    from features.synthetic import CohortConfig, generate_cohort
    from features.vocab import Stage
    from serving.scoring import load_served, save_served
    from serving.settings import get_settings
    from training.config import TrainConfig
    from training.fit import fit_stage

    tables = generate_cohort(CohortConfig(persons=10_000, seed=99))
    config = TrainConfig.load().override(search={"budget": 1}, booster={"max_rounds": trees})
    settings = get_settings()
    for stage in Stage:
        fit = fit_stage(make_stage_frame(tables, stage), config=config, seed=0, temporal=False)
        save_served(settings, stage, fit.model, version="bench", metadata={})
    return {s: load_served(bentoml.models.get(f"{settings.model_name(s)}:latest"), s) for s in Stage}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--office-size", type=int, default=2_000)
    parser.add_argument("--trees", type=int, default=300, help="boosting rounds of the bench models (at most)")
    parser.add_argument("--all", action="store_true", help="also review everyone on the roll")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="cases-bench-"))
    os.environ.setdefault("BENTOML_HOME", str(work / "bentoml"))  # before bentoml is imported
    from models.tier_policy import TierPolicy
    from serving.audit import AuditStore
    from serving.cases import CaseStore, due_list, read_dir, run_review
    from serving.scoring import Scorer

    out = sys.stdout.write
    out(f"case store benchmark: {args.persons:,} persons, offices of ~{args.office_size:,}, work folder {work}\n")
    export = _export(work, args.persons, args.office_size, args.seed)
    store = CaseStore(f"sqlite:///{work / 'cases.db'}")
    seconds, summary = _timed(lambda: store.import_tables(read_dir(export), source=str(export)))
    out(f"import from Parquet: {seconds:.1f} s ({summary.text()})  target <= 60 s\n")
    seconds, summary = _timed(lambda: store.import_tables(read_dir(export), source=str(export)))
    out(f"re-import of the same export: {seconds:.1f} s ({summary.text()})\n")
    offices = store.offices()
    times = []
    for _ in range(5):
        seconds, listing = _timed(due_list, store, office=offices[0], as_of=MEETING)
        times.append(seconds)
    out(
        f"due list of {offices[0]} ({listing.count:,} on the roll): median {statistics.median(times):.3f} s "
        f"of 5 (min {min(times):.3f})  target <= 1 s\n"
    )
    models = _models(args.trees)
    scorer = Scorer(models, TierPolicy.load())
    audit = AuditStore(f"sqlite:///{work / 'audit.db'}", secret="ab" * 32)
    times = []
    for office in offices[:3]:
        run_review(store, scorer, audit, office=office, as_of=EARLIER, actor="bench")
        seconds, run = _timed(run_review, store, scorer, audit, office=office, as_of=MEETING, actor="bench")
        moved = sum(r.previous_assessment_id is not None for r in run.rows)
        times.append(seconds)
        out(f"review of {office}: {run.count:,} people ({moved:,} with what moved) in {seconds:.1f} s\n")
    out(f"review of one office: median {statistics.median(times):.1f} s of {len(times)}  target <= 10 s\n")
    if args.all:
        seconds, run = _timed(run_review, store, scorer, audit, office=None, as_of=EARLIER, actor="bench")
        out(f"review of everyone, first (no previous): {run.count:,} people in {seconds:.0f} s\n")
        seconds, run = _timed(run_review, store, scorer, audit, office=None, as_of=MEETING, actor="bench")
        out(f"review of everyone, with what moved: {run.count:,} people in {seconds:.0f} s  target <= 300 s\n")


if __name__ == "__main__":
    main()
