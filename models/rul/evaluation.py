"""C-MAPSS metrics: RMSE and the PHM08 score (late predictions cost more than early ones)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

#: Published FD001 figures (RMSE, PHM08 score) quoted for comparison.
PUBLISHED_FD001 = {
    "CNN (Babu et al. 2016)": (18.45, 1287.0),
    "Deep LSTM (Zheng et al. 2017)": (16.14, 338.0),
    "TCNN-Transformer (2021)": (11.40, 254.0),
}


def rmse(predicted: ArrayLike, true: ArrayLike) -> float:
    d = np.asarray(predicted, dtype=np.float64) - np.asarray(true, dtype=np.float64)
    return float(np.sqrt(np.mean(d**2)))


def phm08_score(predicted: ArrayLike, true: ArrayLike) -> float:
    """Sum over units of ``exp(-d/13) - 1`` when early (d < 0), ``exp(d/10) - 1`` when late."""
    d = np.asarray(predicted, dtype=np.float64) - np.asarray(true, dtype=np.float64)
    return float(np.sum(np.where(d < 0, np.exp(-d / 13.0) - 1.0, np.exp(d / 10.0) - 1.0)))
