"""``riskctl backup`` of a 100,000-person home under load, and its restore (issue 23: backup <= 60 s on 2 cores).

``python benchmarks/bench_backup.py [--persons 100000] [--trail 5000] [--repeat 3]`` builds a temporary
``RISK_HOME``: a synthetic cohort imported into the case store, an audit trail of ``--trail`` records and a
signed checkpoint. Then, while another thread keeps appending to the trail (one committed record after
another, signing a checkpoint every 50), it times :func:`serving.cli.backup_home` ``--repeat`` times, and
times one restore into a fresh home (every file's SHA-256 and the trail against its latest checkpoint checked
first). Prints the sizes, the medians and how many records were written during the backups.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--trail", type=int, default=5_000, help="records in the audit trail before the backups")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="backup-bench-"))
    os.environ["RISK_HOME"] = str(root / "home")

    from features.synthetic import CohortConfig, generate_cohort
    from features.vocab import Stage
    from serving.audit import checkpointer_for, open_store
    from serving.cases import CaseStore
    from serving.cli import backup_home, restore_home
    from serving.settings import get_settings

    settings = get_settings()
    settings.home.mkdir(parents=True)
    started = time.perf_counter()
    store = CaseStore.open(settings)
    store.import_tables(generate_cohort(CohortConfig(persons=args.persons, seed=3)))
    store.close()
    audit = open_store(settings, auth_secret="5e" * 32)  # records signed as the service signs them
    checkpointer = checkpointer_for(settings, audit)

    def sign() -> None:
        checkpointer.sign()

    def append(i: int) -> None:
        audit.add_model_event(
            event="promotion_override",
            stage=Stage.MIDTERM.value,
            model_name="reoffence-midterm",
            model_version=str(i),
            reason="benchmark write",
            detail={"i": i, "text": "x" * 400},
            actor="bench",
        )

    for i in range(args.trail):
        append(i)
    sign()
    size = sum(f.stat().st_size for f in settings.home.glob("*.db*"))
    print(
        f"set-up {time.perf_counter() - started:.0f} s: {args.persons:,} persons in the case store, "
        f"{args.trail:,} records in the trail, {size / 1e6:.0f} MB of databases"
    )

    stop, written = threading.Event(), [0]

    def load() -> None:
        while not stop.is_set():
            append(10**6 + written[0])
            written[0] += 1
            if written[0] % 50 == 0:
                sign()

    writer = threading.Thread(target=load)
    writer.start()
    times, during = [], []
    try:
        for n in range(args.repeat):
            before = written[0]
            t0 = time.perf_counter()
            backup_home(settings, root / f"backup-{n}")
            times.append(time.perf_counter() - t0)
            during.append(written[0] - before)
    finally:
        stop.set()
        writer.join()
    audit.close()
    copied = sum(f.stat().st_size for f in (root / "backup-0").rglob("*") if f.is_file())
    print(
        f"backup under load: median {statistics.median(times):.1f} s (runs {', '.join(f'{t:.1f}' for t in times)}), "
        f"{copied / 1e6:.0f} MB copied; {statistics.median(during):.0f} records committed during a backup (median)"
    )
    t0 = time.perf_counter()
    said = restore_home(get_settings(home=root / "restored"), root / "backup-0")
    print(f"restore (files checked, trail verified against its latest checkpoint): {time.perf_counter() - t0:.1f} s")
    print("  " + said[0])


if __name__ == "__main__":
    main()
