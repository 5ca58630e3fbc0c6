"""Gradient-boosting classifiers on tabular features.

scikit-learn's exact-split ``GradientBoostingClassifier``, not the histogram one: binning
into 255 quantiles blurs thresholds in the sparse tails (power above 9 kW in AI4I), and
its trees export to ONNX with ``models.features.trees_onnx``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold


@dataclass(frozen=True)
class GbmConfig:
    n_estimators: int = 400
    learning_rate: float = 0.05
    max_depth: int = 3
    subsample: float = 0.8
    seed: int = 0


def make_classifier(config: GbmConfig) -> GradientBoostingClassifier:
    return GradientBoostingClassifier(
        n_estimators=config.n_estimators,
        learning_rate=config.learning_rate,
        max_depth=config.max_depth,
        subsample=config.subsample,
        random_state=config.seed,
    )


def best_f1_threshold(y: NDArray[np.int64], probability: NDArray[np.float64]) -> float:
    """The probability threshold that maximises F1 on ``(y, probability)``."""
    candidates = np.unique(np.round(probability, 4))
    candidates = candidates[(candidates > 0.01) & (candidates < 0.99)]
    if candidates.size == 0:
        return 0.5
    scores = [f1_score(y, probability >= t, zero_division=0.0) for t in candidates]
    return float(candidates[int(np.argmax(scores))])


def inner_threshold(
    x: NDArray[np.float64], y: NDArray[np.int64], config: GbmConfig, folds: int = 3
) -> float:
    """A decision threshold chosen from out-of-fold predictions on training data only."""
    probability = np.zeros(y.shape[0])
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=config.seed + 7)
    for train, held in splitter.split(x, y):
        model = make_classifier(config).fit(x[train], y[train])
        probability[held] = model.predict_proba(x[held])[:, 1]
    return best_f1_threshold(y, probability)
