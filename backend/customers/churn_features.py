"""Account features for the churn model: the health inputs plus sequence features of usage.

Sequence features come from the weekly engagement series of the last 26 weeks (sessions
per running device-day, weeks without running days left out): its level, least-squares
slope, change between the first and last eight weeks, volatility and lowest week.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from psycopg import Connection

from backend.customers.health_measures import gather_inputs, measures_from_inputs

WEEKS = 26
_WEEKLY = """
WITH per_day AS (
    SELECT u.time, bool_or(u.name = 'operating_hours' AND u.value > 0) AS running,
           COALESCE(sum(u.value) FILTER (WHERE u.name = 'sessions'), 0) AS sessions
    FROM usage_records u JOIN devices d ON d.id = u.device_id
    WHERE d.account_id = %(account)s AND u.name IN ('operating_hours', 'sessions')
      AND u.time <= %(at)s AND u.time > %(at)s - make_interval(weeks => %(weeks)s)
    GROUP BY u.device_id, u.time
)
SELECT floor(extract(epoch FROM %(at)s - time) / 604800)::int AS week,
       count(*) AS running_days, sum(sessions) AS sessions
FROM per_day WHERE running GROUP BY 1 ORDER BY 1
"""

FEATURE_NAMES: tuple[str, ...] = (
    "devices_log",
    "uptime",
    "adoption",
    "usage_trend",
    "ticket_volume",
    "time_to_resolve",
    "breakdowns_per_device",
    "complaint_share",
    "weekly_level",
    "weekly_slope",
    "weekly_change",
    "weekly_volatility",
    "weekly_min",
    "weeks_idle",
)


def sequence_features(weekly: list[tuple[int, int, float]]) -> dict[str, float]:
    """Features of ``(weeks ago, running device-days, sessions)`` rows."""
    rates = np.full(WEEKS, np.nan)
    for week, days, sessions in weekly:
        if 0 <= week < WEEKS and days > 0:
            rates[WEEKS - 1 - week] = sessions / days
    known = ~np.isnan(rates)
    if known.sum() < 3:
        return {
            "weekly_level": 0.0,
            "weekly_slope": 0.0,
            "weekly_change": 0.0,
            "weekly_volatility": 0.0,
            "weekly_min": 0.0,
            "weeks_idle": float(WEEKS),
        }
    x = np.arange(WEEKS)[known].astype(float)
    y = rates[known]
    slope = float(np.polyfit(x, y, 1)[0])
    first, last = rates[:8][~np.isnan(rates[:8])], rates[-8:][~np.isnan(rates[-8:])]
    change = float(last.mean() - first.mean()) if first.size and last.size else 0.0
    return {
        "weekly_level": float(y.mean()),
        "weekly_slope": slope,
        "weekly_change": change,
        "weekly_volatility": float(y.std()),
        "weekly_min": float(y.min()),
        "weeks_idle": float(WEEKS - known.sum()),
    }


def account_features(conn: Connection[Any], account_id: int, at: datetime) -> dict[str, float]:
    """The churn features of one account as of ``at`` (unknown measures read as neutral 0.5)."""
    inputs = gather_inputs(conn, account_id, at)
    measures = measures_from_inputs(inputs)
    weekly = conn.execute(_WEEKLY, {"account": account_id, "at": at, "weeks": WEEKS}).fetchall()
    devices = max(1, int(inputs["devices"]))
    row: dict[str, float] = {
        "devices_log": float(np.log1p(devices)),
        "breakdowns_per_device": inputs["breakdowns_365d"] / devices,
        "complaint_share": inputs["complaints_180d"] / max(1, inputs["tickets_180d"]),
    }
    for name in ("uptime", "adoption", "usage_trend", "ticket_volume", "time_to_resolve"):
        value = measures[name]
        row[name] = 0.5 if value is None else float(value)
    row.update(sequence_features([(int(w), int(d), float(s or 0)) for w, d, s in weekly]))
    return row
