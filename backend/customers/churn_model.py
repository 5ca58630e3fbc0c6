"""Churn-risk models: training and cross-validation (``train`` extra), and a linear model
that serves without scikit-learn.

The evaluated model is a blend of a regularised logistic regression on standardised
features (weight 0.6) and a shallow gradient-boosted tree ensemble (0.4). What the backend
serves is :class:`LinearChurnModel`: the logistic part as plain coefficients (JSON), so that
scoring needs only numpy and every risk can be explained by its feature contributions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel

LR_SHARE = 0.6
FloatArray = NDArray[np.float64]


class CvResult(BaseModel):
    """ROC AUC per fold of a repeated stratified K-fold, per model."""

    folds: int
    repeats: int
    auc: dict[str, list[float]]

    def mean(self, model: str) -> float:
        return float(np.mean(self.auc[model]))

    def std(self, model: str) -> float:
        return float(np.std(self.auc[model]))


def _logistic() -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000))


def _boosted(seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=150,
        learning_rate=0.05,
        max_depth=3,
        min_samples_leaf=50,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=seed,
    )


def cross_validate(
    features: FloatArray,
    labels: NDArray[np.int64],
    *,
    folds: int = 5,
    repeats: int = 2,
    seed: int = 0,
    threads: int = 1,
) -> CvResult:
    """Repeated stratified K-fold ROC AUC of the logistic, boosted and blended models."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    with threadpool_limits(limits=threads):
        return _cross_validate(features, labels, folds=folds, repeats=repeats, seed=seed)


def _cross_validate(
    features: FloatArray, labels: NDArray[np.int64], *, folds: int, repeats: int, seed: int
) -> CvResult:
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    auc: dict[str, list[float]] = {"logistic": [], "boosted": [], "blend": []}
    for repeat in range(repeats):
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed + repeat)
        for train, test in splitter.split(features, labels):
            lr = _logistic().fit(features[train], labels[train])
            gb = _boosted(seed + repeat).fit(features[train], labels[train])
            p_lr = lr.predict_proba(features[test])[:, 1]
            p_gb = gb.predict_proba(features[test])[:, 1]
            blend = LR_SHARE * p_lr + (1 - LR_SHARE) * p_gb
            for name, scores in (("logistic", p_lr), ("boosted", p_gb), ("blend", blend)):
                auc[name].append(float(roc_auc_score(labels[test], scores)))
    return CvResult(folds=folds, repeats=repeats, auc=auc)


class LinearChurnModel(BaseModel):
    """A logistic churn model as plain numbers: P(churn) = σ(b + Σ wᵢ (xᵢ − μᵢ)/σᵢ)."""

    version: str
    features: list[str]
    means: list[float]
    scales: list[float]
    weights: list[float]
    intercept: float
    metrics: dict[str, float] = {}

    def contributions(self, row: dict[str, float]) -> dict[str, float]:
        """Each feature's share of the logit (positive raises the risk)."""
        return {
            name: w * ((float(row.get(name, m)) - m) / s)
            for name, m, s, w in zip(
                self.features, self.means, self.scales, self.weights, strict=True
            )
        }

    def risk(self, row: dict[str, float]) -> float:
        logit = self.intercept + sum(self.contributions(row).values())
        return float(1.0 / (1.0 + np.exp(-logit)))

    def save(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> LinearChurnModel:
        return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))


def fit_linear(
    names: Sequence[str], features: FloatArray, labels: NDArray[np.int64], *, version: str
) -> LinearChurnModel:
    """Fit the logistic part on all rows and export it as a :class:`LinearChurnModel`."""
    pipeline = _logistic().fit(features, labels)
    scaler, logistic = pipeline[0], pipeline[1]
    scales = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    return LinearChurnModel(
        version=version,
        features=list(names),
        means=[float(v) for v in scaler.mean_],
        scales=[float(v) for v in scales],
        weights=[float(v) for v in logistic.coef_[0]],
        intercept=float(logistic.intercept_[0]),
    )
