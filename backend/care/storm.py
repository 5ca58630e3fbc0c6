"""Storm control: many devices of one site or account at risk at once become one incident.

A network outage or a bad firmware batch makes every device of a site look like it is failing.
Instead of hundreds of tickets, the engine opens one incident per site (or account) and kind,
adds each at-risk device to it as a member and keeps a summary. Two triggers:

* ``storm``: at least ``storm_site_devices`` (``storm_account_devices``) distinct devices of
  the site (account) met a ticket rule within the storm window;
* ``rate_cap``: the site (account) already got its hourly quota of tickets.

While an incident of the site or account is open, new at-risk devices join it. An incident
closes when no member joined for ``incident_quiet_hours``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row

from backend.care.audit import write_audit
from backend.care.context import PredictionContext
from backend.care.needs import lock_key
from backend.care.outbox import enqueue
from backend.care.settings import CareSettings
from backend.care.views import IncidentView, get_incident

ENGINE_ACTOR = "care-engine"
Scope = Literal["site", "account"]


@dataclass(frozen=True)
class StormLimits:
    window: timedelta
    site_devices: int
    account_devices: int
    site_tickets_per_hour: int
    account_tickets_per_hour: int

    @classmethod
    def from_settings(cls, settings: CareSettings) -> StormLimits:
        return cls(
            window=timedelta(minutes=settings.storm_window_minutes),
            site_devices=settings.storm_site_devices,
            account_devices=settings.storm_account_devices,
            site_tickets_per_hour=settings.max_tickets_per_site_per_hour,
            account_tickets_per_hour=settings.max_tickets_per_account_per_hour,
        )


def record_signal(
    conn: psycopg.Connection[Any], ctx: PredictionContext, risk: float, at: datetime
) -> None:
    """Remember that this device met a ticket rule now (storm detection counts these)."""
    conn.execute(
        "INSERT INTO risk_signals (at, device_id, account_id, site_id, failure_mode,"
        " failure_risk, prediction_id) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (at, ctx.device_id, ctx.account_id, ctx.site_id, ctx.failure_mode, risk, ctx.prediction_id),
    )


def _scopes(ctx: PredictionContext) -> list[tuple[Scope, int]]:
    scopes: list[tuple[Scope, int]] = []
    if ctx.site_id is not None:
        scopes.append(("site", ctx.site_id))
    if ctx.account_id is not None:
        scopes.append(("account", ctx.account_id))
    return scopes


def _column(scope: Scope) -> str:
    return "site_id" if scope == "site" else "account_id"


def _open_incident_of(conn: psycopg.Connection[Any], scope: Scope, scope_id: int) -> int | None:
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT id FROM incidents WHERE scope = %s AND {_column(scope)} = %s"
            " AND closed_at IS NULL ORDER BY id LIMIT 1",
            (scope, scope_id),
        )
        row = cur.fetchone()
    return None if row is None else int(row[0])


def _count(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...]) -> int:
    with conn.cursor() as cur:
        cur.execute(query, params)
        row = cur.fetchone()
    return 0 if row is None else int(row[0])


def _open_incident(
    conn: psycopg.Connection[Any],
    ctx: PredictionContext,
    scope: Scope,
    scope_id: int,
    kind: str,
    summary: str,
    at: datetime,
    window_start: datetime,
) -> int:
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO incidents (scope, account_id, site_id, kind, summary, opened_at,"
            " last_member_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING RETURNING id",
            (
                scope,
                ctx.account_id,
                ctx.site_id if scope == "site" else None,
                kind,
                summary,
                at,
                at,
            ),
        )
        row = cur.fetchone()
        if row is None:
            existing = _open_incident_of(conn, scope, scope_id)
            assert existing is not None
            return existing
        incident_id = int(row[0])
        # Tickets opened for this scope during the window belong to the event too.
        cur.execute(
            f"UPDATE tickets SET incident_id = %s WHERE {_column(scope)} = %s"
            " AND created_at >= %s AND incident_id IS NULL"
            " AND status IN ('open', 'assigned', 'in_progress')",
            (incident_id, scope_id, window_start),
        )
    write_audit(
        conn, ENGINE_ACTOR, "incident.opened", "incident", incident_id, {"summary": summary}
    )
    enqueue(
        conn,
        "incident.opened",
        "incident",
        incident_id,
        "opened",
        get_incident(conn, incident_id),
        occurred_at=at,
    )
    return incident_id


def route_to_incident(
    conn: psycopg.Connection[Any], ctx: PredictionContext, at: datetime, limits: StormLimits
) -> int | None:
    """The incident this at-risk device joins instead of getting a ticket, or ``None``.

    Call after :func:`record_signal`, inside the transaction that would open the ticket.
    """
    scopes = _scopes(ctx)
    for scope, scope_id in sorted(scopes, key=lambda s: s[0]):  # account before site, always
        lock_key(conn, f"{scope}:{scope_id}")
    for scope, scope_id in scopes:
        incident_id = _open_incident_of(conn, scope, scope_id)
        if incident_id is not None:
            return incident_id
    window_start = at - timedelta(seconds=limits.window.total_seconds())
    hour_ago = at - timedelta(hours=1)
    for scope, scope_id in scopes:
        column = _column(scope)
        at_risk = _count(
            conn,
            f"SELECT count(DISTINCT device_id) FROM risk_signals WHERE {column} = %s AND at >= %s",
            (scope_id, window_start),
        )
        storm_floor = limits.site_devices if scope == "site" else limits.account_devices
        if at_risk >= storm_floor:
            summary = (
                f"{at_risk} devices of {scope} {scope_id} at risk within"
                f" {limits.window.total_seconds() / 60:.0f} min: a {scope}-wide event"
                " (network outage, firmware batch, environment) is more likely than"
                " independent failures"
            )
            return _open_incident(conn, ctx, scope, scope_id, "storm", summary, at, window_start)
        cap = limits.site_tickets_per_hour if scope == "site" else limits.account_tickets_per_hour
        opened = _count(
            conn,
            f"SELECT count(*) FROM tickets WHERE {column} = %s AND created_at >= %s",
            (scope_id, hour_ago),
        )
        if opened >= cap:
            summary = (
                f"{scope} {scope_id} reached its cap of {cap} tickets per hour;"
                " further at-risk devices are grouped here"
            )
            return _open_incident(conn, ctx, scope, scope_id, "rate_cap", summary, at, hour_ago)
    return None


def add_member(
    conn: psycopg.Connection[Any],
    incident_id: int,
    ctx: PredictionContext,
    risk: float,
    at: datetime,
) -> None:
    """Add the device to the incident (or refresh its risk) and rewrite the summary."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "INSERT INTO incident_members (incident_id, device_id, failure_mode, failure_risk,"
            " prediction_id, added_at) VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (incident_id, device_id, failure_mode) DO UPDATE"
            " SET failure_risk = GREATEST(incident_members.failure_risk, EXCLUDED.failure_risk),"
            " prediction_id = EXCLUDED.prediction_id",
            (incident_id, ctx.device_id, ctx.failure_mode, risk, ctx.prediction_id, at),
        )
        cur.execute(
            "SELECT count(DISTINCT device_id) AS devices, max(failure_risk) AS max_risk,"
            " string_agg(DISTINCT failure_mode, ', ' ORDER BY failure_mode) AS modes"
            " FROM incident_members WHERE incident_id = %s",
            (incident_id,),
        )
        stats = cur.fetchone()
        assert stats is not None
        cur.execute("SELECT kind, scope, summary FROM incidents WHERE id = %s", (incident_id,))
        head = cur.fetchone()
        assert head is not None
        first_line = str(head["summary"]).split("\n", 1)[0]
        summary = (
            f"{first_line}\nmembers: {stats['devices']} devices; failure modes: {stats['modes']};"
            f" highest risk {stats['max_risk']:.2f}"
        )
        cur.execute(
            "UPDATE incidents SET member_count = %s, last_member_at = %s, summary = %s"
            " WHERE id = %s",
            (stats["devices"], at, summary, incident_id),
        )


def close_quiet_incidents(
    conn: psycopg.Connection[Any], at: datetime, quiet_hours: float
) -> list[IncidentView]:
    """Close every open incident no device joined for ``quiet_hours``."""
    reason = f"no device joined for {quiet_hours:g} h"
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE incidents SET closed_at = %s, close_reason = %s"
            " WHERE closed_at IS NULL AND COALESCE(last_member_at, opened_at) < %s RETURNING id",
            (at, reason, at - timedelta(hours=quiet_hours)),
        )
        ids = [int(row[0]) for row in cur.fetchall()]
    closed = []
    for incident_id in ids:
        view = get_incident(conn, incident_id)
        write_audit(
            conn, ENGINE_ACTOR, "incident.closed", "incident", incident_id, {"reason": reason}
        )
        enqueue(conn, "incident.closed", "incident", incident_id, "closed", view, occurred_at=at)
        closed.append(view)
    return closed
