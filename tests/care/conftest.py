"""Fixtures of the care tests: a migrated database per test (cloned from a migrated template),
a movable clock, and a small fleet (accounts, CSMs, sites, devices) to raise needs on."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from backend.care.engine import CareEngine
from backend.care.rule_definitions import load_rules_file
from backend.care.rule_store import sync_rules
from backend.care.settings import CareSettings, FieldTeam, RegionCapacity
from backend.storage.migrator import apply_migrations
from tests.fixtures.fix_db import _with_database

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def care_session_db(pg_server_url: str) -> Iterator[str]:
    """A migrated database for the care tests of this session, dropped at the end.

    Dropping a database forces a checkpoint (seconds on a busy machine), so the tests share
    this one and :func:`care_db` empties it before each test instead.
    """
    dbname = f"fleetcare_care_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    url = _with_database(pg_server_url, dbname)
    try:
        apply_migrations(url, dialect="postgres")
        yield url
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )


# Every table a care test writes, parents last; the foreign keys cascade to the rest.
# DELETE, not TRUNCATE: on a few rows it is a thousand times faster.
_TABLES = (
    "device_events",
    "notification_outbox",
    "webhooks",
    "audit_log",
    "incidents",
    "service_needs",
    "accounts",
    "users",
    "devices",
    "device_models",
    "model_versions",
    "care_rules",
)


@pytest.fixture
def care_db(care_session_db: str) -> str:
    """The session's migrated database, emptied of everything the care tests write."""
    with psycopg.connect(care_session_db, autocommit=True) as conn:
        for table in _TABLES:
            conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))
        conn.execute("UPDATE care_cursors SET last_id = 0")
    return care_session_db


@pytest.fixture
def conn(care_db: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(care_db) as connection:
        yield connection


class MovableClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


def care_settings(**overrides: Any) -> CareSettings:
    values: dict[str, Any] = {
        "regions": {"north": RegionCapacity(parts_lead_hours=72, technician_lead_hours=24)},
        "default_capacity": RegionCapacity(parts_lead_hours=24, technician_lead_hours=24),
        "teams": (
            FieldTeam(name="north-mech", region="north", skills=("mechanical",)),
            FieldTeam(name="north-elec", region="north", skills=("electrical",)),
            FieldTeam(name="south-all", region="south", skills=("mechanical", "electrical")),
        ),
        "delivery_backoff_base_s": 60,
        "delivery_backoff_max_s": 600,
    }
    values.update(overrides)
    return CareSettings(**values)


@pytest.fixture
def engine(clock: MovableClock) -> CareEngine:
    return CareEngine(care_settings(), clock=clock)


@dataclass
class Fleet:
    """Ids of what :func:`seed_fleet` created."""

    csm_ids: list[int]
    account_ids: list[int]
    site_ids: list[int]
    devices: dict[int, list[int]] = field(default_factory=dict)  # site id -> device ids
    model_version_ids: list[int] = field(default_factory=list)

    def all_devices(self) -> list[int]:
        return [d for ids in self.devices.values() for d in ids]


def _one(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...]) -> int:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])


def seed_fleet(
    conn: psycopg.Connection[Any], *, devices_per_site: int = 3, sites_per_account: int = 1
) -> Fleet:
    """Two accounts (north: valuable, 4 h SLA; south: small, no SLA), each with its CSM,
    sites and pumps; two model versions; the default rules."""
    fleet = Fleet([], [], [])
    model_id = _one(
        conn,
        "INSERT INTO device_models (name, kind) VALUES ('cp200', 'centrifugal_pump') RETURNING id",
        (),
    )
    for version in ("1", "2"):
        fleet.model_version_ids.append(
            _one(
                conn,
                "INSERT INTO model_versions (name, version, kind, manifest, artifact_uri,"
                " artifact_sha256) VALUES ('pump-failure', %s, 'failure', '{}', 'file:///m',"
                " %s) RETURNING id",
                (version, "0" * 63 + version),
            )
        )
    for index, (region, value, sla) in enumerate((("north", 250_000, 4), ("south", 8_000, None))):
        csm = _one(
            conn,
            "INSERT INTO users (name, email, role) VALUES (%s, %s, 'csm') RETURNING id",
            (f"csm-{region}", f"csm-{region}@example.com"),
        )
        fleet.csm_ids.append(csm)
        account = _one(
            conn,
            "INSERT INTO accounts (customer_key, name, region, csm_user_id)"
            " VALUES (%s, %s, %s, %s) RETURNING id",
            (f"cust-{index}", f"Customer {region}", region, csm),
        )
        fleet.account_ids.append(account)
        conn.execute(
            "INSERT INTO contracts (account_id, annual_value, start_date, end_date, renewal_date,"
            " sla_hours) VALUES (%s, %s, %s, %s, %s, %s)",
            (account, value, date(2025, 9, 1), date(2026, 8, 31), date(2026, 8, 1), sla),
        )
        for s in range(sites_per_account):
            site = _one(
                conn,
                "INSERT INTO sites (account_id, name, region) VALUES (%s, %s, %s) RETURNING id",
                (account, f"{region}-site-{s}", region),
            )
            fleet.site_ids.append(site)
            fleet.devices[site] = [
                _one(
                    conn,
                    "INSERT INTO devices (external_id, model_id, account_id, site_id)"
                    " VALUES (%s, %s, %s, %s) RETURNING id",
                    (f"pump-{region}-{s}-{d}", model_id, account, site),
                )
                for d in range(devices_per_site)
            ]
    sync_rules(conn, load_rules_file(), actor="test")
    conn.commit()
    return fleet


def add_prediction(
    conn: psycopg.Connection[Any],
    device_id: int,
    *,
    risk: float | None,
    rul_hours: float | None = None,
    mode: str | None = "bearing_wear",
    at: datetime = T0,
    horizon_hours: int = 168,
    model_version_id: int | None = None,
) -> int:
    prediction_id = _one(
        conn,
        "INSERT INTO predictions (predicted_at, device_id, model_version_id, window_start,"
        " window_end, horizon_hours, failure_risk, rul_hours, failure_mode)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (
            at,
            device_id,
            model_version_id,
            at - timedelta(hours=24),
            at,
            horizon_hours,
            risk,
            rul_hours,
            mode,
        ),
    )
    conn.commit()
    return prediction_id


def add_health(
    conn: psycopg.Connection[Any],
    account_id: int,
    *,
    score: float,
    band: str,
    churn_risk: float | None = None,
    at: datetime = T0,
) -> int:
    health_id = _one(
        conn,
        "INSERT INTO health_scores (account_id, computed_at, score, band, churn_risk,"
        " components, inputs, weights_version) VALUES (%s, %s, %s, %s, %s, %s, %s, 'w1')"
        " RETURNING id",
        (account_id, at, score, band, churn_risk, json.dumps({}), json.dumps({})),
    )
    conn.commit()
    return health_id


def scalar(conn: psycopg.Connection[Any], query: str, *params: Any) -> Any:
    row = conn.execute(query, params).fetchone()
    conn.commit()
    return None if row is None else row[0]
