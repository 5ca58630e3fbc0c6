"""Incremental recompute: score only the accounts whose data changed since a moment."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import Connection

from backend.customers.churn_features import account_features
from backend.customers.churn_model import LinearChurnModel
from backend.customers.health_score import HealthScore, score_account, store_score
from backend.customers.health_weights import HealthWeights

_CHANGED = """
SELECT id FROM accounts a WHERE a.status NOT IN ('erased', 'prospect') AND (
    a.updated_at >= %(since)s
    OR NOT EXISTS (SELECT 1 FROM health_scores h WHERE h.account_id = a.id)
    OR EXISTS (SELECT 1 FROM service_tickets t WHERE t.account_id = a.id
               AND (t.opened_at >= %(since)s OR t.resolved_at >= %(since)s))
    OR EXISTS (SELECT 1 FROM contracts c WHERE c.account_id = a.id AND c.created_at >= %(since)s)
    OR EXISTS (SELECT 1 FROM account_nps n WHERE n.account_id = a.id AND n.surveyed_at >= %(since)s)
    OR EXISTS (SELECT 1 FROM devices d JOIN predictions p ON p.device_id = d.id
               WHERE d.account_id = a.id AND p.predicted_at >= %(since)s)
    OR EXISTS (SELECT 1 FROM devices d JOIN usage_records u ON u.device_id = d.id
               WHERE d.account_id = a.id AND u.time >= %(since)s)
) ORDER BY id
"""


def changed_accounts(conn: Connection[Any], since: datetime) -> list[int]:
    """Accounts with new or changed inputs since ``since`` (or never scored)."""
    return [int(row[0]) for row in conn.execute(_CHANGED, {"since": since}).fetchall()]


def recompute(
    conn: Connection[Any],
    weights: HealthWeights,
    *,
    at: datetime,
    since: datetime | None = None,
    account_ids: list[int] | None = None,
    churn_model: LinearChurnModel | None = None,
) -> list[HealthScore]:
    """Score and store the accounts that changed since ``since`` (all when ``None``); with
    ``churn_model``, each score carries the account's churn risk too."""
    if account_ids is None:
        if since is None:
            rows = conn.execute(
                "SELECT id FROM accounts WHERE status NOT IN ('erased', 'prospect') ORDER BY id"
            ).fetchall()
            account_ids = [int(r[0]) for r in rows]
        else:
            account_ids = changed_accounts(conn, since)
    scores = []
    for account_id in account_ids:
        risk = (
            churn_model.risk(account_features(conn, account_id, at))
            if churn_model is not None
            else None
        )
        health = score_account(conn, account_id, at, weights, churn_risk=risk)
        store_score(conn, health, weights)
        scores.append(health)
    return scores
