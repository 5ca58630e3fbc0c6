"""Read models of tickets, alerts and incidents (what the API and notifications show)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict

from backend.care.errors import NotFoundError

TicketStatus = Literal["open", "assigned", "in_progress", "resolved", "closed"]
TicketOutcome = Literal["failure_confirmed", "failure_prevented", "no_fault_found", "auto_closed"]
AlertStatus = Literal["open", "acknowledged", "resolved"]


class TicketView(BaseModel):
    """A care ticket for field service."""

    model_config = ConfigDict(frozen=True)

    id: int
    need_id: int | None
    incident_id: int | None
    dedup_key: str
    device_id: int
    account_id: int | None
    site_id: int | None
    region: str | None
    team: str | None
    failure_mode: str
    failure_risk: float
    expected_failure_at: datetime | None
    recommended_action: str | None
    parts: list[str]
    priority: int
    priority_factors: dict[str, float]
    escalations: int
    status: TicketStatus
    outcome: TicketOutcome | None
    outcome_notes: str | None
    prediction_id: int | None
    model_version_id: int | None
    rule_id: int | None
    assigned_to: int | None
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None


class TicketEventView(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    ticket_id: int
    at: datetime
    actor: str
    from_status: str | None
    to_status: str
    note: str | None


class AlertView(BaseModel):
    """A CSM alert about an account."""

    model_config = ConfigDict(frozen=True)

    id: int
    need_id: int | None
    dedup_key: str
    account_id: int
    csm_user_id: int | None
    kind: str
    severity: str
    status: AlertStatus
    reasons: list[dict[str, Any]]
    rule_id: int | None
    outcome: str | None
    action: str | None
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None


class IncidentView(BaseModel):
    """A site- or account-wide event grouping many at-risk devices."""

    model_config = ConfigDict(frozen=True)

    id: int
    scope: Literal["site", "account"]
    account_id: int | None
    site_id: int | None
    kind: str
    summary: str
    member_count: int
    opened_at: datetime
    last_member_at: datetime | None
    closed_at: datetime | None
    close_reason: str | None


def _one(conn: psycopg.Connection[Any], query: str, subject_id: int, kind: str) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, (subject_id,))
        row = cur.fetchone()
    if row is None:
        raise NotFoundError(kind, subject_id)
    return row


def get_ticket(conn: psycopg.Connection[Any], ticket_id: int) -> TicketView:
    """Raises NotFoundError."""
    return TicketView.model_validate(
        _one(conn, "SELECT * FROM tickets WHERE id = %s", ticket_id, "ticket")
    )


def get_alert(conn: psycopg.Connection[Any], alert_id: int) -> AlertView:
    """Raises NotFoundError."""
    return AlertView.model_validate(
        _one(conn, "SELECT * FROM alerts WHERE id = %s", alert_id, "alert")
    )


def get_incident(conn: psycopg.Connection[Any], incident_id: int) -> IncidentView:
    """Raises NotFoundError."""
    return IncidentView.model_validate(
        _one(conn, "SELECT * FROM incidents WHERE id = %s", incident_id, "incident")
    )


def ticket_events(conn: psycopg.Connection[Any], ticket_id: int) -> list[TicketEventView]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM ticket_events WHERE ticket_id = %s ORDER BY id", (ticket_id,))
        return [TicketEventView.model_validate(row) for row in cur.fetchall()]
