"""The feature-based RUL model: tsfresh features of the last window, gradient boosting on them.

The strong baseline beside the sequence network, and the source of explanations (which
signals' features move its prediction; see ``models.explain``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.ensemble import GradientBoostingRegressor

from models.features.extraction import extract_candidates, extract_selected, select_relevant


@dataclass(frozen=True)
class FeatureConfig:
    window: int = 30
    rul_cap: float = 125.0
    stride: int = 5
    n_estimators: int = 300
    learning_rate: float = 0.05
    max_depth: int = 4
    subsample: float = 0.8
    fdr: float = 0.05
    seed: int = 0


@dataclass(frozen=True)
class FeatureModel:
    """Selected columns, their training medians (to fill what cannot be computed), the GBM."""

    signals: tuple[str, ...]
    columns: tuple[str, ...]
    fill: NDArray[np.float64]
    model: GradientBoostingRegressor
    config: FeatureConfig
    seconds: float

    def features(self, windows: list[NDArray[np.float64]]) -> NDArray[np.float64]:
        values = extract_selected(windows, self.signals, self.columns)
        filled: NDArray[np.float64] = np.where(np.isfinite(values), values, self.fill)
        return filled

    def predict(self, windows: list[NDArray[np.float64]]) -> NDArray[np.float64]:
        out: NDArray[np.float64] = np.clip(self.model.predict(self.features(windows)), 0, None)
        return out


def training_windows(
    sequences: list[NDArray[np.float64]], rul: list[NDArray[np.float64]], config: FeatureConfig
) -> tuple[list[NDArray[np.float64]], NDArray[np.float64]]:
    """Windows every ``stride`` readings (at least ``window`` of history) and capped targets."""
    windows, targets = [], []
    for values, remaining in zip(sequences, rul, strict=True):
        for end in range(len(values) - 1, config.window - 2, -config.stride):
            windows.append(values[end - config.window + 1 : end + 1])
            targets.append(min(float(remaining[end]), config.rul_cap))
    return windows, np.asarray(targets)


def last_window(values: NDArray[np.float64], window: int) -> NDArray[np.float64]:
    return values[-window:]


def train_feature_model(
    sequences: list[NDArray[np.float64]],
    rul: list[NDArray[np.float64]],
    signals: tuple[str, ...],
    config: FeatureConfig,
) -> FeatureModel:
    """Select features on the training windows with tsfresh, then fit the GBM on them."""
    started = time.perf_counter()
    windows, target = training_windows(sequences, rul, config)
    candidates = extract_candidates(windows, signals)
    columns = tuple(select_relevant(candidates, target, config.fdr))
    values = candidates.reindex(columns=list(columns)).to_numpy(dtype=np.float64)
    fill = np.nanmedian(values, axis=0)
    values = np.where(np.isfinite(values), values, fill)
    model = GradientBoostingRegressor(
        n_estimators=config.n_estimators,
        learning_rate=config.learning_rate,
        max_depth=config.max_depth,
        subsample=config.subsample,
        random_state=config.seed,
    ).fit(values, target)
    return FeatureModel(signals, columns, fill, model, config, time.perf_counter() - started)
