"""Opening, escalating and auto-closing care tickets from assessed predictions.

Every function runs inside the caller's transaction and first takes the advisory lock of the
need's key, so concurrent scoring workers that see the same device and failure mode act one
after the other; the partial unique index ``tickets_one_open`` (one open ticket per device and
failure mode) and ``INSERT ... ON CONFLICT DO NOTHING`` are the backstop.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row

from backend.care.alerts import AlertRequest, raise_alert
from backend.care.context import PredictionContext
from backend.care.lifecycle import resolve_linked_alerts
from backend.care.needs import close_need, device_need_key, lock_key, open_need
from backend.care.outbox import enqueue
from backend.care.rule_definitions import FailureRiskRule
from backend.care.rule_store import StoredRule
from backend.care.storm import StormLimits, add_member, record_signal, route_to_incident
from backend.care.ticket_rules import TicketAssessment
from backend.care.views import TicketView

ENGINE_ACTOR = "care-engine"
OPEN_STATUSES = ("open", "assigned", "in_progress")
NO_WORK_STATUSES = ("open", "assigned")
TicketOutcome = Literal[
    "opened", "escalated", "unchanged", "cooling_down", "incident", "auto_closed", "nothing"
]


@dataclass(frozen=True)
class EngineParams:
    """The settings the ticket path needs (taken from CareSettings once)."""

    cooldown_hours: float
    escalate_risk_delta: float
    email_alerts: bool
    storm: StormLimits


@dataclass(frozen=True)
class TicketResult:
    outcome: TicketOutcome
    ticket_id: int | None = None
    incident_id: int | None = None


def _event(
    conn: psycopg.Connection[Any],
    ticket_id: int,
    at: datetime,
    from_status: str | None,
    to_status: str,
    note: str,
    actor: str = ENGINE_ACTOR,
) -> int:
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO ticket_events (ticket_id, at, actor, from_status, to_status, note)"
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
            (ticket_id, at, actor, from_status, to_status, note),
        )
        row = cur.fetchone()
    assert row is not None
    return int(row[0])


def _open_ticket_of(
    conn: psycopg.Connection[Any], device_id: int, failure_mode: str
) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT * FROM tickets WHERE device_id = %s AND failure_mode = %s"
            " AND status IN ('open', 'assigned', 'in_progress') FOR UPDATE",
            (device_id, failure_mode),
        )
        return cur.fetchone()


def _cooling_down(
    conn: psycopg.Connection[Any], ctx: PredictionContext, at: datetime, hours: float
) -> bool:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT 1 FROM tickets WHERE device_id = %s AND failure_mode = %s"
            " AND status IN ('resolved', 'closed') AND COALESCE(resolved_at, updated_at) >= %s"
            " LIMIT 1",
            (ctx.device_id, ctx.failure_mode, at - timedelta(hours=hours)),
        )
        return cur.fetchone() is not None


def _notify_csm(
    conn: psycopg.Connection[Any],
    ctx: PredictionContext,
    ticket: dict[str, Any],
    rule: StoredRule,
    at: datetime,
    params: EngineParams,
) -> None:
    assert isinstance(rule.definition, FailureRiskRule)
    if ctx.account_id is None or ticket["priority"] > rule.definition.notify_csm_max_priority:
        return
    reason = {
        "text": f"{ctx.device_external_id} may fail from {ctx.failure_mode.replace('_', ' ')}"
        f" (risk {ticket['failure_risk'] * 100:.0f} %); ticket #{ticket['id']},"
        f" P{ticket['priority']}",
        "ticket_id": ticket["id"],
        "device_id": ctx.device_id,
        "device": ctx.device_external_id,
        "failure_mode": ctx.failure_mode,
        "failure_risk": ticket["failure_risk"],
        "priority": ticket["priority"],
        "expected_failure_at": ticket["expected_failure_at"].isoformat()
        if ticket["expected_failure_at"]
        else None,
    }
    raise_alert(
        conn,
        AlertRequest(
            account_id=ctx.account_id,
            kind="device_risk",
            severity="critical" if ticket["priority"] == 1 else "warning",
            reasons=(reason,),
            rule_id=rule.id,
            dedup_key=ticket["dedup_key"],
            device_id=ctx.device_id,
            failure_mode=ctx.failure_mode,
        ),
        at=at,
        cooldown_hours=params.cooldown_hours,
        email_alerts=params.email_alerts,
    )


def _escalate(
    conn: psycopg.Connection[Any],
    ticket: dict[str, Any],
    ctx: PredictionContext,
    assessment: TicketAssessment,
    rule: StoredRule,
    at: datetime,
    params: EngineParams,
) -> TicketResult:
    risk_rose = assessment.risk >= ticket["failure_risk"] + params.escalate_risk_delta - 1e-9
    more_urgent = assessment.priority < ticket["priority"]
    if not (risk_rose or more_urgent):
        return TicketResult("unchanged", ticket["id"])
    priority = min(ticket["priority"], assessment.priority)
    if risk_rose and not more_urgent and priority > 1:
        priority -= 1  # a markedly higher risk moves the ticket up at least one step
    expected = min(
        (t for t in (ticket["expected_failure_at"], assessment.expected_failure_at) if t),
        default=None,
    )
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "UPDATE tickets SET failure_risk = %s, priority = %s, expected_failure_at = %s,"
            " priority_factors = %s, escalations = escalations + 1, prediction_id = %s,"
            " updated_at = %s WHERE id = %s RETURNING *",
            (
                max(ticket["failure_risk"], assessment.risk),
                priority,
                expected,
                json.dumps(assessment.factors),
                ctx.prediction_id,
                at,
                ticket["id"],
            ),
        )
        updated = cur.fetchone()
    assert updated is not None
    note = (
        f"escalated: risk {ticket['failure_risk']:.2f} -> {updated['failure_risk']:.2f},"
        f" priority {ticket['priority']} -> {priority}"
    )
    event_id = _event(conn, ticket["id"], at, ticket["status"], ticket["status"], note)
    enqueue(
        conn,
        "ticket.escalated",
        "ticket",
        ticket["id"],
        f"event-{event_id}",
        TicketView.model_validate(updated),
        occurred_at=at,
    )
    _notify_csm(conn, ctx, updated, rule, at, params)
    return TicketResult("escalated", ticket["id"])


def _insert_ticket(
    conn: psycopg.Connection[Any],
    ctx: PredictionContext,
    assessment: TicketAssessment,
    rule: StoredRule,
    need_id: int,
    key: str,
    at: datetime,
) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "INSERT INTO tickets (need_id, dedup_key, device_id, account_id, site_id, region,"
            " failure_mode, failure_risk, expected_failure_at, recommended_action, parts,"
            " priority, priority_factors, prediction_id, model_version_id, rule_id,"
            " created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (device_id, failure_mode)"
            " WHERE status IN ('open', 'assigned', 'in_progress') DO NOTHING RETURNING *",
            (
                need_id,
                key,
                ctx.device_id,
                ctx.account_id,
                ctx.site_id,
                ctx.region,
                ctx.failure_mode,
                assessment.risk,
                assessment.expected_failure_at,
                assessment.repair.action,
                json.dumps(list(assessment.repair.parts)),
                assessment.priority,
                json.dumps(assessment.factors),
                ctx.prediction_id,
                ctx.model_version_id,
                rule.id,
                at,
                at,
            ),
        )
        return cur.fetchone()


def raise_ticket(
    conn: psycopg.Connection[Any],
    ctx: PredictionContext,
    assessment: TicketAssessment,
    rule: StoredRule,
    at: datetime,
    params: EngineParams,
) -> TicketResult:
    """Act on a qualifying prediction: escalate the open ticket, or open one (or join an
    incident when storm control says so), with its outbox rows, in the caller's transaction."""
    key = device_need_key(ctx.device_id, ctx.failure_mode)
    lock_key(conn, key)
    existing = _open_ticket_of(conn, ctx.device_id, ctx.failure_mode)
    if existing is not None:
        return _escalate(conn, existing, ctx, assessment, rule, at, params)
    if _cooling_down(conn, ctx, at, params.cooldown_hours):
        return TicketResult("cooling_down")
    record_signal(conn, ctx, assessment.risk, at)
    incident_id = route_to_incident(conn, ctx, at, params.storm)
    if incident_id is not None:
        add_member(conn, incident_id, ctx, assessment.risk, at)
        return TicketResult("incident", incident_id=incident_id)
    need_id = open_need(
        conn,
        key,
        device_id=ctx.device_id,
        account_id=ctx.account_id,
        failure_mode=ctx.failure_mode,
        at=at,
    )
    ticket = _insert_ticket(conn, ctx, assessment, rule, need_id, key, at)
    if ticket is None:  # only reachable if a writer skipped the lock; the index held
        existing = _open_ticket_of(conn, ctx.device_id, ctx.failure_mode)
        return TicketResult("unchanged", existing["id"] if existing else None)
    _event(conn, ticket["id"], at, None, "open", "; ".join(assessment.reasons))
    enqueue(
        conn,
        "ticket.opened",
        "ticket",
        ticket["id"],
        "opened",
        TicketView.model_validate(ticket),
        occurred_at=at,
    )
    _notify_csm(conn, ctx, ticket, rule, at, params)
    return TicketResult("opened", ticket["id"])


def auto_close_ticket(
    conn: psycopg.Connection[Any],
    ctx: PredictionContext,
    assessment: TicketAssessment,
    at: datetime,
    confirmed: Callable[[], bool] = lambda: True,
) -> TicketResult:
    """Close the open ticket of the device and mode when no work started on it and
    ``confirmed()`` (asked only when there is such a ticket) agrees."""
    key = device_need_key(ctx.device_id, ctx.failure_mode)
    lock_key(conn, key)
    ticket = _open_ticket_of(conn, ctx.device_id, ctx.failure_mode)
    if ticket is None or ticket["status"] not in NO_WORK_STATUSES or not confirmed():
        return TicketResult("nothing", ticket["id"] if ticket else None)
    risk_text = "n/a" if ctx.failure_risk is None else f"{ctx.failure_risk:.2f}"
    rul_text = "n/a" if ctx.rul_hours is None else f"{ctx.rul_hours:.0f} h"
    reason = (
        f"risk receded (prediction {ctx.prediction_id}: risk {risk_text}, RUL {rul_text},"
        f" lead time needed {assessment.lead_hours_needed:.0f} h) before work started"
    )
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "UPDATE tickets SET status = 'closed', outcome = 'auto_closed', outcome_notes = %s,"
            " resolved_at = %s, updated_at = %s WHERE id = %s RETURNING *",
            (reason, at, at, ticket["id"]),
        )
        closed = cur.fetchone()
    assert closed is not None
    event_id = _event(conn, ticket["id"], at, ticket["status"], "closed", reason)
    enqueue(
        conn,
        "ticket.closed",
        "ticket",
        ticket["id"],
        f"event-{event_id}",
        TicketView.model_validate(closed),
        occurred_at=at,
    )
    if ticket["need_id"] is not None:
        close_need(conn, ticket["need_id"], "auto_closed", at)
        resolve_linked_alerts(conn, ticket["need_id"], "auto_closed", reason, at)
    return TicketResult("auto_closed", ticket["id"])
