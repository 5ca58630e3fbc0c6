"""Outbox and delivery: signed webhooks, retries through an outage, dead letters, e-mail."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from backend.care.delivery import DeliveryWorker, RetryPolicy
from backend.care.engine import CareEngine
from backend.care.lifecycle import transition_ticket
from backend.care.signing import sign, verify_signature
from backend.care.webhooks import WebhookCreate, create_webhook, delete_webhook, list_webhooks
from tests.care.conftest import MovableClock, add_prediction, care_settings, scalar, seed_fleet
from tests.care.receivers import SmtpServer, WebhookReceiver

pytestmark = pytest.mark.services
SECRET = "s3cret-for-the-test-receiver"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver(SECRET)
    hook.start()
    yield hook
    hook.stop()


def test_signature_round_trip() -> None:
    body = b'{"event":"ticket.opened"}'
    header = sign("k" * 20, body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify_signature("k" * 20, body, header)
    assert not verify_signature("k" * 20, body + b" ", header)
    assert not verify_signature("other-secret-xxxx", body, header)
    assert not verify_signature("k" * 20, body, None)


def test_backoff_doubles_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(max_attempts=10, base_s=30, max_s=900)
    rng = random.Random(1)
    delays = [policy.delay_s(attempt, rng) for attempt in range(1, 9)]
    for attempt, delay in enumerate(delays, start=1):
        raw = min(900, 30 * 2 ** (attempt - 1))
        assert 0.5 * raw <= delay <= min(900, 1.5 * raw)
    uncapped = delays[:5]  # 30 * 2**4 * 1.5 = 720 < 900
    assert len({round(d, 3) for d in uncapped}) == 5  # jittered, not fixed steps
    assert max(delays) <= 900


def test_outbox_is_written_with_the_ticket_in_one_transaction(
    conn: psycopg.Connection[Any], engine: CareEngine
) -> None:
    fleet = seed_fleet(conn)
    create_webhook(
        conn, WebhookCreate(url="http://127.0.0.1:9/hook", events=["ticket.*"]), actor="t"
    )
    conn.commit()
    device = fleet.devices[fleet.site_ids[0]][0]
    prediction = add_prediction(conn, device, risk=0.9)
    # a failure after the ticket was written rolls back the ticket and its notification
    conn.execute("ALTER TABLE ticket_events ADD CONSTRAINT no_events CHECK (false) NOT VALID")
    conn.commit()
    with pytest.raises(psycopg.errors.CheckViolation):
        engine.process_prediction(conn, prediction)
    conn.rollback()
    assert scalar(conn, "SELECT count(*) FROM tickets") == 0
    assert scalar(conn, "SELECT count(*) FROM notification_outbox") == 0
    conn.execute("ALTER TABLE ticket_events DROP CONSTRAINT no_events")
    conn.commit()
    engine.process_prediction(conn, prediction)
    assert scalar(conn, "SELECT count(*) FROM tickets") == 1
    # subscribed to ticket.* only: the device_risk alert is not sent to this webhook
    assert conn.execute("SELECT event FROM notification_outbox").fetchall() == [("ticket.opened",)]


def test_receiver_down_for_an_hour_gets_every_notification_exactly_once(
    conn: psycopg.Connection[Any], receiver: WebhookReceiver, clock: MovableClock
) -> None:
    settings = care_settings(
        delivery_max_attempts=12,
        delivery_backoff_base_s=30,
        delivery_backoff_max_s=900,
        webhook_timeout_s=2,
    )
    engine = CareEngine(settings, clock=clock)
    fleet = seed_fleet(conn, devices_per_site=5)
    hook = create_webhook(conn, WebhookCreate(url=receiver.url, secret=SECRET), actor="test")
    conn.commit()
    receiver.stop()  # down from the start
    for device in fleet.all_devices():
        add_prediction(conn, device, risk=0.9)
    engine.run_once(conn)
    expected = scalar(conn, "SELECT count(*) FROM notification_outbox")
    assert expected >= 10  # tickets, CSM alerts, fleet alerts

    with DeliveryWorker(settings, clock=clock, rng=random.Random(7)) as worker:
        retried = 0
        for _ in range(12):  # an hour of passes, five minutes apart, receiver down
            report = worker.deliver_due(conn)
            assert report.delivered == 0 and report.dead_lettered == 0
            retried += report.retried
            clock.advance(minutes=5)
        assert retried >= expected * 4  # every row was retried several times
        assert receiver.log.requests == 0
        receiver.start()
        # the first response of one notification is lost: it is sent again, processed once
        first_key = scalar(conn, "SELECT idempotency_key FROM notification_outbox ORDER BY id")
        receiver.log.lose_first_response_of.add(first_key)
        for _ in range(30):
            worker.deliver_due(conn)
            if (
                scalar(conn, "SELECT count(*) FROM notification_outbox WHERE delivered_at IS NULL")
                == 0
            ):
                break
            clock.advance(minutes=5)

    assert scalar(conn, "SELECT count(*) FROM notification_outbox WHERE delivered_at IS NULL") == 0
    assert (
        scalar(conn, "SELECT count(*) FROM notification_outbox WHERE dead_lettered_at IS NOT NULL")
        == 0
    )
    log = receiver.log
    assert log.bad_signatures == 0
    assert len(log.processed) == expected  # every notification, once
    assert log.duplicates == 1 and log.requests == expected + 1
    assert all(ts >= int(clock.now.timestamp()) - 3600 for ts in log.timestamps)
    events = {body["event"] for body in log.processed.values()}
    assert {"ticket.opened", "alert.opened"} <= events
    some = next(b for b in log.processed.values() if b["event"] == "ticket.opened")
    assert some["data"]["failure_mode"] == "bearing_wear" and some["id"].endswith(
        f"webhook-{hook.id}"
    )


def test_never_reachable_receiver_is_dead_lettered_after_n_attempts(
    conn: psycopg.Connection[Any], clock: MovableClock
) -> None:
    settings = care_settings(
        delivery_max_attempts=3, delivery_backoff_base_s=10, delivery_backoff_max_s=10
    )
    fleet = seed_fleet(conn)
    create_webhook(
        conn,
        WebhookCreate(url="http://127.0.0.1:9/nothing-listens", events=["ticket.opened"]),
        actor="t",
    )
    conn.commit()
    CareEngine(settings, clock=clock).process_prediction(
        conn, add_prediction(conn, fleet.all_devices()[0], risk=0.9)
    )
    with DeliveryWorker(settings, clock=clock) as worker:
        reports = []
        for _ in range(5):
            reports.append(worker.deliver_due(conn))
            clock.advance(seconds=20)
    assert [r.retried for r in reports] == [1, 1, 0, 0, 0]
    assert [r.dead_lettered for r in reports] == [0, 0, 1, 0, 0]
    row = conn.execute(
        "SELECT attempts, dead_lettered_at IS NOT NULL, last_error FROM notification_outbox"
    ).fetchone()
    assert row is not None and row[:2] == (3, True) and "ConnectError" in row[2]


def test_lifecycle_transitions_are_notified_and_webhooks_can_be_removed(
    conn: psycopg.Connection[Any], engine: CareEngine, receiver: WebhookReceiver
) -> None:
    fleet = seed_fleet(conn)
    hook = create_webhook(conn, WebhookCreate(url=receiver.url, secret=SECRET), actor="t")
    conn.commit()
    assert [w.id for w in list_webhooks(conn)] == [hook.id]
    engine.process_prediction(conn, add_prediction(conn, fleet.all_devices()[0], risk=0.9))
    ticket_id = scalar(conn, "SELECT id FROM tickets")
    transition_ticket(conn, ticket_id, "assigned", actor="dispatch", team="north-mech")
    conn.commit()
    with DeliveryWorker(care_settings()) as worker:
        worker.deliver_due(conn)
    events = sorted(body["event"] for body in receiver.log.processed.values())
    assert events == ["alert.opened", "ticket.assigned", "ticket.opened"]
    delete_webhook(conn, hook.id, actor="t")
    conn.commit()
    assert list_webhooks(conn) == []


def test_new_alert_is_emailed_to_the_csm_over_smtp(
    conn: psycopg.Connection[Any], clock: MovableClock
) -> None:
    smtp = SmtpServer()
    try:
        settings = care_settings(
            email_alerts=True,
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            smtp_sender="care@fleetcare.test",
        )
        fleet = seed_fleet(conn)
        CareEngine(settings, clock=clock).process_prediction(
            conn, add_prediction(conn, fleet.all_devices()[0], risk=0.9)
        )
        with DeliveryWorker(settings, clock=clock) as worker:
            report = worker.deliver_due(conn)
        assert report.delivered == 1
        [(recipients, message)] = smtp.messages
        assert recipients == ["csm-north@example.com"]
        assert "Subject: [fleetcare] alert.opened: device_risk on account" in message
        assert "From: care@fleetcare.test" in message
    finally:
        smtp.stop()
