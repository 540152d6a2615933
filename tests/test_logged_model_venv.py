"""The logged MLflow model is self-contained: it loads and predicts in a fresh virtual environment that has only
its own ``requirements.txt`` installed (from the package index), with the project not importable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from features.labels import make_stage_frame
from features.synthetic import CohortConfig, generate_cohort
from features.vocab import Stage
from serving.settings import ServiceSettings
from training.config import TrainConfig
from training.fit import fit_stage
from training.tracking import as_plain_columns, log_stage_fit

LOAD_AND_PREDICT = """
import json, sys, time
import pandas as pd
started = time.perf_counter()
import mlflow.pyfunc
model = mlflow.pyfunc.load_model(sys.argv[1])
loaded = time.perf_counter() - started
rows = pd.read_json(sys.argv[2], orient="split")
rows = rows.astype({c: float for c in rows.columns if rows[c].dtype.kind in "iu"})  # JSON numbers of double columns
print(json.dumps({"prob": [float(p) for p in model.predict(rows)], "load_seconds": loaded,
                  "project_importable": __import__("importlib.util").util.find_spec("training") is not None}))
"""


@pytest.mark.slow
def test_the_logged_model_loads_and_predicts_in_a_venv_with_only_its_requirements(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = ServiceSettings(home=tmp_path / "home")
    tables = generate_cohort(CohortConfig(persons=3000, seed=5))
    config = TrainConfig.load().override(search={"budget": 1}, booster={"max_rounds": 60})
    fit = fit_stage(make_stage_frame(tables, Stage.MIDTERM), config=config, seed=0)
    trained = log_stage_fit(fit, settings=settings, register_alternative=True)
    rows = as_plain_columns(fit.part("test").X.head(50))
    rows_path = tmp_path / "rows.json"
    rows.to_json(rows_path, orient="split", index=False, double_precision=15)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "MLFLOW_TRACKING_URI")}
    for version in (trained.version, trained.alternative.version if trained.alternative else None):
        if version is None:
            continue
        uri = f"models:/{settings.model_name(Stage.MIDTERM)}/{version}"
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(tmp_path / f"m{version}")))
        requirements = (local / "requirements.txt").read_text().split()
        assert all("==" in r for r in requirements)
        assert {r.split("==")[0] for r in requirements} >= {"mlflow", "lightgbm", "scikit-learn", "numpy", "pandas"}
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-r", str(local / "requirements.txt")],
            check=True,
            env=clean,
            timeout=1800,
        )
        started = time.perf_counter()
        done = subprocess.run(
            [str(python), "-c", LOAD_AND_PREDICT, str(local), str(rows_path)],
            capture_output=True,
            text=True,
            env=clean,
            cwd=tmp_path,  # not the project's folder: its modules come from the model's code paths only
            timeout=600,
        )
        wall = time.perf_counter() - started
        assert done.returncode == 0, done.stderr[-3000:]
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        assert answer["project_importable"] is False
        versions = {trained.version: trained}
        if trained.alternative is not None:
            versions[trained.alternative.version] = trained.alternative
        model = versions[version]
        estimator = fit.baseline if model.model_kind == "logistic" else fit.model
        np.testing.assert_allclose(answer["prob"], estimator.predict_proba(fit.part("test").X.head(50)), rtol=1e-7)
        size = sum(f.stat().st_size for f in local.rglob("*") if f.is_file())
        print(
            f"{model.model_kind}: loaded in {answer['load_seconds']:.2f} s (process {wall:.2f} s), {size / 1e6:.2f} MB"
        )
