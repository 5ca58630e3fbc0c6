"""What the engine knows when it evaluates a prediction: the device, its site and account,
the account's contracts (value, SLA) and its latest health."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from backend.care.errors import NotFoundError

UNKNOWN_MODE = "unknown"


@dataclass(frozen=True)
class PredictionContext:
    prediction_id: int
    predicted_at: datetime
    device_id: int
    device_external_id: str
    model_version_id: int | None
    horizon_hours: int
    failure_risk: float | None
    rul_hours: float | None
    failure_mode: str
    account_id: int | None
    site_id: int | None
    region: str | None
    csm_user_id: int | None
    csm_email: str | None
    annual_value: float
    sla_hours: int | None
    health_score: float | None


_QUERY = """
SELECT p.id AS prediction_id, p.predicted_at, p.device_id, d.external_id AS device_external_id,
       p.model_version_id, p.horizon_hours, p.failure_risk, p.rul_hours,
       COALESCE(NULLIF(p.failure_mode, ''), %(unknown)s) AS failure_mode,
       d.account_id, d.site_id, COALESCE(s.region, a.region) AS region,
       a.csm_user_id, u.email AS csm_email,
       COALESCE(c.annual_value, 0)::float8 AS annual_value, c.sla_hours,
       h.score::float8 AS health_score
FROM predictions p
JOIN devices d ON d.id = p.device_id
LEFT JOIN sites s ON s.id = d.site_id
LEFT JOIN accounts a ON a.id = d.account_id
LEFT JOIN users u ON u.id = a.csm_user_id AND u.disabled_at IS NULL
LEFT JOIN LATERAL (
    SELECT sum(annual_value) AS annual_value, min(sla_hours) AS sla_hours
    FROM contracts WHERE account_id = d.account_id AND status IN ('active', 'renewed', 'expanded')
) c ON true
LEFT JOIN LATERAL (
    SELECT score FROM health_scores WHERE account_id = d.account_id
    ORDER BY computed_at DESC LIMIT 1
) h ON true
WHERE p.id = %(id)s
"""


def load_prediction_context(conn: psycopg.Connection[Any], prediction_id: int) -> PredictionContext:
    """Raises NotFoundError when the prediction does not exist."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_QUERY, {"id": prediction_id, "unknown": UNKNOWN_MODE})
        row = cur.fetchone()
    if row is None:
        raise NotFoundError("prediction", prediction_id)
    return PredictionContext(**row)
