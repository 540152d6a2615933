"""What the tier policy's cut-offs flag, before and after they could be stated relative to the data (issue 21).

``python benchmarks/bench_cutoffs.py --persons 20000 --seed 0`` generates the demo-size synthetic cohort
(or reads ``--data DIR``), fits the three stage models as ``riskctl train`` does (the full search, the
candidate chosen between the booster and the logistic model) and prints, per stage, for the policy
before (cut-offs written as probabilities: 0.10/0.25 at intake and mid-term, 0.15/0.35 at release) and
the shipped one: each cut-off as a probability, the share of the model's training persons at or above
it, and on the test persons the number flagged, the share, the precision and the recall; then how many
test persons are strict by a mandatory rule, by a rule only, and in effect.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import yaml

from evaluation import policy_figures
from features.labels import make_stage_frame
from features.synthetic import CohortConfig, generate_cohort
from features.vocab import Stage
from models.tier_policy import TierPolicy
from training.config import GateConfig, TrainConfig
from training.fit import choose_candidate, fit_stage

POLICY = Path(__file__).resolve().parents[1] / "models" / "tier_policy.yaml"
#: the cut-offs of tier policy 2026.12-1, written as probabilities for one base rate
BEFORE = {"intake": (0.10, 0.25), "midterm": (0.10, 0.25), "release": (0.15, 0.35)}


def before_policy() -> TierPolicy:
    """The shipped rules with the cut-offs of version 2026.12-1."""
    raw: dict[str, Any] = yaml.safe_load(POLICY.read_text("utf-8"))
    for stage, (medium, high) in BEFORE.items():
        raw["stages"][stage].update(medium_from=medium, high_from=high)
    return TierPolicy.model_validate({**raw, "version": "2026.12-1"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0, help="generator seed (the split seed stays 0)")
    parser.add_argument("--data", type=Path, help="canonical tables (riskctl data synthetic --out DIR) instead")
    args = parser.parse_args()
    if args.data:
        from features.cli import read_tables

        tables, source = read_tables(args.data), str(args.data)
    else:
        tables, source = generate_cohort(CohortConfig(persons=args.persons, seed=args.seed)), f"seed {args.seed}"
    policies = {"before": before_policy(), "after": TierPolicy.load()}
    gate = GateConfig.load()
    print(f"cohort: {source}")
    print("| stage | model | policy | cut-off | p | training share | flagged (test) | share | precision | recall |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for stage in Stage:
        started = time.perf_counter()
        fit = fit_stage(make_stage_frame(tables, stage), config=TrainConfig.load(), seed=0)
        model = choose_candidate(fit, gate.comparison).model
        test = fit.part("test")
        prob = model.predict_proba(test.X)
        for name, policy in policies.items():
            cutoffs = policy.cutoffs(stage, model.risk_reference)
            f = policy_figures(policy, stage, y_true=test.y, y_prob=prob, features=test.X, cutoffs=cutoffs)
            for c in f.at_cutoffs:
                print(
                    f"| {stage.value} | {model.kind} | {name} {policy.version} | {c.name} | "
                    f"{c.cutoff.probability:.4f} | {c.cutoff.training_share:.1%} | {c.flagged:,} of {f.rows:,} | "
                    f"{c.share_flagged:.1%} | {c.precision:.1%} | {c.recall:.1%} |"
                )
            print(
                f"| {stage.value} | | {name} | strict by rule | | | {f.strict_by_rule:,} (by rule only "
                f"{f.rule_only:,}; in effect {f.strict_in_effect:,}, {f.strict_in_effect / f.rows:.1%}) | | | |"
            )
        print(f"<!-- {stage.value}: fitted in {time.perf_counter() - started:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
