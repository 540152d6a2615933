"""Does the promotion gate give every stage a champion on data it was not tuned for?

``python benchmarks/bench_gate.py --persons 20000 --seeds 0 1 2 3 4`` draws one synthetic cohort per
seed, trains and gates the three stages on it exactly as a modeler would (``riskctl data synthetic``,
then ``riskctl train --stage all --promote`` in a fresh ``RISK_HOME``), and prints, per cohort and
stage, the version the gate made ``@champion`` (or that none was), its kind, the share it flags at the
strict-tier cut-off, its test AUC and the criteria it failed or passed with a warning. Then how many
of the stages got a champion by the gate alone, and the time per cohort. Target (issue 21): every stage
of every cohort.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _riskctl(*args: str, home: Path) -> None:
    env = {**os.environ, "RISK_HOME": str(home)}
    cmd = [sys.executable, "-m", "serving.cli", *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()

    from features.settings import Settings
    from training.registry import registered_versions
    from training.tracking import configure_mlflow

    served, total = 0, 0
    print("| cohort seed | stage | @champion | kind | flagged | AUC | failed or warned |")
    print("|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        with tempfile.TemporaryDirectory(prefix=f"gate-{seed}-") as tmp:
            home, data = Path(tmp) / "home", Path(tmp) / "data"
            started = time.perf_counter()
            cohort = ["--out", str(data), "--persons", str(args.persons), "--seed", str(seed)]
            _riskctl("data", "synthetic", *cohort, home=home)
            _riskctl("train", "--data", str(data), "--stage", "all", "--promote", home=home)
            seconds = time.perf_counter() - started
            settings = Settings(home=home)
            rows = registered_versions(settings)
            client = configure_mlflow(settings)
            for stage in ("intake", "midterm", "release"):
                total += 1
                mine = [r for r in rows if r.stage == stage]
                champion = next((r for r in mine if "champion" in r.aliases), None)
                shown = champion or (mine[0] if mine else None)
                served += champion is not None
                if shown is None:
                    print(f"| {seed} | {stage} | none | - | - | - | nothing registered |")
                    continue
                flagged, auc = shown.metrics.get("share_flagged"), shown.metrics.get("roc_auc")
                remarks = "; ".join(
                    f"{k.removeprefix('gate.')}: {v.split(':', 1)[0]}"
                    for k, v in sorted(client.get_model_version(settings.model_name(stage), shown.version).tags.items())
                    if k.startswith("gate.") and not v.startswith("pass")
                )
                print(
                    f"| {seed} | {stage} | {'v' + shown.version if champion else 'none'} | {shown.kind} | "
                    f"{'n/a' if flagged is None else f'{flagged:.1%}'} | {'n/a' if auc is None else f'{auc:.4f}'} | "
                    f"{remarks or '-'} |"
                )
            print(f"<!-- cohort {seed}: {seconds:.0f} s for data, training and the gate of three stages -->")
    print(f"\nstages with a champion by the gate alone: {served} of {total}")


if __name__ == "__main__":
    main()
