"""A small world for the console: two regions, two CSMs, tickets, alerts, telemetry, keys."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from backend.api.auth import create_api_key, create_user
from backend.storage.catalogue import MetricSpec, ensure_device, ensure_device_model
from backend.storage.migrator import apply_migrations, dialect_of
from backend.storage.telemetry import Reading, insert_readings

pytestmark = pytest.mark.services


@dataclass(frozen=True)
class ConsoleWorld:
    database_url: str
    keys: dict[str, str]
    users: dict[str, int]
    accounts: dict[str, int]
    tickets: dict[str, int]
    alerts: dict[str, int]


def _one(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...]) -> int:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])


def _seed(conn: psycopg.Connection[Any]) -> ConsoleWorld:
    users = {
        "admin": create_user(conn, "Ada Admin", "admin"),
        "field_north": create_user(conn, "Nils North", "field", region="north", team="rotating"),
        "field_south": create_user(conn, "Sofia South", "field", region="south", team="static"),
        "csm_a": create_user(conn, "Carla CSM", "csm"),
        "csm_b": create_user(conn, "Bruno CSM", "csm"),
    }
    keys = {name: create_api_key(conn, user_id, "console test") for name, user_id in users.items()}
    accounts: dict[str, int] = {}
    for name, owner in (("Acme Water", "csm_a"), ("Borealis Foods", "csm_b")):
        accounts[name] = _one(
            conn,
            "INSERT INTO accounts (customer_key, name, region, csm_user_id) "
            "VALUES (%s, %s, %s, %s) RETURNING id",
            (name.lower().replace(" ", "-"), name, "north", users[owner]),
        )
        conn.execute(
            "INSERT INTO contracts (account_id, annual_value, start_date, end_date, renewal_date, "
            "sla_hours) VALUES (%s, 120000, %s, %s, %s, 24)",
            (accounts[name], date(2026, 1, 1), date(2027, 1, 1), date(2026, 12, 20)),
        )
    model_id = ensure_device_model(
        conn,
        "pump-console",
        "pump",
        [MetricSpec("bearing_temp_c", "°C"), MetricSpec("vibration_rms_mm_s", "mm/s")],
    )
    sites = {
        region: _one(
            conn,
            "INSERT INTO sites (account_id, name, region) VALUES (%s, %s, %s) RETURNING id",
            (accounts["Acme Water"], f"Plant {region}", region),
        )
        for region in ("north", "south")
    }
    devices = {
        region: ensure_device(
            conn, f"pump-{region}-1", model_id, account_id=accounts["Acme Water"], site_id=site
        )
        for region, site in sites.items()
    }
    now = datetime.now(UTC).replace(microsecond=0)
    readings = [
        Reading(
            now - timedelta(hours=i),
            devices["north"],
            10_000 - i,
            [60.0 + 15 * math.exp(-i / 40) + math.sin(i / 5), 2.0 + 6 * math.exp(-i / 30)],
        )
        for i in range(160)
    ]
    insert_readings(conn, dialect_of(conn), readings)
    tickets: dict[str, int] = {}
    for region, device_id in devices.items():
        prediction_id = _one(
            conn,
            "INSERT INTO predictions (predicted_at, device_id, window_start, window_end, "
            "horizon_hours, failure_risk, rul_hours, failure_mode, contributions, "
            "mode_probabilities) "
            "VALUES (%s, %s, %s, %s, 336, 0.91, 150, 'bearing_wear', %s, %s) RETURNING id",
            (
                now,
                device_id,
                now - timedelta(days=7),
                now,
                # as the scoring worker writes them (models.explain.Contribution)
                Jsonb(
                    [
                        {"signal": "vibration_rms_mm_s", "effect": 0.42},
                        {"signal": "bearing_temp_c", "effect": -0.031},
                    ]
                ),
                Jsonb({"bearing_wear": 0.88, "seal_leak": 0.21, "strainer_clog": 0.02}),
            ),
        )
        for hours_ago, risk in ((72, 0.2), (48, 0.45), (24, 0.7)):
            conn.execute(
                "INSERT INTO predictions (predicted_at, device_id, window_start, window_end, "
                "horizon_hours, failure_risk, failure_mode) VALUES (%s, %s, %s, %s, 336, %s, "
                "'bearing_wear')",
                (now - timedelta(hours=hours_ago), device_id, now, now, risk),
            )
        tickets[region] = _one(
            conn,
            "INSERT INTO tickets (dedup_key, device_id, account_id, site_id, region, team, "
            "failure_mode, failure_risk, expected_failure_at, recommended_action, parts, "
            "priority, prediction_id) VALUES (%s, %s, %s, %s, %s, %s, 'bearing_wear', 0.91, "
            "%s, 'Replace the drive-end bearing', %s, 2, %s) RETURNING id",
            (
                f"{device_id}:bearing_wear",
                device_id,
                accounts["Acme Water"],
                sites[region],
                region,
                "rotating" if region == "north" else "static",
                now + timedelta(days=6),
                Jsonb(["bearing 6309-2Z"]),
                prediction_id,
            ),
        )
    for name, score, band in (("Acme Water", 38.0, "at_risk"), ("Borealis Foods", 82.0, "healthy")):
        conn.execute(
            "INSERT INTO health_scores (account_id, computed_at, score, band, trend, churn_risk, "
            "components, inputs, weights_version) VALUES (%s, %s, %s, %s, -6.5, 0.4, %s, %s, 'v1')",
            (accounts[name], now, score, band, Jsonb({"fleet_risk": 20}), Jsonb({})),
        )
    alerts = {
        name: _one(
            conn,
            "INSERT INTO alerts (dedup_key, account_id, csm_user_id, kind, severity, reasons) "
            "VALUES (%s, %s, %s, 'fleet_risk', 'warning', %s) RETURNING id",
            (
                f"{accounts[name]}:fleet_risk",
                accounts[name],
                users["csm_a" if name == "Acme Water" else "csm_b"],
                Jsonb([{"code": "devices_at_risk", "text": "2 devices at risk of bearing wear"}]),
            ),
        )
        for name in ("Acme Water", "Borealis Foods")
    }
    return ConsoleWorld("", keys, users, accounts, tickets, alerts)


@pytest.fixture
def console_world(fresh_database_url: str) -> ConsoleWorld:
    apply_migrations(fresh_database_url)
    with psycopg.connect(fresh_database_url) as conn:
        world = _seed(conn)
    return ConsoleWorld(
        fresh_database_url, world.keys, world.users, world.accounts, world.tickets, world.alerts
    )


@pytest.fixture
def console_pool(console_world: ConsoleWorld) -> Iterator[ConnectionPool[Any]]:
    pool: ConnectionPool[Any] = ConnectionPool(
        console_world.database_url, min_size=1, max_size=4, open=True
    )
    try:
        yield pool
    finally:
        pool.close()
