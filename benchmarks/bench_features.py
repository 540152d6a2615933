"""Benchmark of the foundation: generate a cohort and build the three stages' features.

Run ``python benchmarks/bench_features.py --persons 100000`` (target: features of the three stages in under
30 s on 2 cores) and ``--persons 1000000 --generate-only`` (target: under 2 minutes). Prints the
median of ``--repeat`` runs for each step; not a test (shared machines are noisy).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable
from typing import TypeVar

from features.labels import make_stage_frame
from features.synthetic import CohortConfig, generate_cohort
from features.vocab import Stage

T = TypeVar("T")


def _timed(fn: Callable[[], T]) -> tuple[T, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--generate-only", action="store_true")
    args = parser.parse_args()
    gen_times: list[float] = []
    feat_times: dict[Stage, list[float]] = {s: [] for s in Stage}
    for r in range(args.repeat):
        tables, t = _timed(functools.partial(generate_cohort, CohortConfig(persons=args.persons, seed=r)))
        gen_times.append(t)
        if args.generate_only:
            continue
        for stage in Stage:
            _, t = _timed(functools.partial(make_stage_frame, tables, stage))
            feat_times[stage].append(t)
    print(f"persons={args.persons:,} events={len(tables.events):,} repeats={args.repeat}")
    runs = ", ".join(f"{x:.2f}" for x in gen_times)
    print(f"generate cohort: median {statistics.median(gen_times):.2f} s (runs: {runs})")
    if not args.generate_only:
        total = [sum(feat_times[s][i] for s in Stage) for i in range(args.repeat)]
        for stage in Stage:
            print(f"features+labels {stage.value:8s}: median {statistics.median(feat_times[stage]):.2f} s")
        print(f"features+labels, three stages: median {statistics.median(total):.2f} s (target < 30 s)")


if __name__ == "__main__":
    main()
