"""Settings of the project's data, training and registry: one typed object read from the environment
(prefix ``RISK_``).

Embedded defaults need no server: MLflow tracks into a SQLite file with local artifacts under
``RISK_HOME`` (default ``./var``); a real MLflow server (``MLFLOW_TRACKING_URI``) is taken by
configuration alone. The service's own settings (stores, tokens, limits, checkpoints, console) extend
these in :class:`serving.settings.ServiceSettings`. Nothing here does work at import time;
:func:`get_settings` reads the environment when called.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from features.vocab import Stage


class Settings(BaseSettings):
    """Home, tracking URI, experiment and registry names and aliases; every field can be set as ``RISK_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="RISK_", extra="ignore")

    home: Path = Field(Path("var"), description="working directory for local stores and outputs")
    tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; default MLFLOW_TRACKING_URI or local SQLite"
    )
    experiment_prefix: str = Field("reoffence", description="MLflow experiment name prefix")
    registry_prefix: str = Field("reoffence", description="registered model name prefix: <prefix>-<stage>")
    champion_alias: str = "champion"
    challenger_alias: str = "challenger"

    def resolved_tracking_uri(self) -> str:
        if self.tracking_uri:
            return self.tracking_uri
        if os.environ.get("MLFLOW_TRACKING_URI"):
            return os.environ["MLFLOW_TRACKING_URI"]
        return f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    def artifact_location(self) -> str:
        return (self.home / "mlartifacts").resolve().as_uri()

    def model_name(self, stage: Stage | str) -> str:
        return f"{self.registry_prefix}-{Stage(stage).value}"

    def experiment_name(self, stage: Stage | str) -> str:
        return f"{self.experiment_prefix}-{Stage(stage).value}"


def get_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with explicit overrides."""
    return Settings(**overrides)
