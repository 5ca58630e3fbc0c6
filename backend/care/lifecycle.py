"""Ticket and alert lifecycles: the legal transitions, each recorded and notified.

Tickets: ``open -> assigned -> in_progress -> resolved`` (with an outcome), plus
``assigned -> open`` (unassign) and ``open|assigned -> closed`` (cancelled with a reason, or
auto-closed by the engine). Alerts: ``open -> acknowledged -> resolved``. Every transition
writes a ticket event (tickets) and an audit row, and enqueues its notification in the same
transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row

from backend.care.assignment import pick_team
from backend.care.audit import write_audit
from backend.care.clock import Clock, system_clock
from backend.care.errors import NotFoundError, TransitionError
from backend.care.needs import close_need, close_need_when_settled
from backend.care.outbox import enqueue
from backend.care.rule_definitions import DEFAULT_MODE, FailureRiskRule, parse_definition
from backend.care.settings import FieldTeam
from backend.care.views import AlertView, TicketView

TICKET_TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"assigned", "closed"}),
    "assigned": frozenset({"in_progress", "open", "closed"}),
    "in_progress": frozenset({"resolved"}),
    "resolved": frozenset(),
    "closed": frozenset(),
}
ALERT_TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"acknowledged"}),
    "acknowledged": frozenset({"resolved"}),
    "resolved": frozenset(),
}
RESOLVED_OUTCOMES = frozenset({"failure_confirmed", "failure_prevented", "no_fault_found"})
ACTION_PATTERN_MAX = 64


def _lock_ticket(conn: psycopg.Connection[Any], ticket_id: int) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM tickets WHERE id = %s FOR UPDATE", (ticket_id,))
        row = cur.fetchone()
    if row is None:
        raise NotFoundError("ticket", ticket_id)
    return row


def _skill_of(conn: psycopg.Connection[Any], ticket: dict[str, Any]) -> str:
    if ticket["rule_id"] is None:
        return "general"
    with conn.cursor() as cur:
        cur.execute("SELECT definition FROM care_rules WHERE id = %s", (ticket["rule_id"],))
        row = cur.fetchone()
    if row is None:
        return "general"
    definition = parse_definition(row[0], f"care_rules id {ticket['rule_id']}")
    if not isinstance(definition, FailureRiskRule):
        return "general"
    return definition.repair_for(ticket["failure_mode"] or DEFAULT_MODE).skill


def _assignee(
    conn: psycopg.Connection[Any], user_id: int, ticket_id: int
) -> tuple[str | None, str | None]:
    with conn.cursor() as cur:
        cur.execute("SELECT role, team, region, disabled_at FROM users WHERE id = %s", (user_id,))
        row = cur.fetchone()
    if row is None:
        raise TransitionError("ticket", ticket_id, "open", "assigned", f"no user {user_id}")
    role, team, region, disabled_at = row
    if disabled_at is not None or role not in ("field", "admin"):
        raise TransitionError(
            "ticket", ticket_id, "open", "assigned", f"user {user_id} is not an active field user"
        )
    return team, region


def _set_linked_alert_outcome(conn: psycopg.Connection[Any], need_id: int, outcome: str) -> None:
    conn.execute("UPDATE alerts SET outcome = %s WHERE need_id = %s", (outcome, need_id))


def resolve_linked_alerts(
    conn: psycopg.Connection[Any], need_id: int, outcome: str, note: str, at: Any
) -> None:
    """Resolve the still-open alerts of a need whose ticket went away (auto-closed, cancelled)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "UPDATE alerts SET status = 'resolved', resolved_at = %s, outcome = %s,"
            " updated_at = %s WHERE need_id = %s AND status <> 'resolved' RETURNING *",
            (at, outcome, at, need_id),
        )
        rows = cur.fetchall()
    for row in rows:
        audit_id = write_audit(
            conn, "care-engine", "alert.resolved", "alert", row["id"], {"note": note}
        )
        enqueue(
            conn,
            "alert.resolved",
            "alert",
            row["id"],
            f"audit-{audit_id}",
            AlertView.model_validate(row),
            occurred_at=at,
        )


def transition_ticket(
    conn: psycopg.Connection[Any],
    ticket_id: int,
    to_status: str,
    *,
    actor: str,
    assignee_user_id: int | None = None,
    outcome: str | None = None,
    note: str | None = None,
    team: str | None = None,
    teams: Sequence[FieldTeam] = (),
    clock: Clock = system_clock,
) -> TicketView:
    """Move a ticket to ``to_status``.

    ``assigned`` takes an assignee (whose team is used) or a ``team``; with neither, the team
    is picked from ``teams`` (region and skill). ``resolved`` needs an ``outcome``
    (failure_confirmed, failure_prevented, no_fault_found); ``closed`` needs a ``note``.

    Raises:
        NotFoundError: no such ticket.
        TransitionError: the transition is not allowed, its inputs are missing, or the
            assignee is not an active field user.
        AssignmentError: with neither assignee nor team, no team works in the region.
    """
    at = clock()
    with conn.transaction():
        ticket = _lock_ticket(conn, ticket_id)
        current = ticket["status"]
        if to_status not in TICKET_TRANSITIONS:
            raise TransitionError("ticket", ticket_id, current, to_status, "unknown status")
        if to_status not in TICKET_TRANSITIONS[current]:
            allowed = ", ".join(sorted(TICKET_TRANSITIONS[current])) or "none (final)"
            raise TransitionError(
                "ticket", ticket_id, current, to_status, f"allowed from {current}: {allowed}"
            )
        if outcome is not None and to_status != "resolved":
            raise TransitionError(
                "ticket", ticket_id, current, to_status, "an outcome is recorded only on resolve"
            )
        changes: dict[str, Any] = {"status": to_status, "updated_at": at}
        if to_status == "assigned":
            assigned_team = team
            if assignee_user_id is not None:
                user_team, _ = _assignee(conn, assignee_user_id, ticket_id)
                assigned_team = assigned_team or user_team
            elif assigned_team is None:
                assigned_team = pick_team(conn, ticket["region"], _skill_of(conn, ticket), teams)
            changes.update(assigned_to=assignee_user_id, team=assigned_team)
        elif to_status == "open":
            changes.update(assigned_to=None, team=None)
        elif to_status == "resolved":
            if outcome not in RESOLVED_OUTCOMES:
                raise TransitionError(
                    "ticket",
                    ticket_id,
                    current,
                    to_status,
                    "resolving needs an outcome: " + ", ".join(sorted(RESOLVED_OUTCOMES)),
                )
            changes.update(outcome=outcome, outcome_notes=note, resolved_at=at)
        elif to_status == "closed":
            if not note:
                raise TransitionError(
                    "ticket", ticket_id, current, to_status, "closing needs a reason (note)"
                )
            changes.update(outcome_notes=note, resolved_at=at)
        assignments = ", ".join(f"{column} = %({column})s" for column in changes)
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                f"UPDATE tickets SET {assignments} WHERE id = %(id)s RETURNING *",
                {**changes, "id": ticket_id},
            )
            updated = cur.fetchone()
            assert updated is not None
            event_note = note
            if to_status == "assigned":
                event_note = f"team {updated['team']}" + (f"; {note}" if note else "")
            cur.execute(
                "INSERT INTO ticket_events (ticket_id, at, actor, from_status, to_status, note)"
                " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                (ticket_id, at, actor, current, to_status, event_note),
            )
            event = cur.fetchone()
        assert event is not None
        write_audit(
            conn,
            actor,
            f"ticket.{to_status}",
            "ticket",
            ticket_id,
            {"from": current, "outcome": outcome, "team": updated["team"], "note": note},
        )
        view = TicketView.model_validate(updated)
        enqueue(
            conn,
            f"ticket.{to_status}",
            "ticket",
            ticket_id,
            f"event-{event['id']}",
            view,
            occurred_at=at,
        )
        need_id = ticket["need_id"]
        if need_id is not None and to_status == "resolved":
            assert outcome is not None
            close_need(conn, need_id, outcome, at)
            _set_linked_alert_outcome(conn, need_id, outcome)
        elif need_id is not None and to_status == "closed":
            close_need(conn, need_id, "cancelled", at)
            resolve_linked_alerts(conn, need_id, "cancelled", note or "", at)
    return view


def record_outcome(
    conn: psycopg.Connection[Any],
    ticket_id: int,
    outcome: str,
    *,
    actor: str,
    note: str | None = None,
    clock: Clock = system_clock,
) -> TicketView:
    """Resolve an in-progress ticket with ``outcome``, or correct a resolved ticket's outcome.

    Raises:
        NotFoundError, TransitionError.
    """
    with conn.transaction():
        ticket = _lock_ticket(conn, ticket_id)
        if ticket["status"] != "resolved":
            return transition_ticket(
                conn, ticket_id, "resolved", actor=actor, outcome=outcome, note=note, clock=clock
            )
        if outcome not in RESOLVED_OUTCOMES:
            raise TransitionError(
                "ticket",
                ticket_id,
                "resolved",
                "resolved",
                "outcome must be one of " + ", ".join(sorted(RESOLVED_OUTCOMES)),
            )
        at = clock()
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                "UPDATE tickets SET outcome = %s, outcome_notes = COALESCE(%s, outcome_notes),"
                " updated_at = %s WHERE id = %s RETURNING *",
                (outcome, note, at, ticket_id),
            )
            updated = cur.fetchone()
            assert updated is not None
            cur.execute(
                "INSERT INTO ticket_events (ticket_id, at, actor, from_status, to_status, note)"
                " VALUES (%s, %s, %s, 'resolved', 'resolved', %s)",
                (ticket_id, at, actor, f"outcome {ticket['outcome']} -> {outcome}"),
            )
        write_audit(
            conn,
            actor,
            "ticket.outcome_corrected",
            "ticket",
            ticket_id,
            {"from": ticket["outcome"], "to": outcome, "note": note},
        )
        if ticket["need_id"] is not None:
            conn.execute(
                "UPDATE service_needs SET outcome = %s WHERE id = %s",
                (outcome, ticket["need_id"]),
            )
            _set_linked_alert_outcome(conn, ticket["need_id"], outcome)
    return TicketView.model_validate(updated)


def transition_alert(
    conn: psycopg.Connection[Any],
    alert_id: int,
    to_status: str,
    *,
    actor: str,
    note: str | None = None,
    action: str | None = None,
    clock: Clock = system_clock,
) -> AlertView:
    """Acknowledge or resolve an alert; ``action`` names what the CSM did (the playbook step,
    e.g. ``call``, ``onsite_visit``, ``discount``), reported by the playbook report.

    Raises:
        NotFoundError, TransitionError.
    """
    at = clock()
    if action is not None and not (0 < len(action) <= ACTION_PATTERN_MAX):
        raise TransitionError(
            "alert", alert_id, "?", to_status, f"action must be 1-{ACTION_PATTERN_MAX} characters"
        )
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM alerts WHERE id = %s FOR UPDATE", (alert_id,))
        alert = cur.fetchone()
        if alert is None:
            raise NotFoundError("alert", alert_id)
        current = alert["status"]
        if to_status not in ALERT_TRANSITIONS:
            raise TransitionError("alert", alert_id, current, to_status, "unknown status")
        if to_status not in ALERT_TRANSITIONS[current]:
            allowed = ", ".join(sorted(ALERT_TRANSITIONS[current])) or "none (final)"
            raise TransitionError(
                "alert", alert_id, current, to_status, f"allowed from {current}: {allowed}"
            )
        stamp = "acknowledged_at" if to_status == "acknowledged" else "resolved_at"
        cur.execute(
            f"UPDATE alerts SET status = %s, {stamp} = %s, updated_at = %s,"
            " action = COALESCE(%s, action) WHERE id = %s RETURNING *",
            (to_status, at, at, action, alert_id),
        )
        updated = cur.fetchone()
        assert updated is not None
        audit_id = write_audit(
            conn,
            actor,
            f"alert.{to_status}",
            "alert",
            alert_id,
            {"from": current, "note": note, "action": action},
        )
        view = AlertView.model_validate(updated)
        enqueue(
            conn, f"alert.{to_status}", "alert", alert_id, f"audit-{audit_id}", view, occurred_at=at
        )
        if to_status == "resolved" and alert["need_id"] is not None:
            close_need_when_settled(conn, alert["need_id"], "alert_resolved", at)
    return view
