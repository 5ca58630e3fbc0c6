"""Telemetry storage on plain PostgreSQL: dedup, shared timestamps, new device types,
partitions on demand, incremental rollups and retention."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from backend.storage.catalogue import (
    MetricSpec,
    ensure_device,
    ensure_device_model,
    model_positions,
)
from backend.storage.errors import StorageError
from backend.storage.maintenance import run_maintenance
from backend.storage.migrator import apply_migrations, dialect_of
from backend.storage.rollup_queries import raw_buckets, rollup
from backend.storage.telemetry import Reading, align_values, insert_readings
from tests.storage.sample_data import START, assert_same_buckets, readings, register_fleet

pytestmark = pytest.mark.services

# Columns of the schema's tables, not counting time partitions (created as data arrives).
_SCHEMA_COLUMNS = (
    "SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
    "WHERE c.relnamespace = 'public'::regnamespace AND NOT c.relispartition "
    "AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped"
)


@pytest.fixture
def conn(fresh_database_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    apply_migrations(fresh_database_url, dialect="postgres")
    with psycopg.connect(fresh_database_url, autocommit=True) as connection:
        yield connection


def _count(conn: psycopg.Connection[tuple[object, ...]], query: str) -> int:
    row = conn.execute(query).fetchone()
    assert row is not None
    return int(str(row[0]))


def test_redelivered_readings_are_stored_once(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    dialect = dialect_of(conn)
    devices, metrics = register_fleet(conn, devices=2)
    rows = readings(devices, metrics, hours=3)
    assert insert_readings(conn, dialect, rows) == len(rows)
    assert insert_readings(conn, dialect, rows[: len(rows) // 2]) == 0
    assert _count(conn, "SELECT count(*) FROM telemetry") == len(rows)


def test_readings_sharing_a_timestamp_do_not_collapse(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    dialect = dialect_of(conn)
    devices, _metrics = register_fleet(conn, devices=1)
    at = START
    rows = [Reading(at, devices[0], seq, [float(seq), None, None]) for seq in (1, 2)]
    insert_readings(conn, dialect, rows)
    values = conn.execute(
        "SELECT vals[1] FROM telemetry WHERE time = %s ORDER BY seq", (at,)
    ).fetchall()
    assert values == [(1.0,), (2.0,)]


def test_a_new_device_type_needs_no_schema_change(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    dialect = dialect_of(conn)
    columns_before = _count(conn, _SCHEMA_COLUMNS)
    with conn.transaction():
        model = ensure_device_model(
            conn,
            "chiller-x9",
            "chiller",
            [
                MetricSpec("refrigerant_pressure", "bar", min_value=0, max_value=40),
                MetricSpec("evaporator_temp", "degC"),
            ],
        )
        device = ensure_device(conn, "chiller-0001", model)
        positions = model_positions(conn, model)
    assert positions == {"refrigerant_pressure": 1, "evaporator_temp": 2}
    vals = align_values({"evaporator_temp": 4.0, "refrigerant_pressure": 12.5}, positions)
    insert_readings(conn, dialect, [Reading(START, device, 1, vals)])
    # A later firmware adds a metric: it takes the next position, old positions stay.
    with conn.transaction():
        ensure_device_model(conn, "chiller-x9", "chiller", [MetricSpec("oil_level", "%")])
        positions = model_positions(conn, model)
    assert positions["oil_level"] == 3
    assert positions["refrigerant_pressure"] == 1
    insert_readings(
        conn, dialect, [Reading(START, device, 2, align_values({"oil_level": 80.0}, positions))]
    )
    assert _count(conn, _SCHEMA_COLUMNS) == columns_before
    stored = conn.execute(
        "SELECT vals FROM telemetry WHERE device_id = %s ORDER BY seq", (device,)
    ).fetchall()
    assert stored == [([12.5, 4.0],), ([None, None, 80.0],)]
    with pytest.raises(StorageError, match="not in the device model's catalogue"):
        align_values({"flux_capacitance": 1.0}, positions)


def test_historical_writes_create_their_partitions(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    dialect = dialect_of(conn)
    devices, metrics = register_fleet(conn, devices=1)
    old = datetime(2025, 6, 1, tzinfo=UTC)
    rows = readings(devices, metrics, hours=24 * 9, step_min=60, start=old)
    insert_readings(conn, dialect, rows)
    parts = _count(
        conn,
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'telemetry'::regclass "
        "AND inhrelid::regclass::text LIKE 'telemetry_p2025%'",
    )
    # Sunday 1 June to Monday 9 June 2025: the weeks of 26 May, 2 June and 9 June.
    assert parts == 3


def test_rollups_refresh_incrementally_and_catch_late_data(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    dialect = dialect_of(conn)
    devices, metrics = register_fleet(conn, devices=2)
    rows = readings(devices, metrics, hours=30)
    insert_readings(conn, dialect, rows)
    end = START + timedelta(hours=30)
    dialect.refresh_rollups(conn, START, end)
    hourly = rollup(conn, "hourly", START, end)
    assert_same_buckets(hourly, raw_buckets(conn, dialect, timedelta(hours=1), START, end))
    assert _count(conn, "SELECT count(*) FROM rollup_invalidations") == 0

    # A late reading for hour 5 of device 0: only that hour (and its day) is recomputed.
    late_at = START + timedelta(hours=5, minutes=1)
    vib = metrics["vibration_rms"]
    insert_readings(conn, dialect, [Reading(late_at, devices[0], 10**6, [1000.0, None, None])])
    stale = [
        b for b in rollup(conn, "hourly", START, end) if b.bucket == START + timedelta(hours=5)
    ]
    assert all(b.max != 1000.0 for b in stale)
    dialect.refresh_rollups(conn, START, end)
    fresh = rollup(
        conn,
        "hourly",
        START + timedelta(hours=5),
        START + timedelta(hours=6),
        device_ids=[devices[0]],
        metric_ids=[vib],
    )
    assert fresh[0].max == 1000.0
    daily = rollup(conn, "daily", START, end, device_ids=[devices[0]], metric_ids=[vib])
    assert daily[0].max == 1000.0
    assert_same_buckets(
        daily,
        raw_buckets(
            conn,
            dialect,
            timedelta(days=1),
            START,
            START + timedelta(days=2),
            device_ids=[devices[0]],
            metric_ids=[vib],
        ),
    )


def test_refresh_outside_the_window_keeps_invalidations_for_later(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    dialect = dialect_of(conn)
    devices, metrics = register_fleet(conn, devices=1)
    insert_readings(conn, dialect, readings(devices, metrics, hours=48))
    dialect.refresh_rollups(conn, START, START + timedelta(hours=10))
    assert rollup(conn, "hourly", START + timedelta(hours=10), START + timedelta(hours=48)) == []
    dialect.refresh_rollups(conn, START, START + timedelta(hours=48))
    later = rollup(conn, "hourly", START + timedelta(hours=10), START + timedelta(hours=48))
    assert len({b.bucket for b in later}) == 38


def test_retention_drops_whole_old_partitions(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    dialect = dialect_of(conn)
    devices, metrics = register_fleet(conn, devices=1)
    now = datetime.now(UTC)
    old_rows = readings(devices, metrics, hours=2, start=now - timedelta(days=60))
    new_rows = readings(devices, metrics, hours=2, start=now - timedelta(hours=3), seed=8)
    new_rows = [row._replace(seq=row.seq + 10_000) for row in new_rows]
    insert_readings(conn, dialect, old_rows + new_rows)
    dialect.set_retention(conn, "telemetry_retention_days", 30)
    report = run_maintenance(conn, now=now)
    assert report.retention.dropped["telemetry"]
    assert _count(conn, "SELECT count(*) FROM telemetry") == len(new_rows)
