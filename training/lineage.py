"""What a trained version came from: the data's digest, the code's digest and commit, and the fit's fingerprint.

- :func:`data_digest`: a digest of the canonical tables' contents (every column and row, in order), so two
  folders holding the same records have the same digest wherever they sit.
- :func:`code_digest`: a digest of the source of the packages a fit runs (features, models, evaluation,
  training: ``.py`` and ``.yaml`` files), so an edit that is not committed yet still counts as other code.
- :func:`git_commit`: the project's commit (and whether the tree has changes), when it is a git checkout.
- :class:`FitRecipe`: data digest, settings, seed, split, stage and code digest; its
  :attr:`~FitRecipe.fingerprint` is what ``riskctl train`` compares with the registered versions' tag
  :data:`FINGERPRINT_TAG`, so that an identical retrain is recognised and not registered again.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from features.schema import CaseTables
    from training.config import TrainConfig

#: tag of a registered version (and of its run): the fingerprint of the recipe it was fitted from
FINGERPRINT_TAG = "fit_fingerprint"
#: the packages whose source makes a fit (serving does not change what is fitted)
CODE_PACKAGES = ("features", "models", "evaluation", "training")
ROOT = Path(__file__).resolve().parents[1]


def data_digest(tables: CaseTables) -> str:
    """A sha256 of the tables' contents: names, columns, dtypes and every value, row by row.

    Independent of the files' format and place (Parquet or CSV, compression, folder), dependent on every
    record and on the rows' order.
    """
    digest = hashlib.sha256()
    named = {"persons": tables.persons, "events": tables.events, **dict(sorted(tables.extra.items()))}
    if tables.outcomes is not None:
        named["outcomes"] = tables.outcomes
    for name, frame in named.items():
        digest.update(f"{name}:{len(frame)}:{list(map(str, frame.columns))}:{list(map(str, frame.dtypes))}".encode())
        if len(frame):
            digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


@cache
def code_digest(root: Path = ROOT) -> str:
    """A sha256 of the fitting packages' ``.py`` and ``.yaml`` files (paths and bytes, in path order)."""
    digest = hashlib.sha256()
    for package in CODE_PACKAGES:
        for path in sorted((root / package).rglob("*")):
            if path.suffix in (".py", ".yaml") and "__pycache__" not in path.parts:
                digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class GitState:
    """The checkout's commit and whether its tracked files differ from it."""

    commit: str
    dirty: bool


@cache
def git_commit(root: Path = ROOT) -> GitState | None:
    """The project's git commit, or None when it is not a git checkout (an installed wheel, a Bento)."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return GitState(commit, bool(status.strip())) if commit else None


@dataclass(frozen=True)
class FitRecipe:
    """Everything that decides what a stage's training produces."""

    stage: str
    data: str
    config: str
    seed: int
    temporal: bool | None
    alternative: bool
    code: str

    @classmethod
    def of(
        cls,
        *,
        stage: str,
        data: str,
        config: TrainConfig,
        seed: int,
        temporal: bool | None,
        alternative: bool,
    ) -> FitRecipe:
        """The recipe of one stage: ``data`` is :func:`data_digest` of its tables; the settings as validated."""
        settings = hashlib.sha256(json.dumps(config.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
        return cls(stage, data, settings, seed, temporal, alternative, code_digest())

    @property
    def fingerprint(self) -> str:
        """A sha256 of the recipe: equal for two fits that would produce the same versions."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


__all__ = [
    "CODE_PACKAGES",
    "FINGERPRINT_TAG",
    "FitRecipe",
    "GitState",
    "code_digest",
    "data_digest",
    "git_commit",
]
