"""Writing predictions rows by ``COPY`` (one transaction per batch)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from models.fleet.scorer import FleetScore

_COLUMNS = (
    "predicted_at, device_id, model_version_id, window_start, window_end, horizon_hours, "
    "failure_risk, rul_hours, failure_mode, mode_probabilities, contributions, anomaly_score"
)


@dataclass(frozen=True)
class PredictionRow:
    device_id: int
    window_start: datetime
    window_end: datetime
    score: FleetScore


def write_predictions(
    conn: psycopg.Connection[Any],
    rows: Sequence[PredictionRow],
    model_version_id: int,
    horizon_hours: int,
    predicted_at: datetime,
) -> int:
    """Insert one ``predictions`` row per entry; returns how many were written."""
    if not rows:
        return 0
    with (
        conn.transaction(),
        conn.cursor() as cur,
        cur.copy(f"COPY predictions ({_COLUMNS}) FROM STDIN") as copy,
    ):
        for row in rows:
            s = row.score
            copy.write_row(
                (
                    predicted_at,
                    row.device_id,
                    model_version_id,
                    row.window_start,
                    row.window_end,
                    horizon_hours,
                    min(max(s.risk, 0.0), 1.0),
                    max(s.rul_hours, 0.0),
                    s.failure_mode,
                    json.dumps(s.mode_probabilities),
                    json.dumps([c.model_dump() for c in s.contributions]),
                    s.anomaly_score,
                )
            )
    return len(rows)
