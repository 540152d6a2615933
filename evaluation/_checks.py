"""Input checks shared by the metric, fairness and plotting functions."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike


def check_binary_inputs(y_true: ArrayLike, y_prob: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate a binary outcome and a probability of the positive class.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Observed outcomes, 0/1 (or booleans).
    y_prob : array-like of shape (n,)
        Predicted probabilities of outcome 1, each in [0, 1].

    Returns
    -------
    y_true : ndarray of int8
    y_prob : ndarray of float64

    Raises
    ------
    ValueError
        When the arrays are empty, not one-dimensional, of different lengths, when ``y_true``
        holds anything but 0 and 1, or ``y_prob`` holds a missing value or leaves [0, 1].
    """
    y = np.asarray(y_true)
    p = np.asarray(y_prob, dtype=float)
    if y.ndim != 1 or p.ndim != 1:
        raise ValueError(f"y_true and y_prob must be 1-D, got shapes {y.shape} and {p.shape}")
    if len(y) != len(p):
        raise ValueError(f"y_true has {len(y)} rows but y_prob has {len(p)}")
    if len(y) == 0:
        raise ValueError("y_true and y_prob are empty")
    if pd.isna(y).any() or not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must hold only 0 and 1 (no missing values)")
    if not np.isfinite(p).all():
        raise ValueError(f"y_prob holds {int((~np.isfinite(p)).sum())} missing or infinite values")
    if (p < 0).any() or (p > 1).any():
        raise ValueError(f"y_prob must lie in [0, 1], got range [{p.min():.4g}, {p.max():.4g}]")
    return y.astype(np.int8), p


def check_groups(groups: pd.DataFrame, n: int, *, allow_no_columns: bool = False) -> pd.DataFrame:
    """Validate a frame of group columns and align it to the rows of the outcome arrays.

    Parameters
    ----------
    groups : DataFrame
        One column per grouping (sex, age band, ...), one row per outcome, in the same order.
    n : int
        Number of outcome rows.
    allow_no_columns : bool, default False
        Accept a frame without columns (a check whose groupings are all absent says so itself).

    Returns
    -------
    DataFrame
        The same columns with a fresh 0..n-1 index (rows are matched by position).
    """
    if not isinstance(groups, pd.DataFrame):
        raise TypeError(f"groups must be a pandas DataFrame, got {type(groups).__name__}")
    if len(groups) != n:
        raise ValueError(f"groups has {len(groups)} rows but the outcomes have {n}")
    if groups.shape[1] == 0 and not allow_no_columns:
        raise ValueError("groups has no columns")
    return groups.reset_index(drop=True)
