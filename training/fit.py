"""Fit one stage: person-level (optionally temporal) split, small search, calibrated booster, logistic model."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss

from evaluation import Difference, paired_bootstrap
from evaluation.monitoring import build_profile
from features.labels import StageFrame
from models.estimator import BoosterParams, LinearStageModel, StageEstimator, StageModel
from training.config import ComparisonConfig, SplitConfig, TrainConfig

log = logging.getLogger(__name__)
PARTS = ("train", "valid", "calib", "test")


#: salt of the test part's hash: the one seed 0 always used, so the test persons never depend on the split seed
#: and the default split (seed 0) is the one earlier versions made
TEST_SALT = "#0"


def _unit_hash(ids: pd.Series, salt: str) -> np.ndarray:
    """A number in [0, 1) per id, fixed by the id and the salt alone (so stable as data grow)."""
    hashed = pd.util.hash_pandas_object(ids + salt, index=False).to_numpy() % 1_000_003
    return np.asarray(hashed / 1_000_003)


def split_persons(meta: pd.DataFrame, config: SplitConfig, *, seed: int = 0) -> np.ndarray:
    """Assign each row to train/valid/calib/test; all rows of a person land in the same part.

    The test part is chosen by a hash of the person id that does not depend on ``seed`` (with
    ``temporal``: the persons with the latest supervision starts), so every retrain on the same or on
    grown data holds out the same persons, persons that no earlier model with this split was trained,
    tuned or calibrated on. ``seed`` only reshuffles the other persons between train, valid and calib:
    each gets a place in ``[test, 1)`` from a second hash of the id salted with the seed, cut at the
    shares of valid and calib. Seed 0 of the random split places them by the test hash itself, which
    gives exactly the split seed 0 always gave (figures measured with it stay reproducible).
    """
    ids = meta["person_id"].astype(str)
    if config.temporal:
        first_start = meta.groupby("person_id")["supervision_start"].transform("min")
        test = (first_start > first_start.quantile(1 - config.test)).to_numpy()
    else:
        test = _unit_hash(ids, TEST_SALT) < config.test
    if seed == 0 and not config.temporal:
        place = _unit_hash(ids, TEST_SALT)  # uniform on [test, 1) for the persons not in test
    else:
        place = config.test + (1 - config.test) * _unit_hash(ids, f"#{seed}")
    valid_to = config.test + config.valid
    part = np.full(len(meta), "train", dtype=object)
    part[(~test) & (place < valid_to)] = "valid"
    part[(~test) & (place >= valid_to) & (place < valid_to + config.calib)] = "calib"
    part[test] = "test"
    return part


@dataclass
class StageFit:
    """Everything one stage's training produced."""

    frame: StageFrame
    parts: np.ndarray
    model: StageModel
    baseline: LinearStageModel
    search: pd.DataFrame
    chosen: dict[str, Any]
    config: TrainConfig
    seed: int
    #: ``started_ms`` (when the fit began, epoch milliseconds) and ``fit_seconds`` (how long it took)
    extra: dict[str, Any] = field(default_factory=dict)

    def part(self, name: str) -> StageFrame:
        return self.frame.subset(self.parts == name)

    def persons(self) -> pd.DataFrame:
        """One row per person: ``person_id`` (as text) and the part it was in (train, valid, calib, test)."""
        ids = self.frame.meta["person_id"].astype(str).to_numpy()
        table = pd.DataFrame({"person_id": ids, "part": self.parts.astype(str)})
        return table.drop_duplicates("person_id").reset_index(drop=True)


def _search(
    frame: StageFrame, parts: np.ndarray, config: TrainConfig, seed: int
) -> tuple[StageModel, pd.DataFrame, dict[str, Any]]:
    """Try ``budget`` grid points; keep the smallest within ``within_logloss`` of the best."""
    tr, va = frame.subset(parts == "train"), frame.subset(parts == "valid")
    ca = frame.subset(parts == "calib")
    rows = []
    for point in config.search.grid[: config.search.budget]:
        params = BoosterParams(**{**config.booster.model_dump(), **point.model_dump()})
        model = StageModel(
            frame.stage,
            params,
            calibration=config.calibration,
            random_state=seed,
            protected_inputs=tuple(config.protected_inputs),
        ).fit(tr.X, tr.y, X_valid=va.X, y_valid=va.y, X_calib=ca.X, y_calib=ca.y)
        raw = model.raw_score(va.X)
        loss = log_loss(va.y, 1 / (1 + np.exp(-raw)), labels=[0, 1])
        size = model.size
        rows.append(
            {
                **point.model_dump(),
                "valid_logloss": loss,
                "trees": size["trees"],
                "leaves": size["leaves"],
                "cost": size["leaves"] * params.max_depth**2,
                "model": model,
            }
        )
        log.info("%s %s: valid logloss %.5f, %d trees", frame.stage, point, loss, size["trees"])
    table = pd.DataFrame(rows)
    best = table["valid_logloss"].min()
    near = table[table["valid_logloss"] <= best + config.search.within_logloss]
    chosen = near.sort_values(["cost", "valid_logloss"]).iloc[0]
    return chosen["model"], table.drop(columns="model"), {k: chosen[k] for k in table.columns if k != "model"}


def refit_rounds(stopped_at: int, n_train: int, n_valid: int, config: TrainConfig) -> int:
    """Rounds of the refit on train + valid: the early-stopping rounds, scaled to the larger set if configured."""
    if not config.refit_scale_rounds:
        return stopped_at
    cap = config.booster.max_rounds
    return max(1, min(cap, round(stopped_at * (n_train + n_valid) / n_train)))


def _refit(model: StageModel, frame: StageFrame, parts: np.ndarray, config: TrainConfig) -> dict[str, int]:
    """Refit the chosen booster on train + valid with the rounds early stopping chose; recalibrate on calib."""
    n_train, n_valid = int((parts == "train").sum()), int((parts == "valid").sum())
    stopped_at = model.best_iteration_
    rounds = refit_rounds(stopped_at, n_train, n_valid, config)
    rows, ca = frame.subset(np.isin(parts, ["train", "valid"])), frame.subset(parts == "calib")
    model.refit(rows.X, rows.y, rounds=rounds, X_calib=ca.X, y_calib=ca.y)
    log.info(
        "%s: refit on %d train + valid rows, %d rounds (early stopping: %d)",
        frame.stage,
        len(rows.y),
        rounds,
        stopped_at,
    )
    size = model.size
    return {
        "early_stopping_trees": stopped_at,
        "refit_rows": len(rows.y),
        "trees": size["trees"],
        "leaves": size["leaves"],
        "cost": size["leaves"] * size["max_depth"] ** 2,
    }


def fit_stage(
    frame: StageFrame, *, config: TrainConfig | None = None, seed: int = 0, temporal: bool | None = None
) -> StageFit:
    """Split by person, search, fit the calibrated booster and the calibrated logistic model.

    The logistic model is fitted on the booster's training and validation rows and calibrated on the
    same calibration rows: it is every comparison's baseline, and the candidate when the booster is not better.

    With ``refit_on_valid`` the chosen booster is then refitted on train + valid with the number of rounds
    early stopping chose on valid (see :func:`refit_rounds`) and calibrated again on the calib rows.

    Each model then keeps the reference statistics of the rows it was built from (every part but test:
    :meth:`~models.estimator.StageEstimator.keep_risk_reference`), which the tier policy's relative
    cut-offs resolve against, and their monitoring profile (:func:`evaluation.monitoring.build_profile`:
    each input's bins and the score's distribution), which ``riskctl monitor`` compares the service's
    assessments with.
    """
    started, clock = time.time(), time.perf_counter()
    config = config or TrainConfig.load()
    split = config.split if temporal is None else config.split.model_copy(update={"temporal": temporal})
    parts = split_persons(frame.meta, split, seed=seed)
    for name in PARTS:
        y = frame.y[parts == name]
        if len(y) == 0 or y.min() == y.max():
            raise ValueError(
                f"{frame.stage.value}: the {name} split has {len(y)} rows and a single class; use more persons"
            )
    model, table, chosen = _search(frame, parts, config, seed)
    fit_rows = np.isin(parts, ["train", "valid"])
    if config.refit_on_valid:
        chosen.update(_refit(model, frame, parts, config))
    ca = frame.subset(parts == "calib")
    baseline = LinearStageModel(
        frame.stage,
        C=config.baseline.C,
        calibration=config.calibration,
        random_state=seed,
        protected_inputs=tuple(config.protected_inputs),
    ).fit(frame.X[fit_rows], frame.y[fit_rows], X_calib=ca.X, y_calib=ca.y)
    # the tier policy's relative cut-offs (a multiple of the base rate, a share to flag) resolve against
    # these rows, the persons each model was built from, whatever data it scores later
    built_from = frame.subset(parts != "test")
    for fitted in (model, baseline):
        fitted.keep_risk_reference(built_from.X, built_from.y)
        # what the monitor compares the assessments in service with (riskctl monitor): the same rows, binned
        profile = build_profile(
            frame.stage.value,
            built_from.X,
            y_prob=fitted.predict_proba(built_from.X),
            y_true=built_from.y,
            names=fitted.feature_names,
        )
        fitted.keep_reference_profile(profile.record())
    timing = {"started_ms": int(started * 1000), "fit_seconds": time.perf_counter() - clock}
    return StageFit(frame, parts, model, baseline, table, chosen, config, seed, extra=timing)


@dataclass(frozen=True)
class MetricVerdict:
    """One metric of the logistic model against the booster on the test rows (``delta``: logistic - booster)."""

    difference: Difference
    margin: float

    @property
    def metric(self) -> str:
        return self.difference.metric

    @property
    def leader(self) -> str:
        """Which model scores better by the point estimate as shown (4 decimals): ``logistic``, ``booster``
        or ``tie`` (a difference shown as +0.0000 leads nowhere, so no reason contradicts its figure)."""
        d = self.difference
        shown = float(f"{d.delta:.4f}")
        if shown == 0:
            return "tie"
        return "logistic" if (shown > 0) == (d.metric == "roc_auc") else "booster"

    @property
    def logistic_within(self) -> bool:
        """The logistic model passes the gate's test against the booster (no worse within the margin)."""
        return self.difference.no_worse(self.margin)

    @property
    def booster_within(self) -> bool:
        """The booster passes the same test against the logistic model."""
        return _negated(self.difference).no_worse(self.margin)

    def describe(self) -> str:
        """The figures and what they say, in words that hold for them."""
        d = self.difference
        who = {"tie": "equal", "logistic": "the logistic model scores better", "booster": "the booster scores better"}
        within = {True: "within", False: "beyond"}
        return (
            f"{d.metric} {d.delta:+.4f} ({d.level:.0%} CI {d.low:+.4f} to {d.high:+.4f}): {who[self.leader]}; "
            f"logistic {within[self.logistic_within]} the margin {self.margin:g}, "
            f"booster {within[self.booster_within]} it"
        )


@dataclass(frozen=True)
class CandidateChoice:
    """Which fitted model becomes the registered candidate, and why (``differences``: logistic - booster).

    ``alternative`` is the other model: it is registered too, beside the candidate (training.tracking).
    """

    model: StageEstimator
    reason: str
    differences: dict[str, Difference]
    alternative: StageEstimator | None = None

    @property
    def kind(self) -> str:
        return self.model.kind


def _negated(d: Difference) -> Difference:
    """The same difference the other way round (second model - first), interval flipped."""
    return Difference(d.metric, d.reference, d.model, -d.delta, -d.high, -d.low, d.level)


def choose_kind(verdicts: list[MetricVerdict]) -> tuple[str, str]:
    """``("lightgbm" | "logistic", reason)``: the rule of :func:`choose_candidate` on the per-metric verdicts.

    The booster takes the place only when, in at least one metric, it scores better and the logistic
    model is beyond the margin, and it is itself within the margin in every metric; otherwise the
    logistic model does. The reason names a metric only for what is true of it, then gives every figure.
    """
    ahead = [v.metric for v in verdicts if v.leader == "booster" and not v.logistic_within]
    booster_out = [v.metric for v in verdicts if not v.booster_within]
    figures = "; ".join(v.describe() for v in verdicts)
    if ahead and not booster_out:
        why = (
            f"the booster scores better in {', '.join(ahead)}, where the logistic model is beyond the gate's "
            "margin, and the booster is within the margin in every metric"
        )
        return "lightgbm", f"{why} (logistic - booster: {figures})"
    leads = [v.metric for v in verdicts if v.leader == "booster"]
    if ahead:
        why = (
            f"the booster scores better in {', '.join(ahead)}, where the logistic model is beyond the margin, "
            f"but the booster is itself beyond the margin in {', '.join(booster_out)}: neither is shown better "
            "(too few rows to tell), so the simpler, interpretable model"
        )
    elif leads:
        why = (
            f"the booster scores better in {', '.join(leads)}, but the logistic model is within the gate's margin "
            "there, so the simpler, interpretable model"
        )
    else:
        why = "the logistic model scores at least as well as the booster in every metric"
    return "logistic", f"{why} (logistic - booster: {figures})"


def choose_candidate(fit: StageFit, comparison: ComparisonConfig) -> CandidateChoice:
    """The logistic model if it passes the gate's comparison against the booster, else the booster.

    Both are scored on the test rows, the rows the gate compares on, and the logistic model is held to
    the gate's own test: for AUC, Brier and log loss the paired bootstrap interval of (logistic - booster)
    stays within the margin on the worse side. The booster takes the place only when it passes the same
    test against the logistic model in every metric (so it will pass the gate's comparison with the
    baseline) and, in at least one metric, scores better while the logistic model fails the test
    (:func:`choose_kind`). Otherwise, including when the rows are too few to tell, the simpler,
    interpretable model is the candidate. The other model is the choice's ``alternative``.
    """
    test = fit.part("test")
    diffs = paired_bootstrap(
        test.y,
        fit.baseline.predict_proba(test.X),
        fit.model.predict_proba(test.X),
        resamples=comparison.resamples,
        level=comparison.level,
        seed=comparison.seed,
    )
    margins = {
        "roc_auc": comparison.auc_margin,
        "brier": comparison.brier_margin,
        "log_loss": comparison.log_loss_margin,
    }
    kind, reason = choose_kind([MetricVerdict(d, margins[m]) for m, d in diffs.items()])
    chosen, other = (fit.model, fit.baseline) if kind == "lightgbm" else (fit.baseline, fit.model)
    return CandidateChoice(chosen, reason, diffs, alternative=other)
