"""Shared plumbing of the real-data adapters: the frame they return, reading and parsing helpers.

Every source file is read with all columns as text (blanks kept as ``""``) and parsed column by
column against the value set the source documents, so that a slice of the file, or another file
in the same format, gives the same columns, dtypes and category lists as the full training file.
Values outside the documented set are refused, like unknown categories in the canonical tables.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.schema import DataValidationError, Problem

log = logging.getLogger(__name__)

FRAME_FILE = "frame.parquet"
MAPPING_FILE = "mapping.json"
TARGET_COLUMN = "y"
GROUP_PREFIX = "group__"
EXTRA_PREFIX = "extra__"
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


@dataclass
class RealFrame:
    """A model-ready frame built from one public data set.

    Attributes
    ----------
    X
        Model features. Categorical columns are pandas ``Categorical`` with the fixed category
        list of the source's documented value set; numeric columns are float; what the source
        lacks stays NaN.
    y
        The 0/1 label, aligned with ``X``.
    groups
        Fairness columns (sex, race, age band...), not model features by default.
    extra
        Comparison columns (for example the COMPAS decile or the agency's own risk score).
    name, target
        Short name of the frame and a description of the label.
    notes
        Caveats of the mapping that a reader of any result must know.
    n_dropped
        Rows removed by filters, keyed by the reason.
    """

    X: pd.DataFrame
    y: np.ndarray
    groups: pd.DataFrame
    extra: pd.DataFrame
    name: str
    target: str
    notes: list[str] = field(default_factory=list)
    n_dropped: dict[str, int] = field(default_factory=dict)

    @property
    def base_rate(self) -> float:
        """Share of positive labels (NaN for an empty frame)."""
        return float(np.mean(self.y)) if len(self.y) else float("nan")

    def mapping(self) -> dict[str, object]:
        """What :func:`write_frame` stores beside the frame: names, categories, notes, counts."""
        categories = {
            c: [str(v) for v in self.X[c].cat.categories]
            for c in self.X.columns
            if isinstance(self.X[c].dtype, pd.CategoricalDtype)
        }
        return {
            "name": self.name,
            "target": self.target,
            "rows": len(self.y),
            "base_rate": round(self.base_rate, 6),
            "features": list(self.X.columns),
            "categorical": categories,
            "groups": list(self.groups.columns),
            "extra": list(self.extra.columns),
            "notes": list(self.notes),
            "n_dropped": dict(self.n_dropped),
        }


def require_columns(frame: pd.DataFrame, required: Iterable[str], source: str) -> None:
    """Refuse ``frame`` unless it has every column of ``required``.

    Raises
    ------
    DataValidationError
        One :class:`~features.schema.Problem` per missing column, each naming the column.
    """
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataValidationError([Problem(source, None, None, c, "required column is missing") for c in missing])


def read_csv(path: str | Path, source: str, *, nrows: int | None = None) -> pd.DataFrame:
    """Read a source CSV with every column as text and blanks as ``""``.

    Raises
    ------
    FileNotFoundError
        When ``path`` is not a file; the message names the source and the path.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{source}: no such file: {path} (expected the public {source} CSV)")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, nrows=nrows)
    frame.columns = [c.strip() for c in frame.columns]
    log.info("%s: read %d rows, %d columns from %s", source, len(frame), frame.shape[1], path)
    return frame


class Parser:
    """Parse text columns into floats and categoricals, collecting every refused value.

    ``row`` in a problem is the 0-based position of the data row in the file (the index of
    ``frame``, as read by :func:`read_csv`; a filtered frame keeps the positions of the file);
    ``record_id`` is the value of the source's ``id_column``, whose values must be unique.
    """

    def __init__(self, frame: pd.DataFrame, source: str, *, id_column: str):
        self.frame = frame
        self.source = source
        self.positions = frame.index.to_numpy()
        self.ids = self.text(id_column).to_numpy(dtype=object)
        self.problems: list[Problem] = []
        self.refuse(
            id_column, pd.Series(self.ids).duplicated(keep=False).to_numpy(), pd.Series(self.ids), "duplicate id"
        )
        self.refuse(id_column, self.ids == "", pd.Series(self.ids), "required value is missing")

    def text(self, column: str) -> pd.Series:
        return self.frame[column].astype(str).str.strip()

    def refuse(self, column: str, bad: np.ndarray, values: pd.Series, what: str) -> None:
        """Record a problem for every row where ``bad`` is true, quoting ``values`` at that row."""
        for i in np.flatnonzero(bad):
            rid = str(self.ids[i]) if self.ids[i] != "" else None
            self.problems.append(
                Problem(self.source, int(self.positions[i]), rid, column, f"{what}: {values.iloc[i]!r}")
            )

    def flag(self, column: str, *, required: bool = False) -> np.ndarray:
        """``true``/``false``, ``yes``/``no`` (any case) or ``1``/``0`` as 1.0/0.0; blank as NaN."""
        s = self.text(column).str.lower()
        out = np.where(s.isin(_TRUE), 1.0, np.where(s.isin(_FALSE), 0.0, np.nan))
        blank = (s == "").to_numpy()
        self.refuse(column, ~(s.isin(_TRUE) | s.isin(_FALSE)).to_numpy() & ~blank, s, "not a yes/no value")
        if required:
            self.refuse(column, blank, s, "required value is missing")
        return out

    def number(self, column: str, *, required: bool = False) -> np.ndarray:
        """A number as float; blank as NaN."""
        s = self.text(column)
        out = pd.to_numeric(s.where(s != ""), errors="coerce").to_numpy(dtype=float)
        blank = (s == "").to_numpy()
        self.refuse(column, np.isnan(out) & ~blank, s, "not a number")
        if required:
            self.refuse(column, blank, s, "required value is missing")
        return out

    def top_coded(self, column: str) -> np.ndarray:
        """A count written ``"0"``, ``"1"``... or ``"k or more"`` as float (``"k or more"`` -> k)."""
        s = self.text(column).str.replace(r"\s+or more$", "", regex=True)
        out = pd.to_numeric(s.where(s != ""), errors="coerce").to_numpy(dtype=float)
        self.refuse(column, (np.isnan(out) & (s != "").to_numpy()) | (out < 0), self.text(column), "not a count")
        return out

    def category(
        self, column: str, categories: Sequence[str], *, ordered: bool = False, mapping: dict[str, str] | None = None
    ) -> pd.Categorical:
        """Values of a fixed set (after the optional ``mapping``); blank as missing."""
        s = self.text(column)
        mapped = s.map(mapping).fillna(s) if mapping else s
        bad = (~mapped.isin(categories) & (s != "")).to_numpy()
        self.refuse(column, bad, s, f"unknown category (expected one of {list(mapping or categories)})")
        values = mapped.where(mapped.isin(categories)).to_numpy(dtype=object)
        return pd.Categorical(values, categories=list(categories), ordered=ordered)

    def check(self) -> None:
        """Raise :class:`DataValidationError` listing every refused value, if any."""
        if self.problems:
            raise DataValidationError(self.problems)


def write_frame(frame: RealFrame, out_dir: Path) -> None:
    """Write ``frame`` as ``frame.parquet`` (features, prefixed groups and extras, ``y``) and ``mapping.json``."""
    table = pd.concat([frame.X, frame.groups.add_prefix(GROUP_PREFIX), frame.extra.add_prefix(EXTRA_PREFIX)], axis=1)
    table[TARGET_COLUMN] = frame.y.astype("int8")
    table.to_parquet(out_dir / FRAME_FILE, index=True)
    write_mapping(frame.mapping(), out_dir)


def write_mapping(mapping: dict[str, object], out_dir: Path) -> None:
    (out_dir / MAPPING_FILE).write_text(json.dumps(mapping, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def read_frame(path: str | Path) -> RealFrame:
    """Read a frame written by :func:`write_frame` (the inverse of ``import_to`` for nij/compas)."""
    path = Path(path)
    if not (path / FRAME_FILE).exists():
        raise FileNotFoundError(f"no imported frame in {path} ({FRAME_FILE} missing)")
    mapping = json.loads((path / MAPPING_FILE).read_text(encoding="utf-8"))
    table = pd.read_parquet(path / FRAME_FILE)
    groups = table[[GROUP_PREFIX + c for c in mapping["groups"]]]
    extra = table[[EXTRA_PREFIX + c for c in mapping["extra"]]]
    return RealFrame(
        X=table[mapping["features"]],
        y=table[TARGET_COLUMN].to_numpy(dtype=int),
        groups=groups.rename(columns=lambda c: c.removeprefix(GROUP_PREFIX)),
        extra=extra.rename(columns=lambda c: c.removeprefix(EXTRA_PREFIX)),
        name=mapping["name"],
        target=mapping["target"],
        notes=list(mapping["notes"]),
        n_dropped={k: int(v) for k, v in mapping["n_dropped"].items()},
    )


@contextmanager
def atomic_dir(out_dir: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder that replaces ``out_dir`` only if the block succeeds.

    The staging folder is a sibling of ``out_dir`` (same file system, so the final rename is
    atomic); on any error it is removed and ``out_dir`` is left as it was.
    """
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        yield staging
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
