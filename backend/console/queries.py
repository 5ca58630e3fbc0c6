"""What the console pages read, always within the caller's scope.

The scope is the API's (``backend.api.scoping``, one definition for both): an admin or viewer
sees everything, a CSM the accounts they own (and those accounts' tickets and alerts), a field
user the tickets of their region or team. A row outside the scope is answered as if it did
not exist.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from backend.api.auth import Principal
from backend.api.scoping import account_condition, ticket_condition
from backend.console.charts import Point
from backend.console.signals import signal_of
from backend.storage.migrator import dialect_of
from backend.storage.rollup_queries import raw_buckets

Connection = psycopg.Connection[Any]

ACTIVE_TICKET_STATUSES = ("open", "assigned", "in_progress")


def can_see_accounts(principal: Principal) -> bool:
    return principal.role in ("admin", "viewer", "csm")


def can_see_tickets(principal: Principal) -> bool:
    return principal.role in ("admin", "viewer", "csm", "field")


def can_act_on_tickets(principal: Principal) -> bool:
    return principal.role in ("admin", "field")


def can_act_on_alerts(principal: Principal) -> bool:
    return principal.role in ("admin", "csm")


_TICKET_COLUMNS = """
    t.id, t.priority, t.status, t.failure_mode, t.failure_risk, t.expected_failure_at,
    t.recommended_action, t.parts, t.region, t.team, t.created_at, t.updated_at, t.outcome,
    t.outcome_notes, t.assigned_to, u.name AS assignee, t.device_id, d.external_id AS device,
    dm.name AS device_model, t.account_id, a.name AS account, s.name AS site, t.prediction_id
"""
_TICKET_FROM = """
    FROM tickets t
    JOIN devices d ON d.id = t.device_id
    JOIN device_models dm ON dm.id = d.model_id
    LEFT JOIN accounts a ON a.id = t.account_id
    LEFT JOIN sites s ON s.id = t.site_id
    LEFT JOIN users u ON u.id = t.assigned_to
"""


def _tickets(
    conn: Connection, principal: Principal, where: str, values: dict[str, Any]
) -> list[dict[str, Any]]:
    """Tickets matching ``where`` (named parameters) within the caller's scope, most urgent
    first (priority 1 first, then the oldest)."""
    scope, scope_values = ticket_condition(principal)
    query = sql.SQL(
        f"SELECT {_TICKET_COLUMNS} {_TICKET_FROM} WHERE {where} AND {{}} "
        "ORDER BY t.priority, t.created_at LIMIT %(limit)s"
    ).format(scope)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, {"limit": None, **values, **scope_values}).fetchall()


def ticket_queue(
    conn: Connection, principal: Principal, *, active_only: bool = True, limit: int = 200
) -> list[dict[str, Any]]:
    """Tickets in scope, most urgent first; only open work unless ``active_only`` is off."""
    where = "t.status = ANY(%(statuses)s)" if active_only else "TRUE"
    values = {"statuses": list(ACTIVE_TICKET_STATUSES), "limit": limit}
    return _tickets(conn, principal, where, values)


def account_tickets(
    conn: Connection, principal: Principal, account_id: int
) -> list[dict[str, Any]]:
    """Open tickets of one account, within the caller's ticket scope."""
    where = "t.account_id = %(account)s AND t.status = ANY(%(statuses)s)"
    values = {"account": account_id, "statuses": list(ACTIVE_TICKET_STATUSES)}
    return _tickets(conn, principal, where, values)


def ticket(conn: Connection, principal: Principal, ticket_id: int) -> dict[str, Any] | None:
    rows = _tickets(conn, principal, "t.id = %(id)s", {"id": ticket_id})
    return rows[0] if rows else None


def ticket_events(conn: Connection, ticket_id: int) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT at, actor, from_status, to_status, note FROM ticket_events "
            "WHERE ticket_id = %s ORDER BY at, id",
            (ticket_id,),
        ).fetchall()


def prediction(
    conn: Connection, prediction_id: int | None, device_id: int
) -> dict[str, Any] | None:
    """The ticket's prediction, or the device's latest when the ticket has none."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT p.id, p.predicted_at, p.horizon_hours, p.failure_risk, p.rul_hours, "
            "p.failure_mode, p.mode_probabilities, p.contributions, p.anomaly_score, "
            "mv.name AS model_name, mv.version AS model_version "
            "FROM predictions p LEFT JOIN model_versions mv ON mv.id = p.model_version_id "
            "WHERE p.device_id = %s AND (%s::bigint IS NULL OR p.id = %s) "
            "ORDER BY p.predicted_at DESC LIMIT 1",
            (device_id, prediction_id, prediction_id),
        ).fetchone()


def assignable_field_users(
    conn: Connection, region: str | None, team: str | None
) -> list[dict[str, Any]]:
    """Field users who may take a ticket of this region or team."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT id, name, region, team FROM users WHERE role = 'field' AND disabled_at IS NULL "
            "AND (region = %s OR team = %s) ORDER BY name",
            (region, team),
        ).fetchall()


@dataclass(frozen=True)
class SensorSeries:
    metric: str
    unit: str
    sensor: list[Point]
    risk: list[Point]


def _chart_metric(
    conn: Connection, device_id: int, preferred: list[str]
) -> tuple[int, str, str] | None:
    """The metric to chart: the first contributing signal the device reports, else its first."""
    rows = conn.execute(
        "SELECT m.id, m.name, m.unit FROM devices d "
        "JOIN device_model_metrics dmm ON dmm.model_id = d.model_id "
        "JOIN metrics m ON m.id = dmm.metric_id WHERE d.id = %s ORDER BY dmm.position",
        (device_id,),
    ).fetchall()
    by_name = {str(name): (int(mid), str(name), str(unit)) for mid, name, unit in rows}
    for name in preferred:
        if name in by_name:
            return by_name[name]
    return (int(rows[0][0]), str(rows[0][1]), str(rows[0][2])) if rows else None


def other_likely_modes(
    mode_probabilities: Any, ticket_mode: str, shown: int = 3, floor: float = 0.05
) -> list[tuple[str, float]]:
    """The prediction's other failure modes at ``floor`` or more, most probable first.

    A ticket names the most probable mode; when the first alert names the wrong one, the
    mode that fails is most often the runner-up, so the technician sees those too.
    """
    if not isinstance(mode_probabilities, dict):
        return []
    modes = [
        (str(mode), float(p))
        for mode, p in mode_probabilities.items()
        if mode != ticket_mode
        and isinstance(p, int | float)
        and not isinstance(p, bool)
        and math.isfinite(p)
        and p >= floor
    ]
    return sorted(modes, key=lambda item: -item[1])[:shown]


def contributing_signals(contributions: Any) -> list[str]:
    """Signal names of a prediction's contributions, strongest first, in whatever form stored."""
    names = (signal_of(item) for item in contributions or [])
    return [name for name in names if name is not None]


def metric_units(conn: Connection, names: list[str]) -> dict[str, str]:
    """The unit of each of ``names`` known to the metric catalogue (``""`` when unitless)."""
    if not names:
        return {}
    rows = conn.execute("SELECT name, unit FROM metrics WHERE name = ANY(%s)", (names,))
    return {str(name): str(unit) for name, unit in rows}


def sensor_series(
    conn: Connection,
    device_id: int,
    preferred_metrics: list[str],
    *,
    end: datetime,
    span: timedelta = timedelta(days=7),
    points: int = 168,
) -> SensorSeries | None:
    """Bucketed averages of one metric and the failure risk predicted over ``span`` to ``end``."""
    metric = _chart_metric(conn, device_id, preferred_metrics)
    if metric is None:
        return None
    metric_id, name, unit = metric
    start = end - span
    width = max(timedelta(minutes=1), span / points)
    buckets = raw_buckets(conn, dialect_of(conn), width, start, end, [device_id], [metric_id])
    sensor = [Point(b.bucket, float(b.avg)) for b in buckets if b.avg is not None]
    risk_rows = conn.execute(
        "SELECT predicted_at, failure_risk FROM predictions WHERE device_id = %s "
        "AND predicted_at >= %s AND predicted_at < %s AND failure_risk IS NOT NULL "
        "ORDER BY predicted_at",
        (device_id, start, end),
    ).fetchall()
    risk = [Point(at, float(value)) for at, value in risk_rows]
    return SensorSeries(name, unit, sensor, risk)


def accounts_by_health(conn: Connection, principal: Principal) -> list[dict[str, Any]]:
    """Accounts in scope with their latest health score, worst first."""
    scope, values = account_condition(principal)
    query = sql.SQL(
        "SELECT a.id, a.name, a.region, a.segment, h.score, h.band, h.trend, h.churn_risk, "
        "h.computed_at, c.renewal_date, "
        "(SELECT count(*) FROM alerts al WHERE al.account_id = a.id "
        " AND al.status <> 'resolved') AS open_alerts, "
        "(SELECT count(*) FROM tickets t WHERE t.account_id = a.id "
        " AND t.status IN ('open', 'assigned', 'in_progress')) AS open_tickets "
        "FROM accounts a "
        "LEFT JOIN LATERAL (SELECT score, band, trend, churn_risk, computed_at "
        "  FROM health_scores hs WHERE hs.account_id = a.id "
        "  ORDER BY computed_at DESC LIMIT 1) h ON TRUE "
        "LEFT JOIN LATERAL (SELECT coalesce(renewal_date, end_date) AS renewal_date "
        "  FROM contracts ct WHERE ct.account_id = a.id AND ct.status = 'active' "
        "  ORDER BY coalesce(renewal_date, end_date) LIMIT 1) c ON TRUE "
        "WHERE a.status <> 'erased' AND {} "
        "ORDER BY h.score NULLS LAST, a.name"
    ).format(scope)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, values).fetchall()


def account_visible(conn: Connection, principal: Principal, account_id: int) -> bool:
    scope, values = account_condition(principal)
    query = sql.SQL(
        "SELECT 1 FROM accounts a WHERE a.id = %(account)s AND a.status <> 'erased' AND {}"
    ).format(scope)
    return conn.execute(query, {**values, "account": account_id}).fetchone() is not None


def account_alerts(conn: Connection, account_id: int) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT id, kind, severity, status, reasons, created_at, acknowledged_at, resolved_at "
            "FROM alerts WHERE account_id = %s "
            "ORDER BY (status = 'resolved'), created_at DESC LIMIT 50",
            (account_id,),
        ).fetchall()


def alert_account(conn: Connection, alert_id: int) -> int | None:
    row = conn.execute("SELECT account_id FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    return int(row[0]) if row is not None else None
