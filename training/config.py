"""Versioned configuration files of training: model settings and the promotion gate.

Both files are read into strict, frozen pydantic models: an unknown key (a typo such as
``ece_limt``) or a bad value is refused with :class:`ConfigError`, which names the file, the key
and what is allowed. Change a loaded setting with :meth:`TrainConfig.override`, which validates again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from evaluation import FairnessRule
from models.policy_file import load_policy_file

#: calibration of a stage model's raw score: chosen by cross-validated Brier, or one of the two methods
CalibrationMethod = Literal["auto", "platt", "isotonic"]


class ConfigError(ValueError):
    """A configuration file that does not validate: names the file, the key and the allowed values."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitConfig(_Strict):
    test: float = Field(0.2, gt=0, lt=1, description="share of persons held out for evaluation")
    valid: float = Field(0.1, gt=0, lt=1, description="share of persons for early stopping")
    calib: float = Field(0.15, gt=0, lt=1, description="share of persons for calibration")
    temporal: bool = Field(True, description="test on the latest supervision starts")

    @model_validator(mode="after")
    def _shares(self) -> SplitConfig:
        if self.test + self.valid + self.calib >= 0.9:
            raise ValueError("test + valid + calib shares leave under 10% for training")
        return self


class GridPoint(_Strict):
    """One point of the booster search grid."""

    num_leaves: int = Field(ge=2)
    max_depth: int = Field(ge=1)
    min_child_samples: int = Field(ge=1)


class SearchConfig(_Strict):
    budget: int = Field(6, ge=1, description="grid points tried, in the order listed")
    within_logloss: float = Field(0.0005, ge=0, description="keep the smallest model this close to the best")
    grid: tuple[GridPoint, ...] = Field(min_length=1)


class BoosterConfig(_Strict):
    """LightGBM settings shared by every grid point (:class:`models.estimator.BoosterParams`)."""

    learning_rate: float = Field(0.05, gt=0, le=1)
    max_rounds: int = Field(400, ge=1)
    early_stopping: int = Field(30, ge=1)
    feature_fraction: float = Field(0.8, gt=0, le=1)
    bagging_fraction: float = Field(0.8, gt=0, le=1)
    lambda_l2: float = Field(1.0, ge=0)
    num_threads: int = Field(1, ge=1)


class BaselineConfig(_Strict):
    """The logistic model: baseline of every comparison, and the candidate when the booster is not better."""

    C: float = Field(0.5, gt=0, description="inverse L2 regularisation strength")


class TrainConfig(_Strict):
    """``training/params.yaml``."""

    version: str
    split: SplitConfig
    search: SearchConfig
    booster: BoosterConfig = BoosterConfig()
    calibration: CalibrationMethod = "auto"
    baseline: BaselineConfig = BaselineConfig()
    # after the search: refit the chosen booster on train + valid rows with the early-stopping number of
    # rounds (times (n_train + n_valid) / n_train with ``refit_scale_rounds``, at most ``max_rounds``)
    refit_on_valid: bool = False
    refit_scale_rounds: bool = True
    # sex and household registration are not model inputs unless listed here (design.md, "Protected attributes")
    protected_inputs: list[Literal["sex", "local"]] = Field(default_factory=list)

    @classmethod
    def load(cls, path: Path | None = None) -> TrainConfig:
        return _load(cls, path, "training", "params.yaml")

    def override(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` merged in (nested sections as dicts), validated like the file."""
        try:
            return TrainConfig.model_validate(_merge(self.model_dump(), changes))
        except ValidationError as err:
            raise ConfigError("override of training/params.yaml: " + _problems(TrainConfig, err)) from None


class ComparisonConfig(_Strict):
    """Paired bootstrap of the candidate against the baseline and the champion on the same test rows."""

    resamples: int = Field(1000, ge=100, description="bootstrap resamples")
    level: float = Field(0.95, gt=0.5, lt=1, description="two-sided confidence level of the intervals")
    seed: int = Field(0, description="seed of the resampling")
    auc_margin: float = Field(0.01, ge=0, description="the candidate's AUC may be lower by at most this")
    brier_margin: float = Field(0.0005, ge=0, description="the candidate's Brier may be higher by at most this")
    log_loss_margin: float = Field(0.003, ge=0, description="the candidate's log loss may be higher by at most this")
    min_rows: int = Field(
        2000, ge=0, description="the champion is compared on at least this many rows of persons no compared model saw"
    )


class FaceValidityConfig(_Strict):
    """The gate's metamorphic check: adverse facts added to a seeded synthetic cohort (design.md, "Face validity")."""

    persons: int = Field(300, ge=20, description="synthetic persons each adverse fact is added to")
    seed: int = Field(0, description="seed of the synthetic cohort")
    tolerance: float = Field(0.001, ge=0, lt=0.05, description="a risk may fall by at most this (isotonic ties)")


class GateConfig(_Strict):
    """``training/promotion.yaml``: the criteria a new version must clear to become champion."""

    version: str
    comparison: ComparisonConfig = ComparisonConfig()
    ece_limit: float = Field(gt=0)
    fairness: FairnessRule = FairnessRule()
    face_validity: FaceValidityConfig = FaceValidityConfig()

    @classmethod
    def load(cls, path: Path | None = None) -> GateConfig:
        return _load(cls, path, "training", "promotion.yaml")


_C = TypeVar("_C", bound=BaseModel)


def _load(cls: type[_C], path: Path | None, package: str, name: str) -> _C:
    return load_policy_file(
        cls, path, default=(package, name), error=ConfigError, describe=lambda err, _raw: _problems(cls, err)
    )


def _problems(cls: type[BaseModel], err: ValidationError) -> str:
    return "; ".join(_problem(cls, e) for e in err.errors())


def _problem(cls: type[BaseModel], error: Any) -> str:
    """One validation error as 'key.path: message (allowed: ...)'."""
    key = ".".join(str(p) for p in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"unknown key '{key}' (allowed keys: {', '.join(_keys_at(cls, error['loc'][:-1]))})"
    message = f"'{key}': {error['msg']}"
    expected = (error.get("ctx") or {}).get("expected")
    return f"{message} (allowed: {expected})" if expected and "expected" not in message else message


def _keys_at(cls: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys a section of the file may have: the fields of the model at ``loc`` (list indices skipped)."""
    model: Any = cls
    for part in loc:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[part].annotation
        args = getattr(annotation, "__args__", ())
        model = next((a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if model is None:
            return []
    return list(model.model_fields)


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
