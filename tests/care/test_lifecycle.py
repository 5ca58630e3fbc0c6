"""Ticket and alert lifecycles: legal moves recorded, illegal ones refused with a clear error."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from backend.care.assignment import pick_team
from backend.care.engine import CareEngine
from backend.care.errors import AssignmentError, NotFoundError, TransitionError
from backend.care.lifecycle import record_outcome, transition_alert, transition_ticket
from backend.care.views import get_alert, get_ticket, ticket_events
from tests.care.conftest import add_prediction, care_settings, scalar, seed_fleet

pytestmark = pytest.mark.services


def _ticket(conn: psycopg.Connection[Any], engine: CareEngine, mode: str = "bearing_wear") -> int:
    fleet = seed_fleet(conn)
    device = fleet.devices[fleet.site_ids[0]][0]
    engine.process_prediction(conn, add_prediction(conn, device, risk=0.9, mode=mode))
    return int(scalar(conn, "SELECT id FROM tickets"))


def test_ticket_goes_open_assigned_in_progress_resolved_with_events_and_audit(
    conn: psycopg.Connection[Any], engine: CareEngine
) -> None:
    ticket_id = _ticket(conn, engine, mode="winding_overheat")
    settings = care_settings()
    tech = scalar(
        conn,
        "INSERT INTO users (name, role, region, team) VALUES ('tech', 'field', 'north',"
        " 'north-elec') RETURNING id",
    )
    # the skill of winding_overheat is electrical: the north electrical team is picked
    view = transition_ticket(conn, ticket_id, "assigned", actor="dispatch", teams=settings.teams)
    assert (view.status, view.team) == ("assigned", "north-elec")
    view = transition_ticket(conn, ticket_id, "open", actor="dispatch", note="wrong team")
    assert (view.status, view.team, view.assigned_to) == ("open", None, None)
    view = transition_ticket(conn, ticket_id, "assigned", actor="dispatch", assignee_user_id=tech)
    assert (view.team, view.assigned_to) == ("north-elec", tech)
    transition_ticket(conn, ticket_id, "in_progress", actor="tech")
    view = transition_ticket(
        conn, ticket_id, "resolved", actor="tech", outcome="failure_prevented", note="insulation ok"
    )
    conn.commit()
    assert (view.status, view.outcome) == ("resolved", "failure_prevented")
    assert view.resolved_at is not None
    steps = [(e.from_status, e.to_status) for e in ticket_events(conn, ticket_id)]
    assert steps == [
        (None, "open"),
        ("open", "assigned"),
        ("assigned", "open"),
        ("open", "assigned"),
        ("assigned", "in_progress"),
        ("in_progress", "resolved"),
    ]
    audited = [
        r[0]
        for r in conn.execute(
            "SELECT action FROM audit_log WHERE subject_kind = 'ticket' ORDER BY id"
        ).fetchall()
    ]
    assert audited == [
        "ticket.assigned",
        "ticket.open",
        "ticket.assigned",
        "ticket.in_progress",
        "ticket.resolved",
    ]
    # linked outcomes: the need is closed with the outcome, the CSM's alert carries it
    need = conn.execute("SELECT status, outcome FROM service_needs").fetchone()
    assert need == ("closed", "failure_prevented")
    assert scalar(conn, "SELECT outcome FROM alerts WHERE kind = 'device_risk'") == (
        "failure_prevented"
    )


@pytest.mark.parametrize(
    ("path", "illegal", "message"),
    [
        ([], "in_progress", "allowed from open: assigned, closed"),
        ([], "resolved", "allowed from open"),
        (["assigned"], "resolved", "allowed from assigned: closed, in_progress, open"),
        (["assigned", "in_progress"], "closed", "allowed from in_progress: resolved"),
        (["assigned", "in_progress"], "open", "allowed from in_progress: resolved"),
        ([], "reopened", "unknown status"),
    ],
)
def test_illegal_ticket_transitions_are_refused_and_change_nothing(
    conn: psycopg.Connection[Any], engine: CareEngine, path: list[str], illegal: str, message: str
) -> None:
    ticket_id = _ticket(conn, engine)
    for step in path:
        transition_ticket(conn, ticket_id, step, actor="t", team="north-mech")
    conn.commit()
    before = get_ticket(conn, ticket_id)
    with pytest.raises(TransitionError, match=message):
        transition_ticket(conn, ticket_id, illegal, actor="t", outcome="failure_confirmed")
    conn.rollback()
    assert get_ticket(conn, ticket_id) == before


def test_resolving_needs_an_outcome_and_closing_needs_a_reason(
    conn: psycopg.Connection[Any], engine: CareEngine
) -> None:
    ticket_id = _ticket(conn, engine)
    with pytest.raises(TransitionError, match="closing needs a reason"):
        transition_ticket(conn, ticket_id, "closed", actor="t")
    with pytest.raises(TransitionError, match="an outcome is recorded only on resolve"):
        transition_ticket(conn, ticket_id, "assigned", actor="t", outcome="no_fault_found")
    transition_ticket(conn, ticket_id, "assigned", actor="t", team="north-mech")
    transition_ticket(conn, ticket_id, "in_progress", actor="t")
    with pytest.raises(TransitionError, match="resolving needs an outcome"):
        transition_ticket(conn, ticket_id, "resolved", actor="t")
    with pytest.raises(TransitionError, match="resolving needs an outcome"):
        transition_ticket(conn, ticket_id, "resolved", actor="t", outcome="auto_closed")
    # record_outcome resolves, then corrects
    assert record_outcome(conn, ticket_id, "no_fault_found", actor="t").outcome == "no_fault_found"
    view = record_outcome(conn, ticket_id, "failure_confirmed", actor="t", note="found later")
    assert (view.status, view.outcome) == ("resolved", "failure_confirmed")
    assert ticket_events(conn, ticket_id)[-1].note == "outcome no_fault_found -> failure_confirmed"
    with pytest.raises(NotFoundError):
        transition_ticket(conn, 999_999, "assigned", actor="t")


def test_assignee_must_be_an_active_field_user(
    conn: psycopg.Connection[Any], engine: CareEngine
) -> None:
    ticket_id = _ticket(conn, engine)
    csm = scalar(conn, "SELECT id FROM users WHERE role = 'csm' LIMIT 1")
    with pytest.raises(TransitionError, match=f"user {csm} is not an active field user"):
        transition_ticket(conn, ticket_id, "assigned", actor="t", assignee_user_id=csm)
    conn.rollback()
    with pytest.raises(TransitionError, match="no user 987654"):
        transition_ticket(conn, ticket_id, "assigned", actor="t", assignee_user_id=987654)
    conn.rollback()
    loner = scalar(
        conn,
        "INSERT INTO users (name, role, region) VALUES ('loner', 'field', 'east') RETURNING id",
    )
    view = transition_ticket(conn, ticket_id, "assigned", actor="t", assignee_user_id=loner)
    assert (view.status, view.assigned_to, view.team) == ("assigned", loner, None)


def test_cancelling_a_ticket_resolves_its_csm_alert(
    conn: psycopg.Connection[Any], engine: CareEngine
) -> None:
    ticket_id = _ticket(conn, engine)
    transition_ticket(conn, ticket_id, "closed", actor="dispatch", note="device decommissioned")
    conn.commit()
    assert get_ticket(conn, ticket_id).outcome is None
    alert = conn.execute("SELECT status, outcome FROM alerts").fetchone()
    assert alert == ("resolved", "cancelled")


def test_alert_goes_open_acknowledged_resolved_and_refuses_shortcuts(
    conn: psycopg.Connection[Any], engine: CareEngine
) -> None:
    _ticket(conn, engine)
    alert_id = int(scalar(conn, "SELECT id FROM alerts"))
    with pytest.raises(TransitionError, match="allowed from open: acknowledged"):
        transition_alert(conn, alert_id, "resolved", actor="csm")
    conn.rollback()
    view = transition_alert(conn, alert_id, "acknowledged", actor="csm", note="calling them")
    assert view.status == "acknowledged" and view.acknowledged_at is not None
    view = transition_alert(conn, alert_id, "resolved", actor="csm", action="call")
    assert view.status == "resolved" and view.action == "call"
    with pytest.raises(TransitionError, match="none \\(final\\)"):
        transition_alert(conn, alert_id, "acknowledged", actor="csm")
    conn.rollback()
    assert get_alert(conn, alert_id).status == "resolved"
    actions = [
        r[0]
        for r in conn.execute(
            "SELECT action FROM audit_log WHERE subject_kind = 'alert' ORDER BY id"
        ).fetchall()
    ]
    assert actions[-2:] == ["alert.acknowledged", "alert.resolved"]
    with pytest.raises(NotFoundError):
        transition_alert(conn, 424242, "acknowledged", actor="csm")


def test_team_choice_prefers_region_and_skill_then_least_loaded(
    conn: psycopg.Connection[Any],
) -> None:
    teams = care_settings().teams
    assert pick_team(conn, "north", "mechanical", teams) == "north-mech"
    assert pick_team(conn, "north", "electrical", teams) == "north-elec"
    assert pick_team(conn, "north", "hydraulics", teams) in ("north-elec", "north-mech")
    assert pick_team(conn, "south", "electrical", teams) == "south-all"
    conn.execute(
        "INSERT INTO users (name, role, region, team) VALUES ('w', 'field', 'west', 'west-1')"
    )
    assert pick_team(conn, "west", "mechanical", teams) == "west-1"
    with pytest.raises(AssignmentError, match="no field team works in region 'east'"):
        pick_team(conn, "east", "mechanical", teams)
