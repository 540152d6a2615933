"""Versioned configuration files of training: model settings and the promotion gate."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, model_validator


class SplitConfig(BaseModel):
    test: float = Field(0.2, gt=0, lt=1)
    valid: float = Field(0.1, gt=0, lt=1)
    calib: float = Field(0.15, gt=0, lt=1)
    temporal: bool = True

    @model_validator(mode="after")
    def _shares(self) -> SplitConfig:
        if self.test + self.valid + self.calib >= 0.9:
            raise ValueError("test + valid + calib shares leave under 10% for training")
        return self


class SearchConfig(BaseModel):
    budget: int = Field(6, ge=1)
    within_logloss: float = Field(0.0005, ge=0)
    grid: list[dict] = Field(min_length=1)


class TrainConfig(BaseModel):
    """``models/params.yaml``."""

    version: str
    split: SplitConfig
    search: SearchConfig
    booster: dict = {}
    calibration: str = "auto"
    baseline: dict = {}
    # after the search: refit the chosen booster on train + valid rows with the early-stopping number of
    # rounds (times (n_train + n_valid) / n_train with ``refit_scale_rounds``, at most ``max_rounds``)
    refit_on_valid: bool = False
    refit_scale_rounds: bool = True
    # sex and household registration are not model inputs unless listed here (design.md, "Protected attributes")
    protected_inputs: list[Literal["sex", "local"]] = Field(default_factory=list)

    @classmethod
    def load(cls, path: Path | None = None) -> TrainConfig:
        text = Path(path).read_text() if path else resources.files("models").joinpath("params.yaml").read_text()
        return cls.model_validate(yaml.safe_load(text))


class GateConfig(BaseModel):
    """``training/promotion.yaml``: the criteria a new version must clear to become champion."""

    version: str
    brier_tolerance: float = Field(ge=0)
    auc_tolerance: float = Field(0.0, ge=0)
    ece_limit: float = Field(gt=0)
    fpr_gap_limit: float = Field(gt=0)
    fairness_groups: list[str]
    min_group_size: int = 100

    @classmethod
    def load(cls, path: Path | None = None) -> GateConfig:
        text = Path(path).read_text() if path else resources.files("training").joinpath("promotion.yaml").read_text()
        return cls.model_validate(yaml.safe_load(text))
