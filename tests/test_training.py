"""Stage models: fit on a small cohort, registry round trip, promotion gate, monotonicity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from service_support import small_cohort_gate

from features.catalog import CATALOG
from features.labels import make_stage_frame
from features.schema import CaseTables
from features.settings import Settings
from features.synthetic import CohortConfig, generate_cohort
from features.vocab import Stage
from models.estimator import Calibrator, StageModel
from training.config import TrainConfig
from training.fit import StageFit, fit_stage, split_persons
from training.promote import promote


@pytest.fixture(scope="module")
def tables() -> CaseTables:
    return generate_cohort(CohortConfig(persons=6000, seed=21))


@pytest.fixture(scope="module")
def small_config() -> TrainConfig:
    return TrainConfig.load().override(search={"budget": 2}, booster={"max_rounds": 150})


@pytest.fixture(scope="module")
def midterm_fit(tables: CaseTables, small_config: TrainConfig) -> StageFit:
    return fit_stage(make_stage_frame(tables, Stage.MIDTERM), config=small_config, seed=0, temporal=False)


def test_split_keeps_each_person_in_one_part(tables: CaseTables, small_config: TrainConfig) -> None:
    frame = make_stage_frame(tables, Stage.INTAKE)
    meta = pd.concat([frame.meta, frame.meta.head(50)], ignore_index=True)  # persons assessed twice
    parts = split_persons(meta, small_config.split, seed=3)
    assert (pd.Series(parts).groupby(meta["person_id"].to_numpy()).nunique() == 1).all()
    temporal = split_persons(frame.meta, small_config.split.model_copy(update={"temporal": True}), seed=3)
    starts = frame.meta["supervision_start"]
    assert starts[temporal == "test"].min() >= starts[temporal != "test"].max()
    assert abs((temporal == "test").mean() - small_config.split.test) < 0.02


@given(
    ids=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=300, unique=True),
    seeds=st.tuples(st.integers(0, 10_000), st.integers(0, 10_000)),
    temporal=st.booleans(),
)
@hypothesis_settings(max_examples=60, deadline=None)
def test_the_split_seed_never_moves_a_person_in_or_out_of_test(
    ids: list[str], seeds: tuple[int, int], temporal: bool
) -> None:
    """For any persons and any two seeds the test persons are the same (a retrain tests on persons no earlier
    model of the recipe saw), and the random split of seed 0 is the one it always was (cut points of one hash)."""
    from training.config import SplitConfig
    from training.fit import TEST_SALT

    config = SplitConfig(temporal=temporal)
    starts = pd.date_range("2020-01-01", periods=len(ids), freq="D")
    meta = pd.DataFrame({"person_id": ids, "supervision_start": starts[::-1]})
    a, b = (split_persons(meta, config, seed=seed) for seed in seeds)
    assert np.array_equal(a == "test", b == "test")
    if not temporal:
        # the split earlier versions made with seed 0: cut points on one hash of "<id>#0" in [0, 1)
        u = pd.util.hash_pandas_object(meta["person_id"] + TEST_SALT, index=False).to_numpy() % 1_000_003 / 1_000_003
        edges = np.cumsum([config.test, config.valid, config.calib])
        legacy = np.array(["test", "valid", "calib", "train"], dtype=object)[np.searchsorted(edges, u, side="right")]
        assert np.array_equal(split_persons(meta, config, seed=0), legacy)


def test_fit_produces_calibrated_informative_model(midterm_fit: StageFit) -> None:
    test = midterm_fit.part("test")
    prob = midterm_fit.model.predict_proba(test.X)
    assert prob.min() > 0 and prob.max() < 1
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(test.y, prob) > 0.68
    assert abs(prob.mean() - test.y.mean()) < 0.03
    assert midterm_fit.model.size["trees"] <= midterm_fit.config.booster.max_rounds
    assert roc_auc_score(test.y, midterm_fit.baseline.predict_proba(test.X)) > 0.65


def test_contributions_add_up_to_the_raw_score(midterm_fit: StageFit) -> None:
    X = midterm_fit.part("test").X.head(200)
    contrib = midterm_fit.model.contributions(X)
    np.testing.assert_allclose(contrib.sum(axis=1), midterm_fit.model.raw_score(X), atol=1e-6)


def test_matrix_from_columns_equals_matrix_from_frame_and_lightgbm(midterm_fit: StageFit) -> None:
    """The service's columns give the booster the same matrix as the frame, and LightGBM's own scores of the frame
    as the booster reads it ("nothing on record" encoded as each feature's lowest-risk value)."""
    model = midterm_fit.model
    X = midterm_fit.part("test").X.head(300)
    columns = {
        name: (X[name].array if isinstance(X[name].dtype, pd.CategoricalDtype) else X[name].to_numpy())
        for name in X.columns
    }
    M = model.matrix(X)
    np.testing.assert_array_equal(M, model.matrix(columns))
    encoded = model.encode_no_record_frame(X[model.feature_names])
    expected = model.booster_.predict(encoded, raw_score=True, num_iteration=model.best_iteration_)
    np.testing.assert_array_equal(model.raw_score(M), expected)
    np.testing.assert_array_equal(model.contribution_matrix(M), model.contributions(X).to_numpy())


def test_platt_calibration_equals_logistic_regression_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    raw = rng.normal(-2.5, 1.5, 4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-(raw + 0.3)))).astype(int)
    calibrator = Calibrator("platt").fit(raw, y)
    probe = np.r_[rng.normal(-3, 3, 10_000), -40.0, 0.0, 40.0]
    expected = calibrator.model_.predict_proba(probe.reshape(-1, 1))[:, 1]
    np.testing.assert_array_equal(calibrator.predict(probe), expected)
    np.testing.assert_array_equal([calibrator.predict(probe[i : i + 1])[0] for i in range(50)], expected[:50])


def test_matrix_refuses_other_categories(midterm_fit: StageFit) -> None:
    X = midterm_fit.part("test").X.head(5).copy()
    X["offence"] = X["offence"].cat.rename_categories(lambda c: f"x_{c}")
    with pytest.raises(ValueError, match="offence"):
        midterm_fit.model.matrix(X)


def test_matrix_refuses_reordered_categories(midterm_fit: StageFit) -> None:
    """Pandas calls unordered dtypes with the same categories in another order equal; their codes differ."""
    model = midterm_fit.model
    X = midterm_fit.part("test").X.head(5)
    model.matrix(X)  # the pipeline's own dtype first, so any cache keyed by equality would be filled
    reordered = X.copy()
    reordered["offence"] = X["offence"].cat.reorder_categories(list(X["offence"].cat.categories)[::-1])
    assert reordered["offence"].dtype == X["offence"].dtype
    with pytest.raises(ValueError, match="offence"):
        model.matrix(reordered)


RISK_RAISING = [n for n, s in CATALOG.items() if s.direction == 1 and s.kind == "numeric" and Stage.MIDTERM in s.stages]


@pytest.mark.parametrize("feature", RISK_RAISING)
def test_raising_a_risk_raising_feature_never_lowers_the_score(midterm_fit: StageFit, feature: str) -> None:
    X = midterm_fit.part("test").X.head(300)
    before = midterm_fit.model.predict_proba(X)
    for step in (1, 3, 10):
        raised = X.copy()
        raised[feature] = raised[feature].fillna(0) + step
        base = X.copy()
        base[feature] = base[feature].fillna(0)
        assert np.all(midterm_fit.model.predict_proba(raised) >= midterm_fit.model.predict_proba(base) - 1e-12)
    assert before.shape == (300,)


def test_person_id_does_not_change_the_score(tables: CaseTables, midterm_fit: StageFit) -> None:
    """Invariance: the same record under another id scores the same."""
    from features.pipeline import assessment_dates, build_features

    persons = tables.persons.head(30).copy()
    events = tables.events[tables.events["person_id"].isin(persons["person_id"])].copy()
    X = build_features(persons, events, assessment_dates(persons, Stage.MIDTERM), stage=Stage.MIDTERM)
    renamed_p = persons.assign(person_id="X" + persons["person_id"].astype(str))
    renamed_e = events.assign(person_id="X" + events["person_id"].astype(str))
    X2 = build_features(renamed_p, renamed_e, assessment_dates(renamed_p, Stage.MIDTERM), stage=Stage.MIDTERM)
    np.testing.assert_array_equal(midterm_fit.model.predict_proba(X), midterm_fit.model.predict_proba(X2))


def test_registry_round_trip_and_gate_refuses_a_worse_model(
    tables: CaseTables, small_config: TrainConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Log, register, load by alias with identical predictions; a deliberately worse model stays challenger."""
    import mlflow

    from models.pyfunc import load_stage_model
    from training.tracking import log_stage_fit

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = Settings(home=tmp_path)
    frame = make_stage_frame(tables, Stage.INTAKE)
    good = fit_stage(frame, config=small_config, seed=0)
    v1 = log_stage_fit(good, settings=settings, reports_dir=tmp_path / "reports", gate=small_cohort_gate())
    chosen = good.model if v1.model_kind == "lightgbm" else good.baseline  # the registered candidate
    decision = promote(Stage.INTAKE, version=v1.version, settings=settings, gate=small_cohort_gate())
    assert decision.promoted and decision.alias == "champion"

    loaded = load_stage_model(f"models:/{settings.model_name(Stage.INTAKE)}@champion")
    X = good.part("test").X
    np.testing.assert_array_equal(loaded.predict_proba(X), chosen.predict_proba(X))
    pyfunc = mlflow.pyfunc.load_model(f"models:/{settings.model_name(Stage.INTAKE)}@champion")
    from training.tracking import as_plain_columns

    np.testing.assert_allclose(np.asarray(pyfunc.predict(as_plain_columns(X))), chosen.predict_proba(X))

    # a deliberately worse model: trained on shuffled labels
    rng = np.random.default_rng(0)
    shuffled = frame.subset(np.ones(len(frame.y), bool))
    shuffled.y = rng.permutation(shuffled.y)
    bad = fit_stage(shuffled, config=small_config, seed=0)
    bad.frame = frame  # evaluate on the true labels of the same rows
    v2 = log_stage_fit(bad, settings=settings, reports_dir=tmp_path / "reports", gate=small_cohort_gate())
    refused = promote(Stage.INTAKE, version=v2.version, settings=settings, gate=small_cohort_gate())
    assert not refused.promoted and refused.alias == "challenger"
    assert {"roc_auc_vs_champion", "brier_vs_champion"} <= {c.name for c in refused.failed}
    assert "FAIL" in refused.describe()
    from mlflow.tracking import MlflowClient

    card = MlflowClient().get_model_version(settings.model_name(Stage.INTAKE), v2.version).description or ""
    assert "Decision: **not promoted (challenger)**" in card and "- FAIL: vs champion: roc_auc" in card  # the gate
    assert "`sex`): excluded, not a model input" in card and "synthetic: " in card and "first_two_months" in card
    report = (v2.report_dir / "report.md").read_text()
    assert "**strict in effect 100.0%**" in report and "flagged by risk" in report  # intake: all strict by rule
    champion = load_stage_model(f"models:/{settings.model_name(Stage.INTAKE)}@champion")
    np.testing.assert_array_equal(champion.predict_proba(X), chosen.predict_proba(X))


def test_stage_model_refuses_a_frame_without_its_features(midterm_fit: StageFit) -> None:
    with pytest.raises(KeyError, match="midterm"):
        midterm_fit.model.predict_proba(midterm_fit.part("test").X.drop(columns=["warning_term"]))
    assert isinstance(midterm_fit.model, StageModel)


def test_thread_count_is_a_setting() -> None:
    """LightGBM's thread count comes from training/params.yaml (booster.num_threads), not from code."""
    from models.estimator import BoosterParams

    config = TrainConfig.load()
    assert isinstance(config.booster.num_threads, int) and config.booster.num_threads >= 1
    params = BoosterParams(**{**config.booster.model_dump(), "num_threads": 3})
    assert params.lgb_params([0], seed=0)["num_threads"] == 3
    assert BoosterParams().lgb_params([0], seed=0)["num_threads"] == 1


def test_refit_on_valid_trains_the_chosen_rounds_on_train_and_valid(
    tables: CaseTables, small_config: TrainConfig
) -> None:
    """refit_on_valid: the booster is refitted on train + valid with the early-stopping rounds (scaled or not)."""
    from sklearn.metrics import roc_auc_score

    from training.fit import refit_rounds

    frame = make_stage_frame(tables, Stage.MIDTERM)
    plain = fit_stage(frame, config=small_config, seed=0, temporal=False)
    for scale in (False, True):
        config = small_config.model_copy(update={"refit_on_valid": True, "refit_scale_rounds": scale})
        fit = fit_stage(frame, config=config, seed=0, temporal=False)
        n_train, n_valid = int((fit.parts == "train").sum()), int((fit.parts == "valid").sum())
        stopped_at = fit.chosen["early_stopping_trees"]
        assert stopped_at == plain.model.best_iteration_  # same search, same choice
        rounds = refit_rounds(stopped_at, n_train, n_valid, config)
        assert rounds == (
            min(round(stopped_at * (n_train + n_valid) / n_train), small_config.booster.max_rounds)
            if scale
            else stopped_at
        )
        assert fit.model.size["trees"] == fit.chosen["trees"] == rounds
        assert fit.model.booster_.num_trees() == rounds  # no trees beyond the chosen rounds
        assert fit.chosen["refit_rows"] == n_train + n_valid
        # each tree's root counts the bagged rows it was grown on: the valid rows are among them
        roots = [t["tree_structure"]["internal_count"] for t in fit.model.booster_.dump_model()["tree_info"]]
        seen = np.mean(roots) / fit.model.params.bagging_fraction
        assert abs(seen - (n_train + n_valid)) < n_valid / 2
        test = fit.part("test")
        prob = fit.model.predict_proba(test.X)
        assert not np.allclose(prob, plain.model.predict_proba(test.X))
        assert roc_auc_score(test.y, prob) > 0.68
        assert abs(prob.mean() - test.y.mean()) < 0.03
    with pytest.raises(ValueError, match="rounds"):
        StageModel(Stage.MIDTERM).refit(frame.X, frame.y, rounds=0, X_calib=frame.X, y_calib=frame.y)
