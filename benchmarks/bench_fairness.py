"""Time of the gate's fairness checks: ``python benchmarks/bench_fairness.py --rows 4000 20000 50000``.

For each size, test rows with the demo's group shares (15% women, 40% from elsewhere, four age bands,
fourteen offence categories) and calibrated probabilities around a 8% base rate are judged by the
shipped rule (``training/promotion.yaml``, ``fairness``): calibration within groups (the bootstrap,
``resamples`` x rows x groupings cell operations) and the FPR/FNR gaps. Printed: the median of
``--repeat`` runs of :func:`evaluation.fairness_checks`, and for scale the median of the gate's paired
bootstrap of one comparison (:func:`evaluation.paired_bootstrap`, candidate against a noisier model).
Wall-clock seconds on a shared machine: compare runs side by side.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import pandas as pd
from scipy.special import expit

from evaluation import fairness_checks, paired_bootstrap
from training.config import GateConfig

OFFENCES = [f"offence_{i}" for i in range(14)]


def rows(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    groups = pd.DataFrame(
        {
            "sex": rng.choice(["female", "male"], n, p=[0.15, 0.85]),
            "local": rng.choice(["local", "non-local"], n, p=[0.6, 0.4]),
            "age_band": rng.choice(["18-24", "25-34", "35-49", "50+"], n, p=[0.15, 0.35, 0.35, 0.15]),
            "offence": rng.choice(OFFENCES, n),
        }
    )
    p = expit(rng.normal(-2.8, 0.9, n))
    return (rng.random(n) < p).astype(int), p, groups


def median_time(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[4000, 20000, 50000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    gate = GateConfig.load()
    c = gate.comparison
    print(f"rule: {gate.fairness.calibration.describe()}")
    print("| test rows | groups | fairness checks (s) | one paired bootstrap (s) |")
    print("|---|---|---|---|")
    for n in args.rows:
        y, p, groups = rows(n)
        other = np.clip(p + np.random.default_rng(1).normal(0, 0.01, n), 0, 1)
        judge = partial(fairness_checks, y, p, groups=groups, threshold=0.25, rule=gate.fairness)
        checks = judge()
        fair = median_time(judge, args.repeat)
        paired = median_time(
            partial(paired_bootstrap, y, p, other, resamples=c.resamples, level=c.level, seed=c.seed), args.repeat
        )
        print(f"| {n:,} | {len(checks.calibration.table)} | {fair:.2f} | {paired:.2f} |", flush=True)


if __name__ == "__main__":
    main()
