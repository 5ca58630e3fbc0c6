"""Train the churn model on the account history held in the database.

Every recorded renewal outcome (``account_outcomes``: renewed, expanded or churned) is one
example: the account's features 30 days before the decision, labelled churned or not.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from psycopg import Connection

from backend.customers.churn_features import FEATURE_NAMES, account_features
from backend.customers.churn_model import CvResult, LinearChurnModel, cross_validate, fit_linear

LEAD = timedelta(days=30)
MIN_EXAMPLES = 20


class NotEnoughHistoryError(ValueError):
    """Too few outcomes (or only one kind) to train on."""


def training_set(conn: Connection[Any]) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Features and labels (1 = churned) of every recorded renewal outcome."""
    rows = conn.execute(
        "SELECT o.account_id, o.decided_at, o.outcome FROM account_outcomes o "
        "JOIN accounts a ON a.id = o.account_id WHERE a.status <> 'erased' ORDER BY o.id"
    ).fetchall()
    features, labels = [], []
    for account_id, decided_at, outcome in rows:
        row = account_features(conn, int(account_id), decided_at - LEAD)
        features.append([row[name] for name in FEATURE_NAMES])
        labels.append(int(outcome == "churned"))
    return (
        np.asarray(features, dtype=np.float64).reshape(-1, len(FEATURE_NAMES)),
        np.asarray(labels, dtype=np.int64),
    )


def train(
    conn: Connection[Any], *, version: str, folds: int = 5
) -> tuple[LinearChurnModel, CvResult]:
    """Cross-validate on the history, then fit the served linear model on all of it.

    Raises:
        NotEnoughHistoryError: fewer than 20 outcomes, or fewer churned (or kept) than folds.
    """
    features, labels = training_set(conn)
    churned = int(labels.sum())
    if len(labels) < MIN_EXAMPLES or min(churned, len(labels) - churned) < folds:
        raise NotEnoughHistoryError(
            f"{len(labels)} outcomes ({churned} churned): need at least {MIN_EXAMPLES} "
            f"and {folds} of each kind"
        )
    result = cross_validate(features, labels, folds=folds, repeats=1)
    model = fit_linear(FEATURE_NAMES, features, labels, version=version)
    model.metrics = {
        "cv_auc_logistic": round(result.mean("logistic"), 4),
        "cv_auc_logistic_std": round(result.std("logistic"), 4),
        "examples": float(len(labels)),
        "churned": float(churned),
    }
    return model, result
