"""The measures behind a health score, each 0 (bad) .. 1 (good) or ``None`` (unknown).

:func:`gather_inputs` reads the raw figures of one account as of a moment (nothing after it
is used, so past scores can be recomputed); :func:`measures_from_inputs` turns them into
measures. Usage is counted only on days a device reported usage: a device that was offline
is unknown for that day, not idle.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from psycopg import Connection

LOOKBACK_DAYS = 365
UPTIME_SCALE_H = 400.0
MEASURE_NAMES: tuple[str, ...] = (
    "fleet_risk",
    "uptime",
    "adoption",
    "usage_trend",
    "ticket_volume",
    "time_to_resolve",
    "renewal_proximity",
    "nps",
)


# Sessions and feature use per device-day, counted on the days a device ran (it reported
# operating hours > 0): a device that was offline, or idle on a weekend, is not disengaged.
_USAGE = """
WITH per_day AS (
    SELECT u.time > %(at)s - interval '90 days' AS recent,
           bool_or(u.name = 'operating_hours' AND u.value > 0) AS running,
           COALESCE(sum(u.value) FILTER (WHERE u.name = 'sessions'), 0) AS sessions,
           COALESCE(sum(u.value) FILTER (WHERE u.name = 'feature_use'), 0) AS features
    FROM usage_records u JOIN devices d ON d.id = u.device_id
    WHERE d.account_id = %(account)s AND u.name IN ('operating_hours', 'sessions', 'feature_use')
      AND u.time <= %(at)s AND u.time > %(at)s - interval '180 days'
    GROUP BY u.device_id, u.time
)
SELECT
    count(*) FILTER (WHERE running AND recent),
    count(*) FILTER (WHERE running AND NOT recent),
    sum(sessions) FILTER (WHERE running AND recent),
    sum(sessions) FILTER (WHERE running AND NOT recent),
    sum(features) FILTER (WHERE running AND recent),
    sum(features) FILTER (WHERE running AND NOT recent)
FROM per_day
"""
_TICKETS = """
SELECT
    count(*) FILTER (WHERE category <> 'breakdown' AND opened_at > %(at)s - interval '180 days'),
    count(*) FILTER (WHERE category = 'complaint' AND opened_at > %(at)s - interval '180 days'),
    count(*) FILTER (WHERE category = 'breakdown' AND opened_at > %(at)s - interval '365 days'),
    sum(extract(epoch FROM LEAST(COALESCE(resolved_at, %(at)s), %(at)s) - opened_at) / 3600)
        FILTER (WHERE category = 'breakdown' AND opened_at > %(at)s - interval '365 days'),
    avg(extract(epoch FROM resolved_at - opened_at) / 3600)
        FILTER (WHERE resolved_at <= %(at)s AND resolved_at > %(at)s - interval '365 days')
FROM service_tickets WHERE account_id = %(account)s AND opened_at <= %(at)s
"""


def gather_inputs(conn: Connection[Any], account_id: int, at: datetime) -> dict[str, Any]:
    """Raw figures for ``account_id`` from data stamped before ``at``."""
    devices = conn.execute(
        "SELECT count(*) FROM devices WHERE account_id = %s AND status <> 'decommissioned'",
        (account_id,),
    ).fetchone()
    n_devices = int(devices[0]) if devices else 0
    risk = conn.execute(
        "SELECT avg(p.failure_risk), count(*) FROM devices d CROSS JOIN LATERAL ("
        " SELECT failure_risk FROM predictions WHERE device_id = d.id AND predicted_at <= %s "
        " AND predicted_at > %s - interval '14 days' AND failure_risk IS NOT NULL"
        " ORDER BY predicted_at DESC LIMIT 1) p WHERE d.account_id = %s",
        (at, at, account_id),
    ).fetchone()
    usage = conn.execute(_USAGE, {"at": at, "account": account_id}).fetchone()
    assert usage is not None
    tickets = conn.execute(_TICKETS, {"at": at, "account": account_id}).fetchone()
    assert tickets is not None
    renewal = conn.execute(
        "SELECT min(renewal_date) FROM contracts WHERE account_id = %s AND renewal_date >= %s::date"
        " AND status IN ('active', 'renewed', 'expanded')",
        (account_id, at),
    ).fetchone()
    nps = conn.execute(
        "SELECT score FROM account_nps WHERE account_id = %s AND surveyed_at <= %s"
        " AND surveyed_at > %s - interval '365 days' ORDER BY surveyed_at DESC LIMIT 1",
        (account_id, at, at),
    ).fetchone()
    days_to_renewal = (
        (renewal[0] - at.date()).days if renewal is not None and renewal[0] is not None else None
    )
    return {
        "at": at.isoformat(),
        "devices": n_devices,
        "mean_failure_risk": _float(risk[0]) if risk else None,
        "devices_with_predictions": int(risk[1]) if risk else 0,
        "running_device_days_90d": int(usage[0] or 0),
        "running_device_days_prior_90d": int(usage[1] or 0),
        "sessions_90d": _float(usage[2]) or 0.0,
        "sessions_prior_90d": _float(usage[3]) or 0.0,
        "feature_uses_90d": _float(usage[4]) or 0.0,
        "feature_uses_prior_90d": _float(usage[5]) or 0.0,
        "tickets_180d": int(tickets[0] or 0),
        "complaints_180d": int(tickets[1] or 0),
        "breakdowns_365d": int(tickets[2] or 0),
        "breakdown_hours_365d": _float(tickets[3]) or 0.0,
        "mean_resolution_h_365d": _float(tickets[4]),
        "days_to_renewal": days_to_renewal,
        "nps": int(nps[0]) if nps else None,
    }


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _clip(value: float) -> float:
    return min(1.0, max(0.0, value))


def engagement_estimate(sessions: float, running_days: int) -> float | None:
    """Sessions per running device-day on a 0..1 engagement scale (``None``: no running day).

    The scale inverts the usage the product sees from an engaged customer: about 0.3
    sessions a day from a customer that does not care, up to about 4 from a fully engaged one
    (``rate ≈ 1.13 · (0.3 + 3.5 · e^1.5)``).
    """
    if running_days <= 0:
        return None
    rate = sessions / running_days / 1.13
    return float(min(1.0, max(0.0, (rate - 0.3) / 3.5) ** (2 / 3)))


def measures_from_inputs(inputs: dict[str, Any]) -> dict[str, float | None]:
    """Each measure in 0..1 (1 is healthy), ``None`` when the account has no data for it."""
    devices = inputs["devices"]
    out: dict[str, float | None] = dict.fromkeys(MEASURE_NAMES)
    if inputs["devices_with_predictions"]:
        out["fleet_risk"] = _clip(1.0 - float(inputs["mean_failure_risk"]))
    if devices:
        # A breakdown costs about as much goodwill as 80 hours down.
        lost_h = (inputs["breakdown_hours_365d"] + 80.0 * inputs["breakdowns_365d"]) / devices
        out["uptime"] = _clip(1.0 - lost_h / UPTIME_SCALE_H)
        out["ticket_volume"] = math.exp(-inputs["tickets_180d"] / (2.0 * devices**0.7))
    recent = engagement_estimate(inputs["sessions_90d"], inputs["running_device_days_90d"])
    prior = engagement_estimate(
        inputs["sessions_prior_90d"], inputs["running_device_days_prior_90d"]
    )
    out["adoption"] = recent
    if recent is not None and prior is not None and inputs["running_device_days_prior_90d"] >= 14:
        out["usage_trend"] = _clip(0.5 + (recent - prior))
    if inputs["mean_resolution_h_365d"] is not None:
        out["time_to_resolve"] = _clip(1.0 - (inputs["mean_resolution_h_365d"] - 24.0) / 300.0)
    if inputs["days_to_renewal"] is not None:
        out["renewal_proximity"] = _clip(inputs["days_to_renewal"] / 180.0)
    if inputs["nps"] is not None:
        out["nps"] = inputs["nps"] / 10.0
    return out


def lookback() -> timedelta:
    """How far back a score looks."""
    return timedelta(days=LOOKBACK_DAYS)
