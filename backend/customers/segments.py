"""Segmentation: RFM (recency, frequency, monetary) from orders and contracts plus usage,
clustered with k-means into five named segments.

Names come from the centroids, not from cluster numbers, so the mapping is stable across
runs: the cluster with the shortest tenure is ``new``; of the rest, the least used and
longest without an order is ``dormant``; the highest monetary value is ``high-value``; the
steepest fall in usage is ``at-risk``; the last one is ``growing``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from psycopg import Connection
from psycopg.types.json import Jsonb
from pydantic import BaseModel

SEGMENT_NAMES = ("new", "dormant", "high-value", "at-risk", "growing")
FEATURES = ("recency_days", "frequency", "monetary", "usage_level", "usage_trend", "tenure_days")

_RFM = """
SELECT a.id,
  COALESCE(EXTRACT(day FROM %(at)s - (SELECT max(o.ordered_at) FROM orders o
      WHERE o.account_id = a.id AND o.ordered_at <= %(at)s)), 3650) AS recency_days,
  (SELECT count(*) FROM orders o WHERE o.account_id = a.id
      AND o.ordered_at > %(at)s - interval '365 days' AND o.ordered_at <= %(at)s) AS frequency,
  COALESCE((SELECT sum(o.amount) FROM orders o WHERE o.account_id = a.id
      AND o.ordered_at > %(at)s - interval '365 days' AND o.ordered_at <= %(at)s), 0)
  + COALESCE((SELECT max(c.annual_value) FROM contracts c WHERE c.account_id = a.id
      AND c.start_date <= %(at)s::date), 0) AS monetary,
  COALESCE(EXTRACT(day FROM %(at)s - LEAST(
      (SELECT min(c.start_date)::timestamptz FROM contracts c WHERE c.account_id = a.id),
      (SELECT min(d.installed_at) FROM devices d WHERE d.account_id = a.id))), 0) AS tenure_days
FROM accounts a WHERE a.status IN ('active', 'churned') ORDER BY a.id
"""
_USAGE = """
WITH per_day AS (
    SELECT u.device_id, u.time > %(at)s - interval '90 days' AS recent,
           bool_or(u.name = 'operating_hours' AND u.value > 0) AS running,
           COALESCE(sum(u.value) FILTER (WHERE u.name = 'sessions'), 0) AS sessions
    FROM usage_records u
    WHERE u.name IN ('operating_hours', 'sessions')
      AND u.time <= %(at)s AND u.time > %(at)s - interval '180 days'
    GROUP BY u.device_id, u.time
)
SELECT d.account_id,
  count(*) FILTER (WHERE running AND recent), count(*) FILTER (WHERE running AND NOT recent),
  COALESCE(sum(sessions) FILTER (WHERE running AND recent), 0),
  COALESCE(sum(sessions) FILTER (WHERE running AND NOT recent), 0)
FROM per_day JOIN devices d ON d.id = per_day.device_id
WHERE d.account_id IS NOT NULL
GROUP BY d.account_id
"""


class SegmentAssignment(BaseModel):
    account_id: int
    segment: str
    features: dict[str, float]


def rfm_table(conn: Connection[Any], at: datetime) -> tuple[list[int], NDArray[np.float64]]:
    """Account ids and their feature rows (columns in :data:`FEATURES` order)."""
    usage = {
        int(a): (int(rd), int(pd), float(rs), float(ps))
        for a, rd, pd, rs, ps in conn.execute(_USAGE, {"at": at}).fetchall()
    }
    ids: list[int] = []
    rows: list[list[float]] = []
    for account_id, recency, frequency, monetary, tenure in conn.execute(
        _RFM, {"at": at}
    ).fetchall():
        rd, pd, rs, ps = usage.get(int(account_id), (0, 0, 0.0, 0.0))
        level = rs / rd if rd else 0.0
        prior = ps / pd if pd else level
        trend = (level - prior) / prior if prior > 0 else 0.0
        ids.append(int(account_id))
        rows.append(
            [float(recency), float(frequency), float(monetary), level, trend, float(tenure)]
        )
    return ids, np.asarray(rows, dtype=np.float64).reshape(-1, len(FEATURES))


def _standardise(table: NDArray[np.float64]) -> NDArray[np.float64]:
    scaled = table.copy()
    for column in ("recency_days", "frequency", "monetary", "tenure_days"):
        i = FEATURES.index(column)
        scaled[:, i] = np.log1p(np.clip(scaled[:, i], 0, None))
    scaled[:, FEATURES.index("usage_trend")] = np.clip(
        scaled[:, FEATURES.index("usage_trend")], -1, 1
    )
    std = scaled.std(axis=0)
    result: NDArray[np.float64] = (scaled - scaled.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return result


def kmeans(
    points: NDArray[np.float64], k: int, *, seed: int, iterations: int = 100, restarts: int = 8
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """k-means++ with restarts; the lowest-inertia labels and centroids."""
    rng = np.random.default_rng(seed)
    best: tuple[float, NDArray[np.int64], NDArray[np.float64]] | None = None
    for _ in range(restarts):
        centroids = points[[int(rng.integers(len(points)))]]
        while len(centroids) < k:
            d2 = ((points[:, None, :] - centroids[None]) ** 2).sum(-1).min(1)
            p = d2 / d2.sum() if d2.sum() > 0 else np.full(len(points), 1 / len(points))
            centroids = np.vstack([centroids, points[int(rng.choice(len(points), p=p))]])
        labels = np.zeros(len(points), dtype=np.int64)
        for _ in range(iterations):
            labels = ((points[:, None, :] - centroids[None]) ** 2).sum(-1).argmin(1)
            moved = np.array(
                [
                    points[labels == j].mean(0) if (labels == j).any() else centroids[j]
                    for j in range(k)
                ]
            )
            if np.allclose(moved, centroids):
                break
            centroids = moved
        inertia = float(((points - centroids[labels]) ** 2).sum())
        if best is None or inertia < best[0]:
            best = (inertia, labels, centroids)
    assert best is not None
    return best[1], best[2]


def name_clusters(centroids: NDArray[np.float64]) -> dict[int, str]:
    """Segment name of each cluster, chosen by centroid rules (see the module docstring)."""
    col = {name: i for i, name in enumerate(FEATURES)}
    left = set(range(len(centroids)))
    names: dict[int, str] = {}

    def take(name: str, key: Any) -> None:
        if left:
            chosen = min(left, key=key)
            names[chosen] = name
            left.remove(chosen)

    take("new", lambda j: centroids[j, col["tenure_days"]])
    take("dormant", lambda j: centroids[j, col["usage_level"]] - centroids[j, col["recency_days"]])
    take("high-value", lambda j: -centroids[j, col["monetary"]])
    take("at-risk", lambda j: centroids[j, col["usage_trend"]])
    for j in sorted(left):
        names[j] = "growing"
    return names


def segment_accounts(
    conn: Connection[Any], at: datetime, *, seed: int = 0, store: bool = True
) -> list[SegmentAssignment]:
    """Cluster every active account into the five named segments (stored when ``store``)."""
    ids, table = rfm_table(conn, at)
    if len(ids) < len(SEGMENT_NAMES):
        return []
    labels, centroids = kmeans(_standardise(table), len(SEGMENT_NAMES), seed=seed)
    names = name_clusters(centroids)
    out = [
        SegmentAssignment(
            account_id=account_id,
            segment=names[int(label)],
            features={f: round(float(v), 4) for f, v in zip(FEATURES, row, strict=True)},
        )
        for account_id, label, row in zip(ids, labels, table, strict=True)
    ]
    if store:
        for item in out:
            conn.execute(
                "INSERT INTO account_segments (account_id, computed_at, segment, features) "
                "VALUES (%s, %s, %s, %s)",
                (item.account_id, at, item.segment, Jsonb(item.features)),
            )
            conn.execute(
                "UPDATE accounts SET segment = %s WHERE id = %s", (item.segment, item.account_id)
            )
    return out
