"""End to end on real components: a simulated fleet publishes through the device SDK to a
Mosquitto of the test's own, the ingest worker stores it, the scoring worker scores it with a
fleet model trained on the same simulated fleet, the care engine raises a ticket and its
alert, the delivery worker posts a signed webhook to a local receiver, a technician confirms
the failure through the HTTP API, and the care report counts it for the model version and
the rule.

Time: the fleet lives on the simulator's calendar (January 2025). The scoring worker and the
care engine are run "as of" the end of a simulated day a little before the failure the
simulator's ground truth plans; the simulator then carries on past that failure, so the
device's trip is stored and the report measures the lead time against it. The API records
the technician's steps at the wall clock's time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from backend.api.app import create_app
from backend.api.auth import create_api_key, create_user
from backend.care.delivery import DeliveryWorker
from backend.care.engine import CareEngine
from backend.care.report import care_report
from backend.care.rule_definitions import load_rules_file
from backend.care.rule_store import ensure_rules
from backend.ingest.service import IngestWorker, WorkerTarget
from backend.ingest.settings import IngestSettings
from backend.scoring.worker import ScoringWorker
from backend.settings import BackendSettings
from backend.storage.catalogue import MetricSpec, ensure_device, ensure_device_model
from backend.storage.migrator import apply_migrations, dialect_of
from firmware_sim.fleet import build_fleet
from firmware_sim.live import LiveOptions, run_live
from firmware_sim.machines import machine_spec
from models.registry import FileRegistry, ModelEntry
from tests.care.conftest import MovableClock, care_settings
from tests.care.receivers import WebhookReceiver
from tests.fixtures.fix_mqtt import MosquittoFactory
from tests.scoring.conftest import fleet_registry, tiny_fleet  # noqa: F401 (fixtures)
from tests.scoring.tiny_fleet import CONFIG, SIM, TinyFleet

pytestmark = [pytest.mark.services, pytest.mark.slow]

SECRET = "fleet-to-report-webhook-secret"
RULE = "failure-risk v1"
#: Days of notice: the fleet is scored as of the end of the day this many days before the
#: day of the failure.
NOTICE_DAYS = 2


@dataclass(frozen=True)
class PlannedFailure:
    """The failure the test expects the pipeline to catch, from the simulator's ground truth."""

    device: str
    fleet_index: int
    failed_at: datetime
    mode: str
    scored_as_of: datetime
    span_days: int


def _sim_start() -> datetime:
    return datetime(SIM.start.year, SIM.start.month, SIM.start.day, tzinfo=UTC)


def _soonest_failure(fleet: TinyFleet) -> PlannedFailure:
    """The device whose first failure comes soonest after a full scoring window plus the
    notice: a wear failure (a mode the model knows), the device's first one."""
    first: dict[int, tuple[float, str]] = {}
    for device, day, mode in fleet.outcomes.failures:
        if device not in first or day < first[device][0]:
            first[device] = (day, mode)
    candidates = sorted(
        (day, device, mode)
        for device, (day, mode) in first.items()
        if mode in fleet.outcomes.modes and int(day) - NOTICE_DAYS >= CONFIG.window_days - 1
    )
    day, device, mode = candidates[0]
    external = fleet.daily.device_ids[device]
    (index,) = (d.index for d in build_fleet(SIM).devices if d.device_id == external)
    start = _sim_start()
    return PlannedFailure(
        device=external,
        fleet_index=index,
        failed_at=start + timedelta(days=day),
        mode=mode,
        # the end of the day NOTICE_DAYS before the failure's day (a day is scored once over)
        scored_as_of=start + timedelta(days=int(day) - NOTICE_DAYS + 1),
        span_days=int(day) + 2,
    )


def _register(conn: psycopg.Connection[Any], failure: PlannedFailure) -> int:
    """The simulated device (its account, a site in the north region, an active contract)
    under the device model named after its machine type, as the demo registers it."""
    (device,) = (d for d in build_fleet(SIM).devices if d.device_id == failure.device)
    (account,) = (a for a in build_fleet(SIM).accounts if a.account_id == device.account_id)
    row = conn.execute(
        "INSERT INTO accounts (customer_key, name, industry, region, country)"
        " VALUES (%s, %s, %s, 'north', %s) RETURNING id",
        (account.account_id, account.name, account.industry, account.country),
    ).fetchone()
    assert row is not None
    account_id = int(row[0])
    conn.execute(
        "INSERT INTO contracts (account_id, annual_value, start_date, end_date, sla_hours)"
        " VALUES (%s, 500000, '2024-01-01', '2027-12-31', 8)",
        (account_id,),
    )
    row = conn.execute(
        "INSERT INTO sites (account_id, name, region) VALUES (%s, 'plant', 'north') RETURNING id",
        (account_id,),
    ).fetchone()
    assert row is not None
    spec = machine_spec(device.machine_type)
    model_id = ensure_device_model(
        conn,
        device.machine_type,
        device.machine_type,
        [MetricSpec(m.name, m.unit) for m in spec.metrics],
    )
    device_id = ensure_device(
        conn, device.device_id, model_id, account_id=account_id, site_id=int(row[0])
    )
    conn.commit()
    return device_id


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver(SECRET)
    hook.start()
    yield hook
    hook.stop()


def _count(conn: psycopg.Connection[Any], query: str, *params: object) -> int:
    row = conn.execute(query, params).fetchone()
    conn.commit()
    assert row is not None
    return int(row[0])


def _wait_stored(conn: psycopg.Connection[Any], device_id: int, readings: int) -> int:
    """Wait (bounded) until ingest stored ``readings`` readings of the device."""
    deadline = time.monotonic() + 30
    stored = 0
    while time.monotonic() < deadline:
        stored = _count(conn, "SELECT count(*) FROM telemetry WHERE device_id = %s", device_id)
        if stored >= readings:
            break
        time.sleep(0.25)
    return stored


def test_simulated_failure_is_predicted_ticketed_notified_confirmed_and_reported(
    fresh_database_url: str,
    mosquitto_factory: MosquittoFactory,
    topic_root: str,
    tiny_fleet: TinyFleet,  # noqa: F811
    fleet_registry: tuple[FileRegistry, ModelEntry],  # noqa: F811
    receiver: WebhookReceiver,
    tmp_path: Path,
) -> None:
    registry, champion = fleet_registry
    failure = _soonest_failure(tiny_fleet)
    url = fresh_database_url
    apply_migrations(url, dialect="postgres")
    broker = mosquitto_factory()
    settings = care_settings()
    with psycopg.connect(url) as conn:
        device_id = _register(conn, failure)
        ensure_rules(conn, load_rules_file(), actor="test")
        admin = create_api_key(conn, create_user(conn, "admin", "admin"))
        tech = create_api_key(
            conn, create_user(conn, "tech", "field", region="north", team="north-mech")
        )
        conn.commit()

        # 1. the fleet, through the device SDK, into the ingest worker
        ingest = IngestWorker(
            WorkerTarget(url, broker.url, topic_root),
            IngestSettings(
                metrics_port=None,
                client_id_prefix=f"e2e-{time.monotonic_ns()}",
                unknown_retry_s=0,
                # the simulated calendar lies in the past: accept readings back to its start
                max_past_s=(datetime.now(UTC) - _sim_start()).total_seconds() + 86_400,
            ),
            subscription="plain",
        )
        ingest.start()
        try:
            assert ingest.receiver is not None and ingest.receiver.wait_connected(10)
            published = run_live(
                SIM,
                LiveOptions(
                    broker_urls=(broker.url,),
                    queue_dir=tmp_path / "queues",
                    truth_dir=tmp_path / "truth",
                    topic_root=topic_root,
                    speed=0,
                    duration_s=failure.span_days * 86_400,
                    real_start=False,
                    shard=(failure.fleet_index, SIM.devices),  # this device only
                ),
            )
            assert published.undelivered == 0 and published.dropped == 0
            stored = _wait_stored(conn, device_id, published.readings)
        finally:
            ingest.stop()
        assert published.readings == failure.span_days * 86_400 // SIM.interval_s
        rejected = conn.execute(
            "SELECT reason, count(*) FROM dead_letters GROUP BY reason"
        ).fetchall()
        conn.commit()
        assert stored == published.readings, (ingest.last_error, rejected)
        trip_at = conn.execute(
            "SELECT min(time) FROM device_events WHERE device_id = %s AND kind = 'trip'"
            " AND time >= %s",
            (device_id, failure.scored_as_of),
        ).fetchone()
        assert trip_at is not None and trip_at[0] == failure.failed_at  # the planned failure
        conn.commit()

        # 2. rollups refreshed and the fleet scored as of NOTICE_DAYS before the failure
        with psycopg.connect(url, autocommit=True) as refresh:
            dialect_of(refresh).refresh_rollups(
                refresh, failure.scored_as_of - timedelta(days=45), failure.failed_at
            )
        scoring = ScoringWorker(url, registry, lookback_days=35, day_grace_minutes=0)
        assert scoring.run_once(failure.scored_as_of).scored == 1
        prediction = conn.execute(
            "SELECT p.failure_risk, p.failure_mode, p.window_end, mv.name, mv.version"
            " FROM predictions p JOIN model_versions mv ON mv.id = p.model_version_id"
            " WHERE p.device_id = %s",
            (device_id,),
        ).fetchone()
        conn.commit()
        assert prediction is not None
        risk, mode, window_end, model_name, model_version = prediction
        assert risk >= 0.7, f"risk {risk:.2f} of {failure.device} before its {failure.mode}"
        assert mode == failure.mode
        assert window_end <= failure.scored_as_of
        assert (model_name, model_version) == (champion.name, champion.version)

        # 3. ticket and alert, signed webhook
        clock = MovableClock(failure.scored_as_of)
        with ConnectionPool(url, min_size=1, max_size=2, open=True) as pool:
            app = create_app(BackendSettings(database_url=url), pool=pool)
            app.state.care_settings = settings
            with TestClient(app, raise_server_exceptions=False) as client:
                as_admin = {"Authorization": f"Bearer {admin}"}
                hook = client.post(
                    "/webhooks", json={"url": receiver.url, "secret": SECRET}, headers=as_admin
                )
                assert hook.status_code == 201, hook.text
                passed = CareEngine(settings, clock=clock).run_once(conn)
                assert passed.outcomes["ticket_opened"] == 1
                ticket = conn.execute(
                    "SELECT id, need_id, failure_mode, region FROM tickets WHERE device_id = %s",
                    (device_id,),
                ).fetchone()
                assert ticket is not None
                ticket_id, need_id, ticket_mode, region = ticket
                assert (ticket_mode, region) == (failure.mode, "north")
                assert _count(conn, "SELECT count(*) FROM alerts WHERE need_id = %s", need_id) == 1
                with DeliveryWorker(settings, clock=clock) as delivery:
                    assert delivery.deliver_due(conn).delivered == 2
                received = {b["event"]: b for b in receiver.log.processed.values()}
                assert receiver.log.bad_signatures == 0
                assert set(received) == {"ticket.opened", "alert.opened"}
                assert received["ticket.opened"]["data"]["id"] == ticket_id
                assert received["alert.opened"]["data"]["need_id"] == need_id

                # 4. the failure confirmed through the API by the region's technician
                as_tech = {"Authorization": f"Bearer {tech}"}
                for path, body in (
                    ("assign", {}),
                    ("transition", {"to_status": "in_progress"}),
                    ("outcome", {"outcome": "failure_confirmed", "note": "confirmed on site"}),
                ):
                    step = client.post(f"/tickets/{ticket_id}/{path}", json=body, headers=as_tech)
                    assert step.status_code == 200, step.text

                # 5. the report counts it, for the model version and for the rule
                window = {
                    "since": SIM.start.isoformat() + "T00:00:00Z",
                    "until": (failure.failed_at + timedelta(days=1)).isoformat(),
                }
                figures = client.get("/care/report", params=window, headers=as_admin)
                assert figures.status_code == 200, figures.text
    report = figures.json()
    expected_lead_h = (failure.failed_at - failure.scored_as_of).total_seconds() / 3600
    for stats in (
        report["overall"],
        *[s for s in report["by_model_version"] if s["group"] == f"{model_name} {model_version}"],
        *[s for s in report["by_rule"] if s["group"] == RULE],
    ):
        assert stats["tickets"] == 1 and stats["failure_confirmed"] == 1
        assert stats["precision"] == 1.0
        assert stats["missed_failures"] == 0
        assert stats["lead_time_hours_median"] == pytest.approx(expected_lead_h, abs=0.01)
    assert [s["group"] for s in report["by_model_version"]] == [f"{model_name} {model_version}"]
    assert [s["group"] for s in report["by_rule"]] == [RULE]
    assert report["missed_failures"] == 0 and report["failures"] >= 1
    with psycopg.connect(url) as conn:
        direct = care_report(
            conn,
            since=datetime.fromisoformat(window["since"]),
            until=datetime.fromisoformat(window["until"]),
        )
    assert direct.overall.failure_confirmed == 1 and direct.by_rule[0].group == RULE
