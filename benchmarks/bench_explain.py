"""Benchmark of explained scoring before and after a change, side by side in one run, with sentence checks.

``python benchmarks/bench_explain.py --persons 5000 --baseline main`` exports the ``--baseline`` git
revision to a temporary folder and runs the same measurement in two child processes, one on that
revision's code and one on the working tree's (same interpreter and packages). Each child
generates the same synthetic cohort, trains the three stage models (one grid point, so both sides
get the same booster settings), builds one request per person (stages in turn, zh and en in turn),
validates them and then times :meth:`serving.scoring.Scorer.score` on the whole batch
(``--repeats`` times after a warm-up; median). Rounds alternate the two sides (``--rounds``), so
machine load drifts over both alike.

Each child also checks every reason sentence of its answers with
:func:`features._wording.check_sentence` (loaded from the working tree's file, so the old code is
judged by the same reader), for the batch and for ``--check-persons`` people at all three stages in
zh and en. Printed: persons per second per side, the change in throughput, and the count of
answers with any failing sentence. The target of issue 12: the richer reasons cost at most 20% of
batch throughput, and no answer fails.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from serving.scoring.schemas import Assessment

ROOT = Path(__file__).resolve().parents[1]
WORDING = ROOT / "features" / "_wording.py"
TARGET_COST = 0.20


def _checker() -> Callable[..., list[str]]:
    """check_sentence of the working tree, loaded by path (the module imports nothing of the project)."""
    spec = importlib.util.spec_from_file_location("wording_under_test", WORDING)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {WORDING}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    check: Callable[..., list[str]] = module.check_sentence
    return check


def _failing(
    answers: Sequence[Assessment], check: Callable[..., list[str]], kinds: dict[str, list[bool]]
) -> tuple[int, list[str]]:
    """Answers with any failing sentence, and a few examples."""
    bad, examples = 0, list[str]()
    for a in answers:
        found = []
        for r in a.reasons:
            decimals, percent = kinds.get(r.feature, [False, False])
            found += [f"{r.text!r}: {p}" for p in check(r.text, a.lang, decimals=decimals, percent=percent)]
        bad += bool(found)
        examples += found[:1] if len(examples) < 5 else []
    return bad, examples


def child(args: argparse.Namespace) -> None:
    """One side: train, score, time and check; prints one JSON line."""
    import logging

    logging.disable(logging.WARNING)
    import pandas as pd

    from features.labels import make_stage_frame
    from features.synthetic import CohortConfig, generate_cohort
    from features.vocab import Stage
    from models.tier_policy import TierPolicy
    from serving.scoring import Scorer, ServedModel, requests_from_tables
    from serving.scoring.schemas import ScoreRequest
    from training.config import TrainConfig
    from training.fit import fit_stage

    tables = generate_cohort(CohortConfig(persons=max(args.persons, 4000), seed=args.seed))
    config = TrainConfig.load().override(search={"budget": 1})
    fits = {stage: fit_stage(make_stage_frame(tables, stage), config=config, seed=0, temporal=False) for stage in Stage}
    scorer = Scorer(
        {s: ServedModel(s, f.model, f"reoffence-{s.value}", "1", "bench:1", {}) for s, f in fits.items()},
        TierPolicy.load(),
    )
    ended = tables.persons[tables.persons["supervision_end"] <= pd.Timestamp.today().normalize()]  # none dated later
    stages, persons = list(Stage), ended.head(args.persons)
    bodies = {
        (s, lang): requests_from_tables(persons, tables.events, s, lang=lang) for s in stages for lang in ("zh", "en")
    }
    batch = [
        ScoreRequest.model_validate(bodies[stages[i % 3], ("zh", "en")[(i // 3) % 2]][i]) for i in range(len(persons))
    ]
    scorer.score(batch[:200])  # warm-up
    seconds = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        answers = scorer.score(batch)
        seconds.append(time.perf_counter() - started)
    check, kinds = _checker(), json.loads(args.kinds)
    bad_batch, examples = _failing([s.assessment for s in answers], check, kinds)
    small = [ScoreRequest.model_validate(bodies[key][i]) for key in bodies for i in range(args.check_persons)]
    bad_small, more = _failing([s.assessment for s in scorer.score(small)], check, kinds)
    trees = {s.value: f.model.size["trees"] for s, f in fits.items()}
    print(
        json.dumps(
            {
                "seconds": seconds,
                "n": len(batch),
                "trees": trees,
                "bad_batch": bad_batch,
                "bad_small": bad_small,
                "n_small": len(small),
                "examples": (examples + more)[:5],
            }
        )
    )


def _kinds() -> str:
    """Per feature of the working tree's catalog: [one decimal allowed, must be a percentage]."""
    from features.catalog import CATALOG, ValueKind

    return json.dumps(
        {
            n: [s.wording.kind in (ValueKind.RATE, ValueKind.POINTS), s.wording.kind is ValueKind.SHARE]
            for n, s in CATALOG.items()
        }
    )


def _export(revision: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def _run_side(tree: Path, args: argparse.Namespace, kinds: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    argv = [
        "explain_bench",
        "--child",
        "--persons",
        str(args.persons),
        "--seed",
        str(args.seed),
        "--repeats",
        str(args.repeats),
        "--check-persons",
        str(args.check_persons),
        "--kinds",
        kinds,
    ]
    # run this file's code with the imports resolved in ``tree`` (-c puts the working folder first on sys.path)
    code = (
        f"import runpy, sys; sys.argv = {argv!r}; "
        f"runpy.run_path({str(Path(__file__).resolve())!r}, run_name='__main__')"
    )
    cmd = [sys.executable, "-c", code]
    out = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"the benchmark on {tree} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=5000, help="people in the timed batch (stages in turn)")
    parser.add_argument("--baseline", default="main", help="git revision to compare with (the 'before')")
    parser.add_argument("--repeats", type=int, default=5, help="timed batches per side and round")
    parser.add_argument("--rounds", type=int, default=1, help="before/after pairs, run alternately")
    parser.add_argument("--check-persons", type=int, default=200, help="people checked at 3 stages x zh/en")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--kinds", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    kinds = _kinds()
    sides: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory(prefix="explain-bench-") as tmp:
        before = _export(args.baseline, Path(tmp))
        for _ in range(args.rounds):
            sides["before"].append(_run_side(before, args, kinds))
            sides["after"].append(_run_side(ROOT, args, kinds))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"explained scoring of {args.persons:,} persons (stages in turn, zh/en in turn), Scorer.score in process; "
        f"{args.repeats} batches x {args.rounds} round(s) per side; cpus={os.cpu_count()} load(1 min)={load:.2f}"
    )
    print(
        f"{'side':8s} {'revision':24s} {'median s':>9s} {'persons/s':>10s} {'failing answers (batch)':>24s} "
        f"{'failing (3 stages x zh/en)':>27s}  trees"
    )
    rate = {}
    for name, runs in sides.items():
        seconds = statistics.median(s for run in runs for s in run["seconds"])
        rate[name] = args.persons / seconds
        last = runs[-1]
        revision = args.baseline if name == "before" else "working tree"
        print(
            f"{name:8s} {revision:24s} {seconds:9.3f} {rate[name]:10.0f} {last['bad_batch']:>12d} of {last['n']:<9,d}"
            f" {last['bad_small']:>14d} of {last['n_small']:<9,d} {last['trees']}"
        )
    cost = 1 - rate["after"] / rate["before"]
    verdict = "met" if cost <= TARGET_COST else "MISSED"
    print(f"throughput change: {-cost:+.1%} (target: cost at most {TARGET_COST:.0%}: {verdict})")
    for name, runs in sides.items():
        for example in runs[-1]["examples"][:3]:
            print(f"  {name} example: {example}")


if __name__ == "__main__":
    main()
