"""The comparative promotion gate, the shared fairness checks and the strict configuration files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluation import evaluate, paired_bootstrap
from training.config import ConfigError, GateConfig, TrainConfig
from training.promote import Criterion, ece_criterion, judge

THRESHOLD = 0.3


@pytest.fixture(scope="module")
def rows() -> tuple[np.ndarray, np.ndarray, pd.DataFrame, np.random.Generator]:
    """Test rows with known true probabilities and balanced groups."""
    rng = np.random.default_rng(5)
    n = 6000
    truth = 1 / (1 + np.exp(-rng.normal(-1.2, 1.2, n)))
    y = (rng.random(n) < truth).astype(int)
    meta = pd.DataFrame(
        {
            "sex": rng.choice(["F", "M"], n),
            "age_band": rng.choice(["18-24", "25-34", "35+"], n),
            "local": rng.choice(["local", "non_local"], n),
        }
    )
    return y, truth, meta, rng


def _noisy(p: np.ndarray, rng: np.random.Generator, scale: float) -> np.ndarray:
    logit = np.log(p / (1 - p)) + rng.normal(0, scale, len(p))
    noisy: np.ndarray = 1 / (1 + np.exp(-logit))
    return noisy


def _failed(criteria: list[Criterion]) -> set[str]:
    return {c.name for c in criteria if not c.passed}


def test_gate_promotes_an_equal_candidate_and_says_why(
    rows: tuple[np.ndarray, np.ndarray, pd.DataFrame, np.random.Generator],
) -> None:
    y, truth, meta, _ = rows
    criteria = judge(y, truth, meta, threshold=THRESHOLD, gate=GateConfig.load(), baseline=truth, champion=truth)
    assert not _failed(criteria)
    names = {c.name for c in criteria}
    assert {"roc_auc_vs_champion", "brier_vs_champion", "log_loss_vs_baseline", "flags"} <= names
    assert {"calibration_within_groups", "largest_fpr_gap", "largest_fnr_gap"} <= names
    assert all("CI" in c.message for c in criteria if c.name.endswith("_vs_champion"))


def test_gate_refuses_a_candidate_worse_than_the_champion(
    rows: tuple[np.ndarray, np.ndarray, pd.DataFrame, np.random.Generator],
) -> None:
    y, truth, meta, rng = rows
    worse = _noisy(truth, rng, 1.0)
    criteria = judge(y, worse, meta, threshold=THRESHOLD, gate=GateConfig.load(), champion=truth)
    assert {"roc_auc_vs_champion", "brier_vs_champion", "log_loss_vs_champion"} <= _failed(criteria)
    assert not any(name.endswith("_vs_baseline") for name in _failed(criteria))


def test_gate_refuses_a_candidate_worse_than_the_baseline(
    rows: tuple[np.ndarray, np.ndarray, pd.DataFrame, np.random.Generator],
) -> None:
    y, truth, meta, rng = rows
    worse = _noisy(truth, rng, 1.0)
    criteria = judge(y, worse, meta, threshold=THRESHOLD, gate=GateConfig.load(), baseline=truth)
    assert {"roc_auc_vs_baseline", "brier_vs_baseline"} <= _failed(criteria)


def test_margin_decides_a_slightly_worse_candidate(
    rows: tuple[np.ndarray, np.ndarray, pd.DataFrame, np.random.Generator],
) -> None:
    """A candidate a little worse than the champion passes with a wide margin and fails with none."""
    y, truth, meta, rng = rows
    slightly = _noisy(truth, rng, 0.25)
    wide = GateConfig.load().model_copy(
        update={
            "comparison": GateConfig.load().comparison.model_copy(
                update={"auc_margin": 0.05, "brier_margin": 0.01, "log_loss_margin": 0.05}
            )
        }
    )
    assert not {
        n
        for n in _failed(judge(y, slightly, meta, threshold=THRESHOLD, gate=wide, champion=truth))
        if n.endswith("_vs_champion")
    }
    none = wide.model_copy(
        update={
            "comparison": wide.comparison.model_copy(
                update={"auc_margin": 0.0, "brier_margin": 0.0, "log_loss_margin": 0.0}
            )
        }
    )
    assert "log_loss_vs_champion" in _failed(judge(y, slightly, meta, threshold=THRESHOLD, gate=none, champion=truth))


def test_a_model_flagging_nobody_is_refused_for_that_and_its_gaps_only_warn(
    rows: tuple[np.ndarray, np.ndarray, pd.DataFrame, np.random.Generator],
) -> None:
    y, truth, meta, _ = rows
    silent = truth * 0.2  # every probability below the cut-off, and a fifth of the true risk
    criteria = {c.name: c for c in judge(y, silent, meta, threshold=THRESHOLD, gate=GateConfig.load())}
    assert not criteria["flags"].passed and "flags nobody" in criteria["flags"].message
    for name in ("largest_fpr_gap", "largest_fnr_gap"):
        assert criteria[name].verdict == "warn" and "not measurable" in criteria[name].message
        assert "sex=F (0 flagged)" in criteria[name].message
    # its probabilities are a fifth of the truth: every group shows it
    assert not criteria["calibration_within_groups"].passed
    everybody = {c.name: c for c in judge(y, np.full(len(y), 0.9), meta, threshold=THRESHOLD, gate=GateConfig.load())}
    assert not everybody["flags"].passed and "flags everybody" in everybody["flags"].message


def test_report_and_gate_share_the_fairness_checks(
    rows: tuple[np.ndarray, np.ndarray, pd.DataFrame, np.random.Generator],
) -> None:
    """The report's verdicts, gaps and intervals are the gate's, by the gate's rule."""
    y, truth, meta, rng = rows
    prob = _noisy(truth, rng, 0.5)
    gate = GateConfig.load()
    report = evaluate(y, prob, groups=meta, threshold=THRESHOLD, fairness=gate.fairness)
    criteria = {c.name: c for c in judge(y, prob, meta, threshold=THRESHOLD, gate=gate)}
    assert report.groups is not None and report.groups.checks is not None
    for verdict in report.groups.checks.verdicts():
        c = criteria[verdict.name]
        assert (c.passed, c.warning, c.message) == (verdict.passed, verdict.warning, verdict.message)
        assert c.value == pytest.approx(verdict.value, nan_ok=True)
    assert report.groups.largest_fpr_gap == criteria["largest_fpr_gap"].value
    assert report.groups.largest_fnr_gap == criteria["largest_fnr_gap"].value
    frame = meta.assign(f=(prob >= THRESHOLD), y=y)
    by_hand = max(frame.query("y == 0").groupby(g)["f"].mean().agg(np.ptp) for g in gate.fairness.error_rates.gated)
    assert criteria["largest_fpr_gap"].value == pytest.approx(by_hand)
    by_hand = max(
        (1 - frame.query("y == 1").groupby(g)["f"].mean()).agg(np.ptp) for g in gate.fairness.error_rates.gated
    )
    assert criteria["largest_fnr_gap"].value == pytest.approx(by_hand)


def test_paired_bootstrap_is_seeded_and_centred_on_the_difference(
    rows: tuple[np.ndarray, np.ndarray, pd.DataFrame, np.random.Generator],
) -> None:
    y, truth, _, rng = rows
    other = _noisy(truth, rng, 0.5)
    a = paired_bootstrap(y, truth, other, resamples=200, seed=3)
    b = paired_bootstrap(y, truth, other, resamples=200, seed=3)
    assert a == b
    for d in a.values():
        assert d.low <= d.delta <= d.high
    assert a["roc_auc"].better() and a["brier"].better()


@pytest.mark.parametrize(
    ("loader", "text", "key"),
    [
        (GateConfig.load, "ece_limt: 0.02", "ece_limt"),
        (GateConfig.load, "comparison: {resamples: 1000, sed: 1}", "comparison.sed"),
        (GateConfig.load, "fairness: {error_rates: {min_flagged: many}}", "fairness.error_rates.min_flagged"),
        (GateConfig.load, "fairness: {calibration: {tolerance: 0.8}}", "fairness.calibration.tolerance"),
        (GateConfig.load, "fairness: {groupings: [sex, age_band]}", "fairness"),
        (TrainConfig.load, "refit_on_vaild: true", "refit_on_vaild"),
        (TrainConfig.load, "booster: {learning_rat: 0.1}", "booster.learning_rat"),
        (TrainConfig.load, "calibration: isotonik", "calibration"),
    ],
)
def test_config_files_refuse_unknown_keys_and_bad_values(
    tmp_path: Path, loader: Callable[[Path], GateConfig | TrainConfig], text: str, key: str
) -> None:
    import importlib.resources as resources

    package, name = ("training", "promotion.yaml") if loader == GateConfig.load else ("training", "params.yaml")
    original = resources.files(package).joinpath(name).read_text()
    top = text.split(":")[0]
    kept = [line for line in original.splitlines() if not line.startswith(f"{top}:")]
    if top in ("booster", "comparison", "fairness"):  # drop the section's indented lines too
        kept = _without_section(original, top)
    path = tmp_path / name
    path.write_text("\n".join(kept) + "\n" + text + "\n")
    with pytest.raises(ConfigError) as err:
        loader(path)
    message = str(err.value)
    assert str(path) in message and f"'{key}'" in message
    if top == "calibration":
        assert "'auto', 'platt' or 'isotonic'" in message
    if "unknown key" in message:
        assert "allowed keys:" in message


def _without_section(text: str, section: str) -> list[str]:
    out, skipping = [], False
    for line in text.splitlines():
        if line.startswith(f"{section}:"):
            skipping = True
            continue
        if skipping and (line.startswith(" ") or not line.strip()):
            continue
        skipping = False
        out.append(line)
    return out


def test_the_shipped_config_files_load() -> None:
    assert TrainConfig.load().booster.num_threads >= 1
    assert GateConfig.load().fairness.groupings
    with pytest.raises(ConfigError, match=r"search\.budget"):
        TrainConfig.load().override(search={"budget": 0})


def test_calibrator_refuses_an_unknown_method() -> None:
    from models.estimator import Calibrator

    with pytest.raises(ValueError, match="unknown calibration method 'isotonik'"):
        Calibrator("isotonik").fit(np.array([0.0, 1.0, 2.0, 3.0]), np.array([0, 0, 1, 1]))  # type: ignore[arg-type]  # the bad name is the test


class _Fixed:
    """A fitted model stand-in that returns fixed probabilities."""

    def __init__(self, prob: np.ndarray, kind: str):
        self.prob, self.kind = prob, kind

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.prob


@pytest.mark.parametrize(
    ("booster_noise", "logistic_noise", "expected"),
    [
        (0.0, 1.0, "lightgbm"),  # the booster is much better: it earns its place
        (1.0, 0.0, "logistic"),  # the logistic model is better
        (0.0, 0.0, "logistic"),  # equal: the simpler model
    ],
)
def test_the_logistic_model_is_the_candidate_unless_the_booster_earns_its_place(
    rows: tuple[np.ndarray, np.ndarray, pd.DataFrame, np.random.Generator],
    booster_noise: float,
    logistic_noise: float,
    expected: str,
) -> None:
    from types import SimpleNamespace

    from training.fit import choose_candidate

    y, truth, meta, _ = rows
    rng = np.random.default_rng(8)
    booster = _Fixed(_noisy(truth, rng, booster_noise) if booster_noise else truth, "lightgbm")
    logistic = _Fixed(_noisy(truth, rng, logistic_noise) if logistic_noise else truth, "logistic")
    test = SimpleNamespace(X=meta, y=y)
    fit = SimpleNamespace(part=lambda name: test, model=booster, baseline=logistic)
    choice = choose_candidate(fit, GateConfig.load().comparison)  # type: ignore[arg-type]  # a stand-in StageFit
    assert choice.kind == expected, choice.reason
    assert "logistic - booster" in choice.reason


def test_ece_refuses_only_on_evidence_of_miscalibration() -> None:
    """An ECE above the limit on a few hundred rows of a perfectly calibrated score warns (chance alone gets
    there); the same distortion on many rows refuses; an ECE within the limit passes."""
    from evaluation import expected_calibration_error

    gate = GateConfig.load()
    rng = np.random.default_rng(5)
    small_p = rng.beta(1.2, 12, 300)
    small = [(y := rng.random(300) < small_p, expected_calibration_error(y, small_p)) for _ in range(50)]
    noisy = [ece_criterion(y, small_p, ece, gate) for y, ece in small if ece > gate.ece_limit]
    assert noisy and sum(c.passed for c in noisy) >= 0.8 * len(noisy)
    assert all(c.warning and "too few rows" in c.message for c in noisy if c.passed)
    big_p = rng.beta(1.2, 12, 20_000)
    y = rng.random(20_000) < np.minimum(1.0, 1.5 * big_p)  # a score too low by a third
    refused = ece_criterion(y, big_p, expected_calibration_error(y, big_p), gate)
    assert not refused.passed and "by chance" in refused.message
    fine = rng.random(20_000) < big_p
    assert ece_criterion(fine, big_p, expected_calibration_error(fine, big_p), gate).verdict == "pass"
