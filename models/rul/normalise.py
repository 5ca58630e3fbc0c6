"""Operating conditions and z-score normalisation per condition (numpy only, used by serving)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from models.manifest import Normalisation

_STD_FLOOR = 1e-6


def fit_normalisation(
    settings: Sequence[NDArray[np.float64]],
    features: Sequence[NDArray[np.float64]],
    setting_names: tuple[str, ...],
) -> Normalisation:
    """Find the operating conditions in ``settings`` and fit mean/std of ``features`` in each.

    Conditions are the distinct values of the settings rounded to whole units of each
    setting's spread (C-MAPSS: one condition in FD001/3, six in FD002/4); each centroid is
    the mean of its rows. Missing features (NaN) are ignored in the statistics.
    """
    all_settings = np.concatenate(settings)
    all_features = np.concatenate(features)
    spread = np.nanmax(all_settings, axis=0) - np.nanmin(all_settings, axis=0)
    scale = np.where(spread > 1.0, spread / 50.0, 1.0)
    keys = np.round(all_settings / scale).astype(np.int64)
    distinct, labels = np.unique(keys, axis=0, return_inverse=True)
    labels = labels.reshape(-1)
    centroids, means, stds = [], [], []
    for index in range(distinct.shape[0]):
        rows = labels == index
        if rows.sum() < 2:
            continue
        centroids.append(all_settings[rows].mean(axis=0) / scale)
        means.append(np.nanmean(all_features[rows], axis=0))
        std = np.nanstd(all_features[rows], axis=0)
        stds.append(np.where(np.isfinite(std) & (std > _STD_FLOOR), std, 1.0))
    return Normalisation(
        setting_names=setting_names,
        setting_scale=tuple(float(v) for v in scale),
        centroids=tuple(tuple(float(v) for v in c) for c in centroids),
        mean=tuple(tuple(float(v) for v in np.nan_to_num(m)) for m in means),
        std=tuple(tuple(float(v) for v in s) for s in stds),
    )


def assign_conditions(spec: Normalisation, settings: NDArray[np.float64]) -> NDArray[np.int64]:
    """Index of the nearest condition centroid for each row of ``settings``."""
    centroids = np.asarray(spec.centroids, dtype=np.float64)
    scaled = settings / np.asarray(spec.setting_scale, dtype=np.float64)
    distance = ((scaled[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
    out: NDArray[np.int64] = np.argmin(distance, axis=1).astype(np.int64)
    return out


def normalise(
    spec: Normalisation, settings: NDArray[np.float64], features: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Z-score ``features`` by the condition of each row; NaN stays NaN (missing)."""
    condition = assign_conditions(spec, settings)
    mean = np.asarray(spec.mean, dtype=np.float64)[condition]
    std = np.asarray(spec.std, dtype=np.float64)[condition]
    out: NDArray[np.float64] = (features - mean) / std
    return out
