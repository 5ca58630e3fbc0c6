"""Raising CSM alerts: deduplicated per need, cooled down after resolution, raised in severity
when the same need comes back worse, and notified through the outbox in the same transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row

from backend.care.audit import write_audit
from backend.care.needs import lock_key, open_need
from backend.care.outbox import enqueue
from backend.care.views import AlertView

ENGINE_ACTOR = "care-engine"
SEVERITY_ORDER = {"info": 0, "warning": 1, "critical": 2}
AlertOutcome = Literal["opened", "escalated", "unchanged", "cooling_down"]


@dataclass(frozen=True)
class AlertRequest:
    account_id: int
    kind: str
    severity: str
    reasons: tuple[dict[str, Any], ...]
    rule_id: int | None
    dedup_key: str
    device_id: int | None = None
    failure_mode: str | None = None


@dataclass(frozen=True)
class AlertResult:
    outcome: AlertOutcome
    alert_id: int | None


def _csm_of(conn: psycopg.Connection[Any], account_id: int) -> tuple[int | None, str | None]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT a.csm_user_id, u.email FROM accounts a"
            " LEFT JOIN users u ON u.id = a.csm_user_id AND u.disabled_at IS NULL"
            " WHERE a.id = %s",
            (account_id,),
        )
        row = cur.fetchone()
    return (None, None) if row is None else (row[0], row[1])


def raise_alert(
    conn: psycopg.Connection[Any],
    request: AlertRequest,
    *,
    at: datetime,
    cooldown_hours: float,
    email_alerts: bool = False,
) -> AlertResult:
    """Open (or escalate) the alert of ``request.dedup_key``, inside the caller's transaction."""
    lock_key(conn, request.dedup_key)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT * FROM alerts WHERE dedup_key = %s AND status <> 'resolved' FOR UPDATE",
            (request.dedup_key,),
        )
        existing = cur.fetchone()
        if existing is not None:
            if SEVERITY_ORDER[request.severity] <= SEVERITY_ORDER[existing["severity"]]:
                return AlertResult("unchanged", existing["id"])
            cur.execute(
                "UPDATE alerts SET severity = %s, reasons = %s, updated_at = %s"
                " WHERE id = %s RETURNING *",
                (request.severity, json.dumps(list(request.reasons)), at, existing["id"]),
            )
            row = cur.fetchone()
            assert row is not None
            audit_id = write_audit(
                conn,
                ENGINE_ACTOR,
                "alert.escalated",
                "alert",
                row["id"],
                {"from": existing["severity"], "to": request.severity},
            )
            enqueue(
                conn,
                "alert.escalated",
                "alert",
                row["id"],
                f"audit-{audit_id}",
                AlertView.model_validate(row),
                occurred_at=at,
            )
            return AlertResult("escalated", row["id"])
        cur.execute(
            "SELECT 1 FROM alerts WHERE dedup_key = %s AND status = 'resolved'"
            " AND resolved_at >= %s LIMIT 1",
            (request.dedup_key, at - timedelta(hours=cooldown_hours)),
        )
        if cur.fetchone() is not None:
            return AlertResult("cooling_down", None)
        need_id = open_need(
            conn,
            request.dedup_key,
            device_id=request.device_id,
            account_id=request.account_id,
            failure_mode=request.failure_mode,
            at=at,
        )
        csm_user_id, csm_email = _csm_of(conn, request.account_id)
        cur.execute(
            "INSERT INTO alerts (need_id, dedup_key, account_id, csm_user_id, kind, severity,"
            " reasons, rule_id, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING RETURNING *",
            (
                need_id,
                request.dedup_key,
                request.account_id,
                csm_user_id,
                request.kind,
                request.severity,
                json.dumps(list(request.reasons)),
                request.rule_id,
                at,
                at,
            ),
        )
        row = cur.fetchone()
        if row is None:  # the index saw a concurrent twin the lock did not (different key)
            return AlertResult("unchanged", None)
        write_audit(conn, ENGINE_ACTOR, "alert.opened", "alert", row["id"], {"kind": request.kind})
        enqueue(
            conn,
            "alert.opened",
            "alert",
            row["id"],
            "opened",
            AlertView.model_validate(row),
            occurred_at=at,
            email_to=csm_email if email_alerts else None,
        )
        return AlertResult("opened", row["id"])
