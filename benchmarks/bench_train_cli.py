"""``riskctl train --stage all --promote`` end to end, checkouts side by side: wall-clock medians.

``python benchmarks/bench_train_cli.py --persons 20000 --repeats 3 /work/main .`` makes one synthetic
cohort, then runs the command with each checkout's code (``PYTHONPATH=<checkout>``, a fresh ``RISK_HOME``
per run, LightGBM on one thread), alternating the checkouts so that a shared machine's load falls on all of
them alike, and prints each checkout's runs and median. The figure includes everything a modeler waits
for: reading the tables, features, search, calibration, MLflow logging and registration, and the gate.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkouts", nargs="+", type=Path, help="project checkouts to compare")
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    checkouts = [c.resolve() for c in args.checkouts]
    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    data = work / "data"
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "BENTOML_HOME")}
    env |= {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(checkouts[0])}
    make = [sys.executable, "-m", "serving.cli", "data", "synthetic", "--out", str(data)]
    subprocess.run(
        [*make, "--persons", str(args.persons), "--seed", str(args.seed)], env=env, check=True, capture_output=True
    )
    times: dict[Path, list[float]] = {c: [] for c in checkouts}
    for repeat in range(args.repeats):
        for i, checkout in enumerate(checkouts):
            home = work / f"home-{i}-{repeat}"
            run_env = env | {"PYTHONPATH": str(checkout), "RISK_HOME": str(home)}
            command = [sys.executable, "-m", "serving.cli", "train", "--data", str(data), "--stage", "all", "--promote"]
            started = time.perf_counter()
            done = subprocess.run(command, env=run_env, capture_output=True, text=True, cwd=work)
            elapsed = time.perf_counter() - started
            if done.returncode not in (0, 2):
                sys.exit(f"{checkout}: exit {done.returncode}\n{done.stderr[-2000:]}")
            times[checkout].append(elapsed)
            print(f"run {repeat + 1} {checkout}: {elapsed:.1f} s", flush=True)
    print(f"\ntrain --stage all --promote on {args.persons:,} persons, {args.repeats} runs each (work: {work})")
    for checkout, runs in times.items():
        print(f"  {checkout}: median {statistics.median(runs):.1f} s  ({', '.join(f'{t:.1f}' for t in runs)})")


if __name__ == "__main__":
    main()
