"""AI4I 2020 benchmark: stratified cross-validation of machine-failure classification.

Inputs never include the failure-mode columns. The alert threshold is fixed in advance
(0.5 by default) or, with ``threshold=None``, chosen on each outer fold's training rows
by inner cross-validation; never on the rows it is scored on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import average_precision_score, confusion_matrix, f1_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold

from models.datasets.ai4i import MODE_COLUMNS, Ai4i
from models.tabular.gbm import GbmConfig, inner_threshold, make_classifier


@dataclass(frozen=True)
class FoldScore:
    fold: int
    roc_auc: float
    pr_auc: float
    f1: float
    threshold: float


@dataclass(frozen=True)
class CvResult:
    """Per-fold scores plus the out-of-fold probabilities and decisions."""

    features: str
    folds: tuple[FoldScore, ...]
    probability: NDArray[np.float64]
    alert: NDArray[np.bool_]
    seconds: float

    def summary(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for metric in ("roc_auc", "pr_auc", "f1"):
            values = np.array([getattr(f, metric) for f in self.folds])
            out[f"{metric}_mean"] = float(values.mean())
            out[f"{metric}_std"] = float(values.std(ddof=1)) if values.size > 1 else 0.0
        return out


def cross_validate(
    x: NDArray[np.float64],
    y: NDArray[np.int64],
    features: str,
    config: GbmConfig | None = None,
    n_splits: int = 5,
    threshold: float | None = 0.5,
) -> CvResult:
    """Stratified ``n_splits``-fold CV of a gradient-boosting classifier."""
    config = config or GbmConfig()
    started = time.perf_counter()
    probability = np.zeros(y.shape[0])
    alert = np.zeros(y.shape[0], dtype=bool)
    folds = []
    splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=config.seed)
    for fold, (train, test) in enumerate(splitter.split(x, y)):
        cut = threshold if threshold is not None else inner_threshold(x[train], y[train], config)
        model = make_classifier(config).fit(x[train], y[train])
        p = model.predict_proba(x[test])[:, 1]
        probability[test] = p
        alert[test] = p >= cut
        folds.append(
            FoldScore(
                fold=fold,
                roc_auc=float(roc_auc_score(y[test], p)),
                pr_auc=float(average_precision_score(y[test], p)),
                f1=float(f1_score(y[test], p >= cut)),
                threshold=cut,
            )
        )
    return CvResult(features, tuple(folds), probability, alert, time.perf_counter() - started)


def recall_per_mode(data: Ai4i, alert: NDArray[np.bool_]) -> dict[str, tuple[int, int]]:
    """For each failure mode: (failures of that mode alerted, failures of that mode)."""
    out = {}
    failed = data.failure == 1
    for index, mode in enumerate(MODE_COLUMNS):
        rows = failed & (data.modes[:, index] == 1)
        out[mode] = (int(alert[rows].sum()), int(rows.sum()))
    return out


def mode_confusion(
    data: Ai4i, x: NDArray[np.float64], config: GbmConfig | None = None, n_splits: int = 5
) -> tuple[tuple[str, ...], NDArray[np.int64]]:
    """Out-of-fold confusion of a multi-class model of the failure mode (0 = none)."""
    config = config or GbmConfig()
    labels = data.mode_labels()
    predicted = np.zeros_like(labels)
    splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=config.seed)
    for train, test in splitter.split(x, labels):
        model = make_classifier(config).fit(x[train], labels[train])
        predicted[test] = model.predict(x[test])
    names = ("none", *MODE_COLUMNS)
    matrix = confusion_matrix(labels, predicted, labels=list(range(len(names))))
    return names, matrix.astype(np.int64)
