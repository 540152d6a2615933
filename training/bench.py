"""Benchmark of the stage models on a synthetic cohort: accuracy against the oracle, and training time.

``python -m training.bench --persons 100000`` fits the three stages (search included) on a
person-random and on a temporal split and prints, per stage, test AUC of the model, of the
logistic baseline and of the generator's oracle on the same rows, Brier, ECE and the wall time.
Targets (issue 3): AUC within 0.01 of the oracle's, ECE <= 0.02; all three stages < 5 minutes.
"""

from __future__ import annotations

import argparse
import time

from features.labels import make_stage_frame
from features.synthetic import CohortConfig, generate_cohort
from features.vocab import Stage
from training.fit import fit_stage


def main() -> None:
    from evaluation import classification_metrics

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    tables = generate_cohort(CohortConfig(persons=args.persons, seed=args.seed))
    print(f"persons={args.persons:,} seed={args.seed}")
    print("split     stage    n_test  rate   AUC    base   oracle gap    Brier   oracleB ECE    trees  fit_s")
    for temporal in (False, True):
        total = 0.0
        for stage in Stage:
            t = time.perf_counter()
            fit = fit_stage(make_stage_frame(tables, stage), temporal=temporal)
            elapsed = time.perf_counter() - t
            total += elapsed
            test = fit.part("test")
            m = classification_metrics(test.y, fit.model.predict_proba(test.X))
            b = classification_metrics(test.y, fit.baseline.predict_proba(test.X))
            o = classification_metrics(test.y, test.meta["oracle"].to_numpy())
            print(f"{'temporal' if temporal else 'person':9s} {stage.value:8s} {len(test.y):6d} {test.y.mean():.3f} "
                  f"{m['roc_auc']:.4f} {b['roc_auc']:.4f} {o['roc_auc']:.4f} {o['roc_auc'] - m['roc_auc']:+.4f} "
                  f"{m['brier']:.4f}  {o['brier']:.4f}  {m['ece']:.4f} {fit.model.size['trees']:5d} {elapsed:6.1f}")
        print(f"{'temporal' if temporal else 'person'} split: three stages (features + search + calibration + "
              f"baseline) in {total:.1f} s")


if __name__ == "__main__":
    main()
