"""The comparative promotion gate, the shared fairness checks and the strict configuration files."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation import Difference, evaluate, paired_bootstrap
from training.config import ConfigError, GateConfig, TrainConfig
from training.fit import MetricVerdict, choose_kind
from training.promote import Criterion, Reference, ece_criterion, judge

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


def test_the_champion_is_compared_only_on_the_rows_it_may_be_and_on_enough_of_them(
    rows: tuple[np.ndarray, np.ndarray, pd.DataFrame, np.random.Generator],
) -> None:
    """A reference's mask picks the compared rows (the figures are those rows' figures); below ``min_rows`` the
    comparison is one failing criterion with the count; an absent reference fails; the candidate itself passes."""
    y, truth, meta, rng = rows
    worse = _noisy(truth, rng, 1.0)
    mask = np.arange(len(y)) % 3 == 0
    gate = GateConfig.load()
    masked = judge(y, truth, meta, threshold=THRESHOLD, gate=gate, champion=Reference(prob=worse, rows=mask))
    alone = judge(y[mask], truth[mask], meta[mask], threshold=THRESHOLD, gate=gate, champion=worse[mask])
    pick = {c.name: c.value for c in masked if c.name.endswith("_vs_champion")}
    assert pick == {c.name: c.value for c in alone if c.name.endswith("_vs_champion")} and len(pick) == 3
    need = int(mask.sum()) + 1
    strict = gate.model_copy(update={"comparison": gate.comparison.model_copy(update={"min_rows": need})})
    few = judge(y, truth, meta, threshold=THRESHOLD, gate=strict, champion=Reference(prob=worse, rows=mask))
    refusal = [c for c in few if c.name.endswith("vs_champion")]
    assert [c.name for c in refusal] == ["vs_champion"] and not refusal[0].passed
    assert f"only {int(mask.sum()):,} test rows" in refusal[0].message
    full = judge(y, truth, meta, threshold=THRESHOLD, gate=strict, baseline=Reference(prob=worse, rows=mask))
    assert {"roc_auc_vs_baseline", "brier_vs_baseline"} <= {c.name for c in full}  # min_rows: the champion's
    absent = judge(y, truth, meta, threshold=THRESHOLD, gate=gate, baseline=Reference(absent="no column"))
    assert [(c.name, c.passed) for c in absent if "baseline" in c.name] == [("vs_baseline", False)]
    itself = judge(y, truth, meta, threshold=THRESHOLD, gate=gate, baseline=Reference(itself="the same model"))
    assert [(c.name, c.passed, c.verdict) for c in itself if "baseline" in c.name] == [("vs_baseline", True, "pass")]


def test_a_bound_just_past_the_margin_is_not_printed_as_the_margin() -> None:
    """A Brier bound of +0.000512 against a margin of 0.0005 fails, and says +0.00051, not +0.0005."""
    from training.promote import comparative_criteria

    gate = GateConfig.load()
    margin = gate.comparison.brier_margin
    over = Difference("brier", 0.0535, 0.0534, 0.0001, -0.0003, margin + 0.000012, 0.95)
    at = Difference("brier", 0.0535, 0.0534, 0.0001, -0.0003, margin, 0.95)
    (failed,) = comparative_criteria({"brier": over}, "champion", gate)
    (passed,) = comparative_criteria({"brier": at}, "champion", gate)
    assert not failed.passed and f"worse-side bound +0.00051 <= +{margin:g}" in failed.message
    assert passed.passed and f"worse-side bound +0.0005 <= +{margin:g}" in passed.message


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


_METRIC = "(?:roc_auc|brier|log_loss)"
_LIST = rf"({_METRIC}(?:, {_METRIC})*)"


@st.composite
def _verdicts(draw: st.DrawFn) -> list[MetricVerdict]:
    """Logistic - booster differences of every sign and size, intervals around them, margins as shipped or none."""
    out = []
    for metric in ("roc_auc", "brier", "log_loss"):
        delta = draw(st.one_of(st.just(0.0), st.floats(-0.00008, 0.00008), st.floats(-0.05, 0.05)))
        below, above = draw(st.floats(0, 0.03)), draw(st.floats(0, 0.03))
        margin = draw(st.sampled_from([0.0, 0.0005, 0.003, 0.01]))
        out.append(MetricVerdict(Difference(metric, 0.5, 0.5, delta, delta - below, delta + above, 0.95), margin))
    return out


def _booster_leads(metric: str, shown: float) -> bool:
    """From the figure as printed (logistic - booster): AUC higher is better, Brier and log loss lower."""
    return shown < 0 if metric == "roc_auc" else shown > 0


@given(verdicts=_verdicts())
@settings(max_examples=400, deadline=None)
def test_the_candidates_reason_never_contradicts_its_figures(verdicts: list[MetricVerdict]) -> None:
    """Every claim of the reason holds for the numbers it prints: who scores better in a metric (by the
    difference as shown), who is within or beyond the margin (by the interval), and the choice follows the rule."""
    kind, reason = choose_kind(verdicts)
    head, figures = reason.split(" (logistic - booster: ", 1)
    d = {v.metric: v.difference for v in verdicts}
    margin = {v.metric: v.margin for v in verdicts}
    clauses = re.findall(
        rf"({_METRIC}) ([+-]\d\.\d{{4}}) \(95% CI [+-]\d\.\d{{4}} to [+-]\d\.\d{{4}}\): "
        r"(the booster scores better|the logistic model scores better|equal); "
        r"logistic (within|beyond) the margin [^,]+, booster (within|beyond) it",
        figures,
    )
    shown = {m: float(x) for m, x, *_ in clauses}
    assert sorted(shown) == sorted(d), figures  # every metric, once

    def logistic_within(m: str) -> bool:  # logistic - booster, worse side for the logistic model
        return d[m].low >= -margin[m] if m == "roc_auc" else d[m].high <= margin[m]

    def booster_within(m: str) -> bool:  # the same interval read from the booster's side
        return d[m].high <= margin[m] if m == "roc_auc" else d[m].low >= -margin[m]

    for m, _, who, logistic, booster in clauses:
        expected = "equal" if shown[m] == 0 else "the booster scores better"
        if shown[m] != 0 and not _booster_leads(m, shown[m]):
            expected = "the logistic model scores better"
        assert who == expected, (m, shown[m], who)
        assert (logistic == "within") == logistic_within(m) and (booster == "within") == booster_within(m)
    for listed in re.findall(rf"the booster scores better in {_LIST}", head):
        assert all(_booster_leads(m, shown[m]) for m in listed.split(", ")), head
    for listed in re.findall(rf"the booster scores better in {_LIST}, where the logistic model is beyond", head):
        assert not any(logistic_within(m) for m in listed.split(", ")), head
    for listed in re.findall(rf"the booster scores better in {_LIST}, but the logistic model is within", head):
        assert all(logistic_within(m) for m in listed.split(", ")), head
    for listed in re.findall(rf"the booster is itself beyond the margin in {_LIST}", head):
        assert not any(booster_within(m) for m in listed.split(", ")), head
    if "scores at least as well as the booster in every metric" in head:
        assert not any(_booster_leads(m, shown[m]) for m in shown), head
    earns = any(_booster_leads(m, shown[m]) and not logistic_within(m) for m in d) and all(map(booster_within, d))
    assert kind == ("lightgbm" if earns else "logistic"), reason
    assert head.startswith("the booster scores better") or "at least as well" in head
