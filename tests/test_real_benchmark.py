"""The real-data benchmark on slices of the public files (skipped when ../shared/data is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if not DATA.is_dir():
    pytest.skip(
        f"../shared/data not found: the real-data benchmark tests need /work/shared/data ({DATA} is absent)",
        allow_module_level=True,
    )

from typer.testing import CliRunner  # noqa: E402

from features.adapters import RealFrame, load  # noqa: E402
from features.schema import DataValidationError  # noqa: E402
from training.real import (  # noqa: E402
    COMPAS_MONOTONE,
    DOCS_HEADER,
    benchmark_real,
    markers,
    standalone_app,
    update_docs,
)
from training.real.fit import (  # noqa: E402
    SMALL_PARAMS,
    calibrate_score_oof,
    cross_validate_real,
    fit_crossfit_booster,
    fit_predict_real,
    fold_indices,
    logistic_oof,
)

pytestmark = pytest.mark.realdata

NIJ = DATA / "nij" / "nij_train.csv"
COMPAS = DATA / "compas" / "compas-scores-two-years.csv"
ROSSI = DATA / "rossi" / "Rossi.csv"
SLICE = 1500


def _head(frame: RealFrame, n: int) -> RealFrame:
    return RealFrame(
        frame.X.iloc[:n],
        frame.y[:n],
        frame.groups.iloc[:n],
        frame.extra.iloc[:n],
        frame.name,
        frame.target,
        frame.notes,
        frame.n_dropped,
    )


def _split_csv(path: Path, tmp_path: Path, n_train: int) -> tuple[Path, Path]:
    """The file cut in two files of the same format: the first ``n_train`` rows and the rest."""
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    train, test = tmp_path / f"train_{path.name}", tmp_path / f"test_{path.name}"
    raw.iloc[:n_train].to_csv(train, index=False)
    raw.iloc[n_train:].to_csv(test, index=False)
    return train, test


@pytest.fixture(scope="module")
def compas_slice() -> RealFrame:
    return _head(load("compas", COMPAS), SLICE)


def _is_probability(p: np.ndarray, n: int) -> None:
    assert p.shape == (n,)
    assert np.isfinite(p).all()
    assert ((p > 0) & (p < 1)).all()


def test_cross_validate_real_on_a_compas_slice(compas_slice: RealFrame) -> None:
    p = cross_validate_real(compas_slice, folds=5, seed=0)
    _is_probability(p, SLICE)
    assert roc_auc_score(compas_slice.y, p) > 0.6
    np.testing.assert_array_equal(p, cross_validate_real(compas_slice, folds=5, seed=0))  # seeded


def test_crossfit_booster_calibrates_on_the_inner_out_of_fold_scores(compas_slice: RealFrame) -> None:
    X, y = compas_slice.X, compas_slice.y
    model = fit_crossfit_booster(X, y, 0, monotone=COMPAS_MONOTONE, inner=4)
    assert len(model.boosters) == 4
    assert model.calibrator.method_ in ("platt", "isotonic")
    _is_probability(model(X), SLICE)
    np.testing.assert_array_equal(model(X), fit_crossfit_booster(X, y, 0, monotone=COMPAS_MONOTONE, inner=4)(X))
    # monotone: more priors never lower the score, more years of age never raise it
    row = X.iloc[[0] * 5].copy()
    row["priors_count"] = [0.0, 2, 5, 10, 20]
    assert np.all(np.diff(model(row)) >= 0)
    row = X.iloc[[0] * 5].copy()
    row["age"] = [19.0, 25, 35, 50, 70]
    assert np.all(np.diff(model(row)) <= 0)
    p = cross_validate_real(compas_slice, folds=3, seed=0, crossfit=True, monotone=COMPAS_MONOTONE)
    _is_probability(p, SLICE)
    assert roc_auc_score(y, p) > 0.6


def test_logistic_and_decile_calibration_share_the_folds(compas_slice: RealFrame) -> None:
    folds = fold_indices(compas_slice.y, folds=5, seed=3)
    assert sorted(np.concatenate([test for _, test in folds]).tolist()) == list(range(SLICE))
    decile = compas_slice.extra["decile_score"].to_numpy()
    p = calibrate_score_oof(decile, compas_slice.y, folds=5, seed=3)
    _is_probability(p, SLICE)
    assert roc_auc_score(compas_slice.y, p) > 0.6
    _is_probability(logistic_oof(compas_slice, folds=5, seed=3), SLICE)


def test_monotone_constraints_must_name_features(compas_slice: RealFrame) -> None:
    p = cross_validate_real(compas_slice, folds=3, monotone={"priors_count": 1})
    _is_probability(p, SLICE)
    with pytest.raises(ValueError, match="no_such_feature"):
        cross_validate_real(compas_slice, folds=3, monotone={"no_such_feature": 1})


def test_rossi_with_and_without_employment_both_run() -> None:
    frames = {flag: load("rossi", ROSSI, with_employment=flag) for flag in (True, False)}
    assert frames[True].X.shape[1] > frames[False].X.shape[1]
    for frame in frames.values():
        _is_probability(cross_validate_real(frame, folds=5, seed=1, params=SMALL_PARAMS), len(frame.y))
        _is_probability(logistic_oof(frame, folds=5, seed=1), len(frame.y))


@pytest.mark.parametrize(
    "source, path, column",
    [
        ("compas", COMPAS, "priors_count"),
        ("rossi", ROSSI, "emp12"),
        ("nij", NIJ, "Prior_Arrest_Episodes_Felony"),
    ],
)
def test_a_test_file_missing_a_column_is_refused_by_name(tmp_path: Path, source: str, path: Path, column: str) -> None:
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, nrows=300).drop(columns=[column])
    broken = tmp_path / "broken.csv"
    raw.to_csv(broken, index=False)
    with pytest.raises(DataValidationError, match=column):
        benchmark_real(source, path, broken, track=False)
    result = CliRunner().invoke(
        standalone_app(),
        ["benchmark", "real", "--data", source, "--train", str(path), "--test", str(broken), "--no-track"],
    )
    assert result.exit_code == 2
    assert column in result.output and "required column is missing" in result.output


def test_fit_predict_real_with_a_test_file_in_the_same_format(tmp_path: Path) -> None:
    train_path, test_path = _split_csv(COMPAS, tmp_path, 5000)
    train, test = load("compas", train_path), load("compas", test_path)
    assert [list(train.X[c].cat.categories) for c in ("charge_family", "c_charge_degree")] == [
        list(test.X[c].cat.categories) for c in ("charge_family", "c_charge_degree")
    ]
    p = fit_predict_real(train, test, seed=0)
    _is_probability(p, len(test.y))
    assert roc_auc_score(test.y, p) > 0.6


def test_cli_with_a_test_file_prints_the_table_and_writes_the_docs(tmp_path: Path) -> None:
    train_path, test_path = _split_csv(ROSSI, tmp_path, 300)
    docs = tmp_path / "benchmarks.md"
    docs.write_text(
        "# Benchmarks\n\n<!-- real:nij -->\nkept\n<!-- /real:nij -->\n\n"
        "<!-- real:rossi -->\nold figures\n<!-- /real:rossi -->\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        standalone_app(),
        [
            "benchmark",
            "real",
            "--data",
            "rossi",
            "--train",
            str(train_path),
            "--test",
            str(test_path),
            "--no-track",
            "--write-docs",
            "--docs",
            str(docs),
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "LightGBM small, static columns only" in result.output
    text = docs.read_text(encoding="utf-8")
    assert "old figures" not in text and "kept" in text
    assert f"--test {test_path}" in text and "| logistic, with employment weeks 1-25 |" in text
    assert text.count(markers("rossi")[0]) == 1


def test_update_docs_appends_a_missing_section_and_replaces_it_later(tmp_path: Path) -> None:
    docs = tmp_path / "docs" / "benchmarks.md"
    update_docs(docs, "compas", "first")
    update_docs(docs, "nij", "nij section")
    update_docs(docs, "compas", "second")
    text = docs.read_text(encoding="utf-8")
    assert text.startswith(DOCS_HEADER)
    assert "second" in text and "first" not in text and "nij section" in text
    assert text.index(markers("compas")[0]) < text.index(markers("nij")[0])


#: a quick booster for the NIJ tests (the benchmark's own settings take about a minute on the whole file)
QUICK_NIJ_BOOSTER = {"learning_rate": 0.1, "num_leaves": 4, "max_depth": 2, "min_child_samples": 50, "max_rounds": 300}


def test_nij_benchmark_selects_on_the_development_part_and_scores_the_held_out_persons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from training.real import nij

    monkeypatch.setattr(nij, "BOOSTER_PARAMS", {**nij.BOOSTER_PARAMS, **QUICK_NIJ_BOOSTER})
    rows = 2000
    sliced = tmp_path / "nij_slice.csv"
    pd.read_csv(NIJ, dtype=str, keep_default_na=False, nrows=rows).to_csv(sliced, index=False)
    result = benchmark_real("nij", sliced, seed=3, folds=3, track=False)
    cv, held, _ = result.tables.values()
    assert list(cv.index[:3]) == [nij.LOGISTIC, nij.BOOSTER, nij.MEAN]
    assert (cv["selected"] == "yes").sum() == 1 and cv["selected"].iloc[:3].eq("yes").any()
    assert result.params["selected"] == cv.index[cv["selected"] == "yes"][0]
    assert cv["basis"].iloc[0] == "3-fold CV, development part (1,600)"
    assert held["basis"].iloc[0] == "held-out part (400)"
    assert float(held["Brier avg (challenge)"].loc[str(result.params["selected"])]) > 0
    assert any(
        c.startswith("NIJ year 1, the selected model") and "held-out part sex-averaged Brier" in c
        for c in result.checks
    )
    assert any("stratified by sex x year-1 outcome, seed 3" in n for n in result.notes)
    frame = load("nij", sliced, target="year1")
    sex = frame.groups["sex"].astype(str).to_numpy()
    dev, held_rows = nij.held_out_split(frame.X.index, nij.strata(frame.y, sex), seed=3)
    assert len(held_rows) == 400 and not set(frame.X.index[dev]) & set(frame.X.index[held_rows])
    for value in ("male", "female"):  # each sex keeps its share on both sides
        assert abs((sex[held_rows] == value).mean() - (sex == value).mean()) < 0.01


def test_nij_candidates_never_lower_the_risk_for_one_more_adverse_fact() -> None:
    """The face-validity contract on real rows: more priors, a revocation, gang membership, a higher agency score."""
    from training.real import nij

    frame = _head(load("nij", NIJ, target="year1"), SLICE)
    X = frame.X.drop(columns=["sex"])
    candidates = nij.nij_candidates(booster_params=QUICK_NIJ_BOOSTER)
    pairs = {}
    for column in nij.increasing(X.columns):
        rows = X[column].notna() & (X[column] < X[column].max())
        pairs[column] = (X[rows], X[rows].assign(**{column: X.loc[rows, column] + 1}))
    assert len(pairs) >= 15 and all(len(before) > 0 for before, _ in pairs.values())
    scored = pd.concat([frame for pair in pairs.values() for frame in pair])
    probs = nij.predict_all(candidates, X, frame.y, scored, seed=0)  # one fit per candidate
    for name, p in probs.items():
        start = 0
        for column, (before, _) in pairs.items():
            n = len(before)
            lower = p[start : start + n] - p[start + n : start + 2 * n]
            assert lower.max() <= 0.001, (name, column, float(lower.max()))
            start += 2 * n
