"""The closed loop: report figures and threshold tuning computed from known outcomes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from backend.care.engine import CareEngine
from backend.care.errors import RuleError
from backend.care.lifecycle import record_outcome, transition_alert, transition_ticket
from backend.care.report import NO_RULE, care_report
from backend.care.rule_definitions import FailureRiskRule, RuleSpec
from backend.care.rule_store import create_rule_version, list_rules, set_rule_enabled
from backend.care.tuning import apply_suggestion, suggest_threshold
from tests.care.conftest import (
    T0,
    MovableClock,
    add_prediction,
    care_settings,
    scalar,
    seed_fleet,
)

pytestmark = pytest.mark.services


def _work(conn: psycopg.Connection[Any], device: int, outcome: str, clock: MovableClock) -> None:
    ticket_id = scalar(conn, "SELECT id FROM tickets WHERE device_id = %s", device)
    transition_ticket(conn, ticket_id, "assigned", actor="d", team="t", clock=clock)
    transition_ticket(conn, ticket_id, "in_progress", actor="t", clock=clock)
    record_outcome(conn, ticket_id, outcome, actor="t", clock=clock)
    conn.commit()


def _failure(conn: psycopg.Connection[Any], device: int, hours: float) -> None:
    conn.execute(
        "INSERT INTO device_events (time, device_id, seq, kind, severity, code)"
        " VALUES (%s, %s, 1, 'trip', 'error', 'F1')",
        (T0 + timedelta(hours=hours), device),
    )
    conn.commit()


def test_report_counts_precision_lead_time_missed_failures_and_playbook(
    conn: psycopg.Connection[Any], clock: MovableClock
) -> None:
    engine = CareEngine(care_settings(), clock=clock)
    fleet = seed_fleet(conn, devices_per_site=5)
    conn.execute(
        "SELECT fleetcare_ensure_partitions('device_events', %s, %s)",
        (T0 - timedelta(days=2), T0 + timedelta(days=40)),
    )
    v1, v2 = fleet.model_version_ids
    north, south = (fleet.devices[s] for s in fleet.site_ids)
    for device in north[:4]:
        engine.process_prediction(conn, add_prediction(conn, device, risk=0.9, model_version_id=v1))
    engine.process_prediction(conn, add_prediction(conn, north[4], risk=0.1, model_version_id=v1))
    for device in south[:4]:
        engine.process_prediction(conn, add_prediction(conn, device, risk=0.9, model_version_id=v2))
    clock.advance(hours=10)
    _work(conn, north[0], "failure_confirmed", clock)
    _work(conn, north[1], "failure_prevented", clock)
    _work(conn, north[2], "no_fault_found", clock)
    _work(conn, south[0], "failure_confirmed", clock)
    for device in south[1:4]:
        _work(conn, device, "no_fault_found", clock)
    # the rules were stored (database clock) before the first failure
    conn.execute("UPDATE care_rules SET created_at = %s", (T0 - timedelta(days=1),))
    _failure(conn, north[0], 50)  # caught: its ticket is 50 h older
    _failure(conn, north[4], 20)  # missed: no ticket before it
    # CSM playbook: fleet alerts handled with different actions, then the accounts decide
    for account, action, outcome in (
        (fleet.account_ids[0], "call", "renewed"),
        (fleet.account_ids[1], "discount", "churned"),
    ):
        alert_id = scalar(
            conn, "SELECT id FROM alerts WHERE account_id = %s AND kind = 'fleet_risk'", account
        )
        transition_alert(conn, alert_id, "acknowledged", actor="csm", clock=clock)
        transition_alert(conn, alert_id, "resolved", actor="csm", action=action, clock=clock)
        conn.execute(
            "INSERT INTO account_outcomes (account_id, decided_at, outcome) VALUES (%s, %s, %s)",
            (account, T0 + timedelta(days=20), outcome),
        )
    conn.commit()

    report = care_report(conn, since=T0 - timedelta(days=1), until=T0 + timedelta(days=30))

    assert report.overall.tickets == 8 and report.overall.resolved == 7
    assert report.overall.precision == pytest.approx(3 / 7, abs=1e-4)
    assert report.overall.still_open == 1
    by_model = {s.group: s for s in report.by_model_version}
    assert by_model["pump-failure 1"].precision == pytest.approx(2 / 3, abs=1e-4)
    assert by_model["pump-failure 2"].precision == pytest.approx(1 / 4, abs=1e-4)
    assert by_model["pump-failure 1"].lead_time_hours_median == pytest.approx(50.0)
    assert by_model["pump-failure 2"].lead_time_hours_median == pytest.approx(10.0)  # resolved
    assert by_model["pump-failure 1"].missed_failures == 1
    assert by_model["pump-failure 2"].missed_failures == 0
    assert (report.failures, report.missed_failures) == (2, 1)
    assert [s.group for s in report.by_rule] == ["failure-risk v1"]
    assert report.by_rule[0].failure_confirmed == 2 and report.by_rule[0].no_fault_found == 4
    assert report.by_rule[0].missed_failures == 1
    playbook = {(row.alert_kind, row.action): row for row in report.playbook}
    assert playbook["fleet_risk", "call"].renewed == 1
    assert playbook["fleet_risk", "call"].save_rate == 1.0
    assert playbook["fleet_risk", "discount"].churned == 1
    assert playbook["fleet_risk", "discount"].save_rate == 0.0
    assert playbook["device_risk", "none"].alerts == 4  # north tickets were urgent enough


def _rule_version(
    conn: psycopg.Connection[Any], name: str, threshold: float, created_at: datetime
) -> int:
    """A new version of ticket rule ``name`` (the default catalogue), stored at ``created_at``."""
    (base,) = list_rules(conn, name="failure-risk")
    assert isinstance(base.definition, FailureRiskRule)
    definition = base.definition.model_copy(update={"risk_threshold": threshold})
    stored = create_rule_version(conn, RuleSpec(name=name, definition=definition), actor="ops")
    conn.execute("UPDATE care_rules SET created_at = %s WHERE id = %s", (created_at, stored.id))
    conn.commit()
    return stored.id


def test_missed_failures_count_against_the_ticket_rules_in_force_at_the_failure(
    conn: psycopg.Connection[Any], clock: MovableClock
) -> None:
    fleet = seed_fleet(conn, devices_per_site=3)
    conn.execute(
        "SELECT fleetcare_ensure_partitions('device_events', %s, %s)",
        (T0 - timedelta(days=30), T0 + timedelta(days=40)),
    )
    # failure-risk v1 from T0 - 10 d, v2 from T0 + 5 d; pump-watch v1 from T0 + 8 d, disabled
    # later; the alert rules (health-drop, fleet-risk, ...) raise no tickets and miss nothing.
    conn.execute("UPDATE care_rules SET created_at = %s", (T0 - timedelta(days=10),))
    conn.commit()
    _rule_version(conn, "failure-risk", 0.8, T0 + timedelta(days=5))
    watch = _rule_version(conn, "pump-watch", 0.6, T0 + timedelta(days=8))
    set_rule_enabled(conn, watch, False, actor="ops")
    conn.commit()
    caught = fleet.devices[fleet.site_ids[0]][0]
    CareEngine(care_settings(), clock=clock).process_prediction(
        conn, add_prediction(conn, caught, risk=0.95)
    )
    conn.commit()
    quiet = fleet.devices[fleet.site_ids[1]]
    _failure(conn, quiet[0], -24 * 12)  # before any rule: no rule was in force
    _failure(conn, quiet[0], 24 * 2)  # failure-risk v1
    _failure(conn, quiet[1], 24 * 6)  # failure-risk v2
    _failure(conn, quiet[2], 24 * 9)  # failure-risk v2 (pump-watch v1 is disabled)
    _failure(conn, caught, 24 * 3)  # its ticket came first: not missed, no rule charged

    report = care_report(conn, since=T0 - timedelta(days=20), until=T0 + timedelta(days=20))

    assert (report.failures, report.missed_failures) == (5, 4)
    missed = {s.group: s.missed_failures for s in report.by_rule}
    assert missed == {NO_RULE: 1, "failure-risk v1": 1, "failure-risk v2": 2}
    # the engine raised the ticket with the newest enabled version, whatever the clock
    assert {s.group: s.tickets for s in report.by_rule}["failure-risk v2"] == 1
    assert sum(s.missed_failures or 0 for s in report.by_model_version) == 4

    set_rule_enabled(conn, watch, True, actor="ops")
    conn.commit()
    again = care_report(conn, since=T0 - timedelta(days=20), until=T0 + timedelta(days=20))
    missed = {s.group: s.missed_failures for s in again.by_rule}
    # one failure, two rules in force: it counts against each (the overall total stays 4)
    assert missed == {NO_RULE: 1, "failure-risk v1": 1, "failure-risk v2": 2, "pump-watch v1": 1}
    assert again.missed_failures == 4


def test_tuning_suggests_the_lowest_threshold_meeting_the_target_and_applies_only_on_request(
    conn: psycopg.Connection[Any], clock: MovableClock
) -> None:
    engine = CareEngine(care_settings(storm_site_devices=50), clock=clock)
    fleet = seed_fleet(conn, devices_per_site=10)
    labelled = [
        (0.72, "no_fault_found"),
        (0.75, "no_fault_found"),
        (0.78, "failure_confirmed"),
        (0.80, "no_fault_found"),
        (0.83, "failure_confirmed"),
        (0.86, "failure_confirmed"),
        (0.88, "failure_prevented"),
        (0.90, "failure_confirmed"),
        (0.93, "failure_confirmed"),
        (0.96, "failure_confirmed"),
    ]
    devices = fleet.devices[fleet.site_ids[0]]
    for device, (risk, outcome) in zip(devices, labelled, strict=True):
        engine.process_prediction(conn, add_prediction(conn, device, risk=risk))
        _work(conn, device, outcome, clock)

    suggestion = suggest_threshold(conn, target_precision=0.8)
    assert suggestion.current_threshold == 0.7
    assert suggestion.current_precision == pytest.approx(0.7)
    assert suggestion.suggested_threshold == pytest.approx(0.78)
    assert suggestion.expected_precision == pytest.approx(7 / 8, abs=1e-4)
    assert suggestion.kept_positive_share == 1.0
    assert "raise the threshold from 0.70 to 0.78" in suggestion.message
    strict = suggest_threshold(conn, target_precision=0.95)
    assert strict.suggested_threshold == pytest.approx(0.83)
    # nothing changed: suggestions are never applied silently
    assert scalar(conn, "SELECT max(version) FROM care_rules WHERE name = 'failure-risk'") == 1

    applied = apply_suggestion(conn, suggestion, actor="ops")
    conn.commit()
    assert applied.version == 2
    assert applied.definition.risk_threshold == pytest.approx(0.78)  # type: ignore[union-attr]
    with pytest.raises(RuleError, match="tune again"):
        apply_suggestion(conn, suggestion, actor="ops")
    conn.rollback()
    # the new version is the one the engine uses
    other = fleet.devices[fleet.site_ids[1]][0]
    clock.advance(days=2)
    assert engine.process_prediction(conn, add_prediction(conn, other, risk=0.75)) == [
        "ticket_nothing"
    ]
    impossible = suggest_threshold(conn, target_precision=1.0, min_tickets=8)
    assert impossible.suggested_threshold is None
    assert "improve the model" in impossible.message
