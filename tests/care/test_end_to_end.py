"""Prediction -> ticket and alert -> signed webhook -> failure confirmed through the API ->
the report counts it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from backend.api.app import create_app
from backend.api.auth import create_api_key, create_user
from backend.care.delivery import DeliveryWorker
from backend.care.engine import CareEngine
from backend.settings import BackendSettings
from tests.care.conftest import MovableClock, add_prediction, care_settings, scalar, seed_fleet
from tests.care.receivers import WebhookReceiver

pytestmark = pytest.mark.services
SECRET = "end-to-end-webhook-secret"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver(SECRET)
    hook.start()
    yield hook
    hook.stop()


def test_prediction_to_webhook_to_confirmed_failure_in_the_report(
    care_db: str, conn: psycopg.Connection[Any], clock: MovableClock, receiver: WebhookReceiver
) -> None:
    settings = care_settings()
    fleet = seed_fleet(conn)
    admin = create_api_key(conn, create_user(conn, "admin", "admin"))
    tech = create_api_key(
        conn, create_user(conn, "tech", "field", region="north", team="north-mech")
    )
    conn.commit()
    with ConnectionPool(care_db, min_size=1, max_size=2, open=True) as pool:
        app = create_app(BackendSettings(database_url=care_db), pool=pool)
        app.state.care_settings = settings
        with TestClient(app, raise_server_exceptions=False) as client:
            hook = client.post(
                "/webhooks",
                json={"url": receiver.url, "secret": SECRET},
                headers={"Authorization": f"Bearer {admin}"},
            )
            assert hook.status_code == 201
            device = fleet.devices[fleet.site_ids[0]][0]
            add_prediction(conn, device, risk=0.91, model_version_id=fleet.model_version_ids[0])
            report = CareEngine(settings, clock=clock).run_once(conn)
            assert report.outcomes["ticket_opened"] == 1
            with DeliveryWorker(settings, clock=clock) as worker:
                assert worker.deliver_due(conn).delivered == 2
            received = {b["event"]: b for b in receiver.log.processed.values()}
            assert set(received) == {"ticket.opened", "alert.opened"}
            assert receiver.log.bad_signatures == 0
            ticket = received["ticket.opened"]["data"]
            alert = received["alert.opened"]["data"]
            assert alert["need_id"] == ticket["need_id"] and alert["kind"] == "device_risk"

            field = {"Authorization": f"Bearer {tech}"}
            for path, body in (
                ("assign", {}),
                ("transition", {"to_status": "in_progress"}),
                ("outcome", {"outcome": "failure_confirmed", "note": "outer race spalled"}),
            ):
                response = client.post(f"/tickets/{ticket['id']}/{path}", json=body, headers=field)
                assert response.status_code == 200, response.text
            figures = client.get(
                "/care/report",
                params={"since": "2026-05-01T00:00:00Z", "until": "2026-07-01T00:00:00Z"},
                headers={"Authorization": f"Bearer {admin}"},
            ).json()
    assert figures["overall"]["failure_confirmed"] == 1
    assert figures["overall"]["precision"] == 1.0
    assert figures["by_model_version"][0]["group"] == "pump-failure 1"
    assert scalar(conn, "SELECT outcome FROM alerts WHERE kind = 'device_risk'") == (
        "failure_confirmed"
    )
    assert scalar(conn, "SELECT outcome FROM service_needs") == "failure_confirmed"
