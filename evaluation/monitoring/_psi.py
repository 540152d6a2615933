"""Population stability index (PSI): how far a period's distribution of one input has moved from the training rows'.

``PSI = sum_k (c_k - r_k) ln(c_k / r_k)`` over the profile's bins, ``r_k`` the training share and ``c_k``
the period's share of bin ``k``; each share is floored at :data:`EPSILON` first, so an empty bin gives a
large but finite value. It is 0 for identical shares and grows with any move of mass between bins, in
either direction (it is the symmetrised Kullback-Leibler divergence of the binned distributions). The
usual reading, and the defaults of ``monitoring.yaml``: below 0.1 stable, 0.1 to 0.25 a moderate shift,
above 0.25 a shift worth acting on.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

#: floor of a bin's share in the PSI (an empty bin would make it infinite)
EPSILON = 1e-4


def psi(reference: ArrayLike, current: ArrayLike) -> float:
    """PSI between two share (or count) vectors over the same bins; each is normalised to sum to 1.

    Raises
    ------
    ValueError
        Vectors of different lengths, a negative entry, or an all-zero vector.
    """
    r, c = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
    if r.shape != c.shape or r.ndim != 1:
        raise ValueError(f"PSI needs two share vectors over the same bins, got shapes {r.shape} and {c.shape}")
    if (r < 0).any() or (c < 0).any() or r.sum() <= 0 or c.sum() <= 0:
        raise ValueError("PSI needs non-negative shares with a positive total")
    r = np.maximum(r / r.sum(), EPSILON)
    c = np.maximum(c / c.sum(), EPSILON)
    return float(np.sum((c - r) * np.log(c / r)))
