"""The monitor's limits (``evaluation/monitoring/monitoring.yaml``), read by the project's one policy-file loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from models.policy_file import load_policy_file

DEFAULT_FILE = ("evaluation.monitoring", "monitoring.yaml")


class MonitorConfigError(ValueError):
    """A monitoring settings file that cannot be read (names the file and each problem)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PsiLimits(_Frozen):
    warn: float = Field(0.1, gt=0)
    features: float = Field(0.25, gt=0)
    score: float = Field(0.2, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> PsiLimits:
        if self.warn > min(self.features, self.score):
            raise ValueError(f"psi.warn ({self.warn}) must not exceed the limits ({self.features}, {self.score})")
        return self


class ShareLimits(_Frozen):
    max_change_points: float = Field(10.0, gt=0, le=100)
    bounds: dict[str, dict[str, tuple[float, float]]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _bounds(self) -> ShareLimits:
        for column, values in self.bounds.items():
            for value, (low, high) in values.items():
                if not 0 <= low <= high <= 1:
                    raise ValueError(f"shares.bounds.{column}.{value}: need 0 <= low <= high <= 1, got [{low}, {high}]")
        return self


class DecisionRateLimit(_Frozen):
    max: float = Field(0.25, ge=0, le=1)


class PerformanceLimits(_Frozen):
    max_auc_drop: float = Field(0.03, ge=0)
    max_brier_rise: float = Field(0.01, ge=0)
    rate_ratio: tuple[float, float] = (0.67, 1.5)

    @model_validator(mode="after")
    def _ratio(self) -> PerformanceLimits:
        low, high = self.rate_ratio
        if not 0 < low <= 1 <= high:
            raise ValueError(f"performance.rate_ratio: need 0 < low <= 1 <= high, got [{low}, {high}]")
        return self


class MonitorConfig(_Frozen):
    """Limits of ``riskctl monitor``; :meth:`load` reads ``monitoring.yaml`` (or another file)."""

    version: str
    min_rows: int = Field(200, ge=1)
    psi: PsiLimits = PsiLimits()
    shares: ShareLimits = ShareLimits()
    decision_rate: DecisionRateLimit = DecisionRateLimit()
    performance: PerformanceLimits = PerformanceLimits()

    @classmethod
    def load(cls, path: Path | str | None = None) -> MonitorConfig:
        """The file at ``path``, or the shipped ``monitoring.yaml``.

        Raises
        ------
        MonitorConfigError
            Not YAML, or a key unknown or out of range (each named).
        """
        return load_policy_file(cls, path, default=DEFAULT_FILE, error=MonitorConfigError, describe=_describe)


def _describe(exc: ValidationError, raw: Any) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors())
