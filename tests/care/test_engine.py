"""The engine on a real database: predictions and health scores become tickets and alerts."""

from __future__ import annotations

import re
import threading
from typing import Any

import psycopg
import pytest

from backend.care.engine import CareEngine
from backend.care.views import get_ticket, ticket_events
from tests.care.conftest import (
    MovableClock,
    add_health,
    add_prediction,
    care_settings,
    scalar,
    seed_fleet,
)

pytestmark = pytest.mark.services


def test_risk_over_threshold_opens_a_ticket_with_everything_field_service_needs(
    conn: psycopg.Connection[Any], engine: CareEngine
) -> None:
    fleet = seed_fleet(conn)
    device = fleet.devices[fleet.site_ids[0]][0]
    low = add_prediction(conn, device, risk=0.3, rul_hours=900)
    high = add_prediction(conn, device, risk=0.82, mode="bearing_wear")

    assert engine.process_prediction(conn, low) == ["ticket_nothing"]
    outcomes = engine.process_prediction(conn, high)

    assert outcomes[0] == "ticket_opened"
    ticket_id = scalar(conn, "SELECT id FROM tickets")
    ticket = get_ticket(conn, ticket_id)
    assert ticket.device_id == device
    assert ticket.failure_mode == "bearing_wear"
    assert ticket.failure_risk == pytest.approx(0.82)
    assert ticket.parts == ["bearing-set", "grease-cartridge"]
    assert ticket.recommended_action is not None and "bearings" in ticket.recommended_action
    assert ticket.region == "north"
    # valuable account, 4 h SLA, unknown health: urgent
    assert ticket.priority <= 2
    assert ticket.priority_factors["sla"] == 1.0
    assert ticket.expected_failure_at is not None
    assert ticket.rule_id is not None and ticket.need_id is not None
    need_key = scalar(conn, "SELECT dedup_key FROM service_needs WHERE id = %s", ticket.need_id)
    assert need_key == ticket.dedup_key == f"device:{device}:bearing_wear"
    # priority <= 2: the CSM gets an alert linked to the same need
    alert = conn.execute("SELECT kind, need_id, dedup_key, csm_user_id FROM alerts").fetchall()
    assert alert == [("device_risk", ticket.need_id, ticket.dedup_key, fleet.csm_ids[0])]
    external_id = scalar(conn, "SELECT external_id FROM devices WHERE id = %s", device)
    text = scalar(conn, "SELECT reasons->0->>'text' FROM alerts")
    assert text == (
        f"{external_id} may fail from bearing wear (risk 82 %); ticket #{ticket_id},"
        f" P{ticket.priority}"
    )
    [event] = ticket_events(conn, ticket_id)
    assert event.to_status == "open" and "threshold 0.70" in (event.note or "")


def test_rul_under_regional_lead_time_opens_a_ticket(
    conn: psycopg.Connection[Any], engine: CareEngine
) -> None:
    fleet = seed_fleet(conn)
    north_device = fleet.devices[fleet.site_ids[0]][0]
    south_device = fleet.devices[fleet.site_ids[1]][0]
    # north needs 72 h (parts) + 24 h margin = 96 h; south 24 + 24 = 48 h
    north = add_prediction(conn, north_device, risk=0.2, rul_hours=80, mode="seal_leak")
    south = add_prediction(conn, south_device, risk=0.2, rul_hours=80, mode="seal_leak")

    assert engine.process_prediction(conn, north)[0] == "ticket_opened"
    assert engine.process_prediction(conn, south) == ["ticket_nothing"]
    note = scalar(conn, "SELECT note FROM ticket_events")
    assert "RUL 80 h < lead time needed 96 h" in note
    # the small account with no SLA gets a less urgent ticket than the valuable one would
    south_urgent = add_prediction(conn, south_device, risk=0.2, rul_hours=10, mode="seal_leak")
    engine.process_prediction(conn, south_urgent)
    priorities = dict(conn.execute("SELECT device_id, priority FROM tickets").fetchall())
    assert priorities[south_device] > priorities[north_device]


def test_unknown_failure_mode_uses_the_default_catalogue_entry(
    conn: psycopg.Connection[Any], engine: CareEngine
) -> None:
    fleet = seed_fleet(conn)
    device = fleet.devices[fleet.site_ids[0]][0]
    engine.process_prediction(conn, add_prediction(conn, device, risk=0.9, mode=None))
    row = conn.execute("SELECT failure_mode, recommended_action, parts FROM tickets").fetchone()
    assert row == ("unknown", "Inspect the device and confirm the predicted failure mode.", [])


def test_same_need_raised_by_many_workers_at_once_gives_exactly_one_ticket(
    care_db: str, conn: psycopg.Connection[Any], clock: MovableClock
) -> None:
    fleet = seed_fleet(conn)
    device = fleet.devices[fleet.site_ids[0]][0]
    predictions = [add_prediction(conn, device, risk=0.75 + i * 0.01) for i in range(8)]
    barrier = threading.Barrier(len(predictions))
    errors: list[BaseException] = []
    results: list[list[str]] = []

    def worker(prediction_id: int) -> None:
        worker_engine = CareEngine(care_settings(), clock=clock)
        try:
            with psycopg.connect(care_db) as own:
                barrier.wait(timeout=10)
                results.append(worker_engine.process_prediction(own, prediction_id))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(p,)) for p in predictions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len(results) == 8
    assert scalar(conn, "SELECT count(*) FROM tickets") == 1
    assert scalar(conn, "SELECT count(*) FROM service_needs") == 1
    assert scalar(conn, "SELECT count(*) FROM alerts WHERE kind = 'device_risk'") == 1
    assert (
        scalar(conn, "SELECT count(*) FROM notification_outbox WHERE event = 'ticket.opened'") == 0
    )
    assert sum(r[0] == "ticket_opened" for r in results) == 1


def test_same_need_raised_by_worker_processes_gives_exactly_one_ticket(
    care_db: str, conn: psycopg.Connection[Any]
) -> None:
    import multiprocessing

    fleet = seed_fleet(conn)
    device = fleet.devices[fleet.site_ids[0]][0]
    predictions = [add_prediction(conn, device, risk=0.9, mode="seal_leak") for _ in range(4)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        outcomes = pool.starmap(_process_in_child, [(care_db, p) for p in predictions])
    assert sorted(o[0] for o in outcomes).count("ticket_opened") == 1
    assert scalar(conn, "SELECT count(*) FROM tickets") == 1


def _process_in_child(url: str, prediction_id: int) -> list[str]:
    with psycopg.connect(url) as own:
        return CareEngine(care_settings()).process_prediction(own, prediction_id)


def test_rising_risk_escalates_the_open_ticket(
    conn: psycopg.Connection[Any], clock: MovableClock
) -> None:
    engine = CareEngine(care_settings(), clock=clock)
    fleet = seed_fleet(conn)
    device = fleet.devices[fleet.site_ids[1]][0]  # small account: starts at a low priority
    engine.process_prediction(conn, add_prediction(conn, device, risk=0.71))
    first = get_ticket(conn, scalar(conn, "SELECT id FROM tickets"))
    clock.advance(hours=2)
    # a small rise is not an escalation
    assert engine.process_prediction(conn, add_prediction(conn, device, risk=0.75))[0] == (
        "ticket_unchanged"
    )
    clock.advance(hours=2)
    assert engine.process_prediction(conn, add_prediction(conn, device, risk=0.95))[0] == (
        "ticket_escalated"
    )
    after = get_ticket(conn, first.id)
    assert after.priority < first.priority
    assert after.failure_risk == pytest.approx(0.95)
    assert after.escalations == 1
    events = ticket_events(conn, first.id)
    assert [e.to_status for e in events] == ["open", "open"]
    assert "escalated: risk 0.71 -> 0.95" in (events[1].note or "")
    assert scalar(conn, "SELECT count(*) FROM tickets") == 1


def test_receding_risk_auto_closes_with_a_reason_only_before_work_starts(
    conn: psycopg.Connection[Any], clock: MovableClock
) -> None:
    from backend.care.lifecycle import transition_ticket

    engine = CareEngine(care_settings(), clock=clock)
    fleet = seed_fleet(conn)
    idle, busy = fleet.devices[fleet.site_ids[0]][:2]
    for device in (idle, busy):
        engine.process_prediction(conn, add_prediction(conn, device, risk=0.8))
    busy_ticket = scalar(conn, "SELECT id FROM tickets WHERE device_id = %s", busy)
    transition_ticket(conn, busy_ticket, "assigned", actor="dispatcher", team="north-mech")
    transition_ticket(conn, busy_ticket, "in_progress", actor="tech")
    conn.commit()
    clock.advance(hours=6)
    # just under the threshold is not enough: the margin keeps it from flapping
    assert engine.process_prediction(conn, add_prediction(conn, idle, risk=0.65)) == [
        "ticket_nothing"
    ]
    # one receded prediction after one that had not is not enough either (the default asks
    # for two in a row), the second closes it
    assert engine.process_prediction(
        conn, add_prediction(conn, idle, risk=0.3, rul_hours=2000)
    ) == ["ticket_nothing"]
    assert engine.process_prediction(
        conn, add_prediction(conn, idle, risk=0.25, rul_hours=2000)
    ) == ["ticket_auto_closed"]
    assert engine.process_prediction(conn, add_prediction(conn, busy, risk=0.3)) == [
        "ticket_nothing"
    ]
    rows = dict(
        conn.execute("SELECT device_id, (status, outcome, outcome_notes) FROM tickets").fetchall()
    )
    status, outcome, notes = rows[idle]
    assert (status, outcome) == ("closed", "auto_closed")
    assert "risk receded" in notes and "before work started" in notes
    assert rows[busy][:2] == ("in_progress", None)
    # the linked CSM alert and the need are closed with the ticket
    assert scalar(conn, "SELECT status FROM service_needs WHERE device_id = %s", idle) == "closed"
    assert (
        scalar(
            conn, "SELECT outcome FROM alerts WHERE dedup_key = %s", f"device:{idle}:bearing_wear"
        )
        == "auto_closed"
    )


@pytest.mark.parametrize("in_a_row", [1, 2, 3])
def test_a_ticket_closes_only_after_enough_receded_predictions_in_a_row(
    conn: psycopg.Connection[Any], clock: MovableClock, in_a_row: int
) -> None:
    engine = CareEngine(care_settings(recede_predictions=in_a_row), clock=clock)
    fleet = seed_fleet(conn)
    device = fleet.devices[fleet.site_ids[0]][0]
    risks = [0.8, 0.3, 0.85, *([0.2] * in_a_row)]
    outcomes = [
        engine.process_prediction(conn, add_prediction(conn, device, risk=r))[0] for r in risks
    ]
    if in_a_row == 1:
        # the old behaviour: the dip closes the ticket, the next high prediction finds the
        # need cooling down
        assert outcomes[:3] == ["ticket_opened", "ticket_auto_closed", "ticket_cooling_down"]
        return
    # the dip between two high predictions leaves the ticket open; the last of the low ones
    # in a row closes it
    assert outcomes[1] == "ticket_nothing" and outcomes[2].startswith("ticket_")
    assert outcomes[3:] == ["ticket_nothing"] * (in_a_row - 1) + ["ticket_auto_closed"]
    assert scalar(conn, "SELECT count(*) FROM tickets WHERE device_id = %s", device) == 1


def test_cooldown_keeps_a_closed_need_from_reopening_at_once(
    conn: psycopg.Connection[Any], clock: MovableClock
) -> None:
    engine = CareEngine(care_settings(cooldown_hours=12), clock=clock)
    fleet = seed_fleet(conn)
    device = fleet.devices[fleet.site_ids[0]][0]
    engine.process_prediction(conn, add_prediction(conn, device, risk=0.8))
    for _ in range(2):  # two receded predictions in a row close it
        clock.advance(hours=1)
        engine.process_prediction(conn, add_prediction(conn, device, risk=0.1, rul_hours=5000))
    clock.advance(hours=1)
    assert engine.process_prediction(conn, add_prediction(conn, device, risk=0.9))[0] == (
        "ticket_cooling_down"
    )
    clock.advance(hours=12)
    assert engine.process_prediction(conn, add_prediction(conn, device, risk=0.9))[0] == (
        "ticket_opened"
    )
    assert scalar(conn, "SELECT count(*) FROM tickets") == 2


def test_site_wide_storm_becomes_one_incident(
    conn: psycopg.Connection[Any], clock: MovableClock
) -> None:
    engine = CareEngine(care_settings(storm_site_devices=4), clock=clock)
    fleet = seed_fleet(conn, devices_per_site=40)
    site = fleet.site_ids[0]
    for device in fleet.devices[site]:
        engine.process_prediction(conn, add_prediction(conn, device, risk=0.9, mode="drive_fault"))
        clock.advance(seconds=10)

    assert scalar(conn, "SELECT count(*) FROM incidents") == 1
    incident = conn.execute(
        "SELECT id, scope, site_id, kind, member_count, summary FROM incidents"
    ).fetchone()
    assert incident is not None
    incident_id, scope, site_id, kind, members, summary = incident
    assert (scope, site_id, kind) == ("site", site, "storm")
    # three tickets before the storm was recognised, then every device joins the incident
    assert scalar(conn, "SELECT count(*) FROM tickets") == 3
    assert scalar(conn, "SELECT count(*) FROM tickets WHERE incident_id = %s", incident_id) == 3
    assert members == 37
    assert "4 devices of site" in summary and "drive_fault" in summary
    # the CSM hears about the fleet once, not 40 times
    assert scalar(conn, "SELECT count(*) FROM alerts WHERE kind = 'fleet_risk'") == 1
    fleet_text = scalar(conn, "SELECT reasons->0->>'text' FROM alerts WHERE kind = 'fleet_risk'")
    assert re.fullmatch(r"\d+ devices at risk of failure \(the rule alerts from \d+\)", fleet_text)
    assert (
        scalar(conn, "SELECT count(*) FROM notification_outbox WHERE event = 'incident.opened'")
        == 0
    )  # no webhook subscribed; see the notification tests for delivery
    # quiet for the configured hours: closed with a reason
    clock.advance(hours=7)
    assert engine.housekeeping(conn) == 1
    assert scalar(conn, "SELECT close_reason FROM incidents") == "no device joined for 6 h"


def test_rate_cap_per_site_groups_the_excess(
    conn: psycopg.Connection[Any], clock: MovableClock
) -> None:
    engine = CareEngine(
        care_settings(max_tickets_per_site_per_hour=2, storm_site_devices=50), clock=clock
    )
    fleet = seed_fleet(conn, devices_per_site=5)
    site = fleet.site_ids[1]
    for device in fleet.devices[site]:
        engine.process_prediction(conn, add_prediction(conn, device, risk=0.9))
        clock.advance(minutes=5)
    assert scalar(conn, "SELECT count(*) FROM tickets WHERE site_id = %s", site) == 2
    assert scalar(conn, "SELECT kind FROM incidents") == "rate_cap"
    assert scalar(conn, "SELECT member_count FROM incidents") == 3


def test_run_once_walks_new_rows_and_never_twice(
    conn: psycopg.Connection[Any], engine: CareEngine
) -> None:
    fleet = seed_fleet(conn)
    devices = fleet.devices[fleet.site_ids[0]]
    for device in devices:
        add_prediction(conn, device, risk=0.85)
    add_prediction(conn, devices[0], risk=0.1, rul_hours=3000, mode="seal_leak")
    report = engine.run_once(conn)
    assert report.predictions == 4
    assert report.outcomes["ticket_opened"] == 3
    assert report.outcomes["alert_opened"] >= 1  # fleet risk: 3 devices of one account
    again = engine.run_once(conn)
    assert again.predictions == 0
    assert scalar(conn, "SELECT last_id FROM care_cursors WHERE stream = 'predictions'") == (
        scalar(conn, "SELECT max(id) FROM predictions")
    )


def test_health_rules_raise_csm_alerts(
    conn: psycopg.Connection[Any], engine: CareEngine, clock: MovableClock
) -> None:
    from datetime import timedelta

    fleet = seed_fleet(conn)
    account = fleet.account_ids[0]
    t0 = clock.now
    add_health(conn, account, score=82, band="healthy", churn_risk=0.2, at=t0 - timedelta(days=20))
    add_health(conn, account, score=70, band="watch", churn_risk=0.3, at=t0 - timedelta(days=10))
    add_health(conn, account, score=55, band="at_risk", churn_risk=0.5, at=t0)
    report = engine.run_once(conn)
    assert report.health_scores == 3
    kinds = dict(conn.execute("SELECT kind, reasons FROM alerts").fetchall())
    # 82 -> 55 in 20 days, watch -> at_risk, churn 0.2 -> 0.5, renewal 2026-08-01 in 61 days
    assert set(kinds) == {"health_drop", "health_band", "churn_risk", "renewal_risk"}
    assert "82.0 -> 55.0" in kinds["health_drop"][0]["text"]
    assert "from watch into at_risk" in kinds["health_band"][0]["text"]
    assert "in 61 days" in kinds["renewal_risk"][0]["text"]
    assert scalar(conn, "SELECT count(DISTINCT csm_user_id) FROM alerts") == 1
    # the same condition again: deduplicated (one open alert per account and kind)
    add_health(conn, account, score=54, band="at_risk", churn_risk=0.55, at=t0 + timedelta(days=1))
    engine.run_once(conn)
    assert scalar(conn, "SELECT count(*) FROM alerts") == 4
    # a healthy account raises nothing
    other = fleet.account_ids[1]
    add_health(conn, other, score=90, band="healthy", churn_risk=0.1, at=t0 - timedelta(days=5))
    add_health(conn, other, score=88, band="healthy", churn_risk=0.12, at=t0)
    engine.run_once(conn)
    assert scalar(conn, "SELECT count(*) FROM alerts WHERE account_id = %s", other) == 0


def test_process_prediction_commits_on_its_own(
    care_db: str, conn: psycopg.Connection[Any], engine: CareEngine
) -> None:
    fleet = seed_fleet(conn)
    prediction = add_prediction(conn, fleet.all_devices()[0], risk=0.9)
    with psycopg.connect(care_db) as worker_conn:
        engine.process_prediction(worker_conn, prediction)
        # visible to another connection before this one commits or closes
        assert scalar(conn, "SELECT count(*) FROM tickets") == 1


def test_rate_cap_per_account_spans_its_sites(
    conn: psycopg.Connection[Any], clock: MovableClock
) -> None:
    engine = CareEngine(
        care_settings(max_tickets_per_account_per_hour=3, storm_site_devices=50), clock=clock
    )
    fleet = seed_fleet(conn, devices_per_site=3, sites_per_account=2)
    north = fleet.account_ids[0]
    north_devices = [d for site in fleet.site_ids[:2] for d in fleet.devices[site]]
    for device in north_devices:
        engine.process_prediction(conn, add_prediction(conn, device, risk=0.9))
        clock.advance(minutes=1)
    assert scalar(conn, "SELECT count(*) FROM tickets WHERE account_id = %s", north) == 3
    incident = conn.execute(
        "SELECT scope, account_id, kind, member_count FROM incidents"
    ).fetchall()
    assert incident == [("account", north, "rate_cap", 3)]
    # once the incident went quiet and closed, a new need gets its ticket again
    clock.advance(hours=7)
    assert engine.housekeeping(conn) == 1
    late = fleet.devices[fleet.site_ids[0]][0]
    result = engine.process_prediction(
        conn, add_prediction(conn, late, risk=0.95, mode="seal_leak")
    )
    assert result[0] == "ticket_opened"
