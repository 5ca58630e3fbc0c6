"""Health score: a weighted mean of the measures, 0..100, with its band, trend and reasons.

Each component records its measure, its effective weight (weights re-normalised over the
measures known for the account) and its points (the share of the 100 it contributes).
Reasons say which measures moved the score since the previous one, and by how many points;
for a first score, which measures cost the most points.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from backend.customers.health_measures import gather_inputs, measures_from_inputs
from backend.customers.health_weights import HealthWeights


class Component(BaseModel):
    measure: float | None
    weight: float
    points: float


class Reason(BaseModel):
    measure: str
    points: float
    text: str


class HealthScore(BaseModel):
    account_id: int
    computed_at: datetime
    score: float
    band: str
    trend: float | None
    churn_risk: float | None = None
    components: dict[str, Component]
    reasons: list[Reason]
    inputs: dict[str, Any]
    weights_version: str


def combine(
    measures: dict[str, float | None], weights: HealthWeights
) -> tuple[float, dict[str, Component]]:
    """Score 0..100 and the components, unknown measures left out."""
    known = {k: v for k, v in measures.items() if v is not None and weights.weights.get(k, 0.0) > 0}
    total = sum(weights.weights[k] for k in known)
    components: dict[str, Component] = {}
    for name, value in measures.items():
        weight = weights.weights.get(name, 0.0) / total if name in known and total else 0.0
        points = 100.0 * weight * value if value is not None and weight else 0.0
        components[name] = Component(
            measure=value, weight=round(weight, 4), points=round(points, 2)
        )
    score = sum(c.points for c in components.values()) if total else 50.0
    return round(min(100.0, max(0.0, score)), 2), components


def explain(
    components: dict[str, Component], previous: dict[str, Component] | None, limit: int = 3
) -> list[Reason]:
    """The measures that moved the score most since ``previous`` (or cost most points)."""
    reasons: list[Reason] = []
    if previous:
        for name, comp in components.items():
            delta = comp.points - (previous[name].points if name in previous else 0.0)
            if abs(delta) >= 0.5:
                direction = "raised" if delta > 0 else "lowered"
                reasons.append(
                    Reason(
                        measure=name,
                        points=round(delta, 2),
                        text=f"{name} {direction} the score by {abs(delta):.1f} points",
                    )
                )
    else:
        for name, comp in components.items():
            if comp.measure is None or comp.weight == 0:
                continue
            lost = 100.0 * comp.weight - comp.points
            if lost >= 0.5:
                reasons.append(
                    Reason(
                        measure=name, points=round(-lost, 2), text=f"{name} costs {lost:.1f} points"
                    )
                )
    unknown = [n for n, c in components.items() if c.measure is None]
    reasons.sort(key=lambda r: -abs(r.points))
    reasons = reasons[:limit]
    if unknown:
        reasons.append(
            Reason(measure="unknown", points=0.0, text="no data for " + ", ".join(unknown))
        )
    return reasons


def previous_score(conn: Connection[Any], account_id: int, before: datetime) -> HealthScore | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT account_id, computed_at, score, band, trend, churn_risk, components, inputs, "
            "weights_version FROM health_scores WHERE account_id = %s AND computed_at < %s "
            "ORDER BY computed_at DESC, id DESC LIMIT 1",
            (account_id, before),
        )
        row = cur.fetchone()
    if row is None:
        return None
    stored = row.pop("components")
    row["components"] = stored.get("measures", {})
    row["reasons"] = stored.get("reasons", [])
    return HealthScore.model_validate(row)


def score_account(
    conn: Connection[Any],
    account_id: int,
    at: datetime,
    weights: HealthWeights,
    *,
    churn_risk: float | None = None,
) -> HealthScore:
    """Compute (without storing) the account's health as of ``at``."""
    inputs = gather_inputs(conn, account_id, at)
    score, components = combine(measures_from_inputs(inputs), weights)
    previous = previous_score(conn, account_id, at)
    return HealthScore(
        account_id=account_id,
        computed_at=at,
        score=score,
        band=weights.bands.band(score),
        trend=round(score - previous.score, 2) if previous else None,
        churn_risk=churn_risk,
        components=components,
        reasons=explain(components, previous.components if previous else None),
        inputs=inputs,
        weights_version=weights.version,
    )


def store_score(conn: Connection[Any], health: HealthScore, weights: HealthWeights) -> int:
    """Keep the score with its inputs, components, reasons and the weights that made it."""
    components = {
        "measures": {k: v.model_dump() for k, v in health.components.items()},
        "reasons": [r.model_dump() for r in health.reasons],
        "weights": weights.weights,
    }
    row = conn.execute(
        "INSERT INTO health_scores (account_id, computed_at, score, band, trend, churn_risk, "
        "components, inputs, weights_version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "RETURNING id",
        (
            health.account_id,
            health.computed_at,
            health.score,
            health.band,
            health.trend,
            health.churn_risk,
            Jsonb(components),
            Jsonb(health.inputs),
            health.weights_version,
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])
