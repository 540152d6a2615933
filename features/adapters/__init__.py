"""Real public data sets turned into what the rest of the project reads.

A source with a dated history becomes the canonical tables (persons, events, outcomes), so that
the project's own point-in-time pipeline builds its features. A source that has only undated
aggregates becomes a stage feature frame (:class:`RealFrame`): model features, label, fairness
groups and comparison columns, with the caveats of the mapping in ``notes``. Nothing is invented:
no made-up dates, and what the source lacks stays missing (or, where the canonical schema cannot
hold a missing value, gets a constant placeholder listed beside the data). ``MAPPING.md`` beside
this file documents every mapping.

======== ========================================= =================================================
source   file (``../shared/data/``)                result
======== ========================================= =================================================
nij      ``nij/nij_train.csv``                     :func:`load_nij` -> RealFrame (year1, years2_3)
compas   ``compas/compas-scores-two-years.csv``    :func:`load_compas` -> RealFrame
rossi    ``rossi/Rossi.csv``                       :func:`load_rossi_canonical` -> CaseTables;
                                                   :func:`rossi_week26` -> RealFrame
======== ========================================= =================================================

:func:`load` dispatches by source name; :func:`import_to` writes the result into a folder
atomically (``riskctl data import``). Any file in the same format as the training file is
accepted (for example a held-out test file); a file missing a required column is refused with a
:class:`~features.schema.DataValidationError` that names the column.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

from features.adapters._common import (
    RealFrame,
    atomic_dir,
    read_csv,
    read_frame,
    require_columns,
    write_frame,
    write_mapping,
)
from features.adapters.compas import load_compas
from features.adapters.nij import load_nij
from features.adapters.rossi import canonical_notes, load_rossi_canonical, rossi_week26

log = logging.getLogger(__name__)

Source = Literal["nij", "compas", "rossi"]
SOURCES: tuple[str, ...] = ("nij", "compas", "rossi")


def load(source: Source | str, path: str | Path, **options: Any) -> RealFrame:
    """The model-ready frame of ``source`` read from ``path``.

    Parameters
    ----------
    source
        ``"nij"``, ``"compas"`` or ``"rossi"``.
    path
        The source file, or any file in the same format.
    **options
        Passed to the loader: nij ``target`` ("year1" default, or "years2_3"); compas
        ``features`` ("default" or "with_sex") and ``jail_days``; rossi ``with_employment``
        (default True, the week-26 assessment). All take ``nrows``.
    """
    if source == "nij":
        return load_nij(path, **{"target": "year1", **options})
    if source == "compas":
        return load_compas(path, **options)
    if source == "rossi":
        return rossi_week26(path, **{"with_employment": True, **options})
    raise ValueError(f"unknown source {source!r}: expected one of {list(SOURCES)}")


def import_to(source: Source | str, path: str | Path, out_dir: str | Path, **options: Any) -> Path:
    """Import ``source`` from ``path`` into ``out_dir``, atomically (all files or none).

    rossi: the canonical tables (``CaseTables.write`` layout, readable with ``CaseTables.read``)
    plus ``mapping.json`` with the notes of the mapping. nij and compas: ``frame.parquet``
    (features, ``group__*`` and ``extra__*`` columns, label ``y``, indexed by the source id) and
    ``mapping.json`` (features, categories, target, notes, dropped counts); read back with
    :func:`read_frame`. ``options`` go to :func:`load` (nij/compas) or are refused (rossi).

    Returns the output folder. On any error nothing is written and an existing ``out_dir`` is
    left as it was.
    """
    out = Path(out_dir)
    if source == "rossi":
        if options:
            raise TypeError(f"rossi import takes no options, got {sorted(options)}")
        tables = load_rossi_canonical(path)
        with atomic_dir(out) as staging:
            written = tables.write(staging / "tables")
            write_mapping({"name": "rossi_canonical", "source": "rossi", "notes": canonical_notes()}, written)
            for item in written.iterdir():
                item.rename(staging / item.name)
            written.rmdir()
    else:
        frame = load(source, path, **options)
        with atomic_dir(out) as staging:
            write_frame(frame, staging)
    log.info("imported %s from %s into %s", source, path, out)
    return out


__all__ = [
    "SOURCES",
    "RealFrame",
    "Source",
    "import_to",
    "load",
    "load_compas",
    "load_nij",
    "load_rossi_canonical",
    "read_csv",
    "read_frame",
    "require_columns",
    "rossi_week26",
]
