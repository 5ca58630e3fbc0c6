"""The TimescaleDB dialect against a real TimescaleDB 2.23 (WebAssembly build on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from backend.storage.connect import connect
from backend.storage.maintenance import run_maintenance
from backend.storage.migrator import (
    apply_migrations,
    dialect_of,
    load_migrations,
    migration_status,
)
from backend.storage.rollup_queries import raw_buckets, rollup
from backend.storage.telemetry import insert_readings
from tests.fixtures.fix_timescale import disable_prepared_statements
from tests.storage.sample_data import START, assert_same_buckets, readings, register_fleet

pytestmark = [pytest.mark.timescale, pytest.mark.slow]


@pytest.fixture(scope="module")
def migrated_url(timescale_server_url: str) -> str:
    run = apply_migrations(timescale_server_url)
    assert run.dialect == "timescaledb"
    assert run.applied == [m.label for m in load_migrations("timescaledb")]
    return timescale_server_url


@pytest.fixture
def conn(migrated_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    # The WebAssembly server takes one connection at a time: connect() retries briefly.
    with connect(migrated_url, autocommit=True) as connection:
        disable_prepared_statements(connection)
        yield connection


def test_migrations_are_idempotent_on_timescaledb(migrated_url: str) -> None:
    again = apply_migrations(migrated_url)
    expected = len(load_migrations("timescaledb"))
    assert again.applied == [] and again.already_applied == expected
    assert migration_status(migrated_url).dialect == "timescaledb"


def test_time_series_tables_are_hypertables(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    rows = conn.execute(
        "SELECT hypertable_name FROM timescaledb_information.hypertables"
    ).fetchall()
    names = {str(row[0]) for row in rows}
    assert {"telemetry", "usage_records", "device_events", "device_state_reports"} <= names


def test_rollups_are_continuous_aggregates(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    rows = conn.execute(
        "SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates"
    ).fetchall()
    assert dict(rows) == {"telemetry_hourly": True, "telemetry_daily": True}


def test_compression_is_segmented_by_device(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    rows = conn.execute(
        "SELECT attname, segmentby_column_index, orderby_column_index "
        "FROM timescaledb_information.compression_settings WHERE hypertable_name = 'telemetry'"
    ).fetchall()
    settings = {str(name): (seg, order) for name, seg, order in rows}
    assert settings["device_id"][0] == 1
    assert settings["time"][1] == 1


def test_policies_are_scheduled(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    rows = conn.execute(
        "SELECT proc_name, hypertable_name FROM timescaledb_information.jobs "
        "WHERE hypertable_name IS NOT NULL"
    ).fetchall()
    jobs = {(str(proc), str(table)) for proc, table in rows}
    assert ("policy_compression", "telemetry") in jobs
    assert ("policy_retention", "telemetry") in jobs
    assert ("policy_refresh_continuous_aggregate", "telemetry_hourly") in jobs
    assert ("policy_refresh_continuous_aggregate", "telemetry_daily") in jobs


def test_compressed_chunks_stay_readable_and_rollups_match(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    dialect = dialect_of(conn)
    devices, metrics = register_fleet(conn, devices=2)
    rows = readings(devices, metrics, hours=26, step_min=10)
    insert_readings(conn, dialect, rows)
    before = raw_buckets(conn, dialect, timedelta(hours=1), START, START + timedelta(hours=26))
    chunks = conn.execute("SELECT show_chunks('telemetry')").fetchall()
    for (chunk,) in chunks:
        conn.execute("SELECT compress_chunk(%s::regclass, if_not_compressed => true)", (chunk,))
    compressed = conn.execute(
        "SELECT count(*) FROM timescaledb_information.chunks "
        "WHERE hypertable_name = 'telemetry' AND is_compressed"
    ).fetchone()
    assert compressed is not None and int(str(compressed[0])) == len(chunks) > 0
    after = raw_buckets(conn, dialect, timedelta(hours=1), START, START + timedelta(hours=26))
    assert_same_buckets(before, after)
    dialect.refresh_rollups(conn, START, START + timedelta(hours=26))
    assert_same_buckets(rollup(conn, "hourly", START, START + timedelta(hours=26)), before)


def test_retention_drops_old_chunks(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    dialect = dialect_of(conn)
    devices, metrics = register_fleet(conn, devices=3)
    device = devices[2]
    now = datetime.now(UTC)
    old = readings([device], metrics, hours=1, start=now - timedelta(days=90))
    recent = [
        r._replace(seq=r.seq + 10_000)
        for r in readings([device], metrics, hours=1, start=now - timedelta(hours=2))
    ]
    insert_readings(conn, dialect, old + recent)
    dialect.set_retention(conn, "telemetry_retention_days", 30)
    report = dialect.apply_retention(conn, now)
    assert report.dropped["telemetry"]
    left = conn.execute("SELECT count(*) FROM telemetry WHERE device_id = %s", (device,)).fetchone()
    assert left is not None and int(str(left[0])) == len(recent)
    policy = conn.execute(
        "SELECT config->>'drop_after' FROM timescaledb_information.jobs "
        "WHERE proc_name = 'policy_retention' AND hypertable_name = 'telemetry'"
    ).fetchone()
    assert policy is not None and "30 days" in str(policy[0])


def test_refresh_policies_reach_as_far_back_as_ingest_accepts(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    rows = conn.execute(
        "SELECT hypertable_name, config->>'start_offset', config->>'end_offset' "
        "FROM timescaledb_information.jobs "
        "WHERE proc_name = 'policy_refresh_continuous_aggregate'"
    ).fetchall()
    offsets = {str(view): (str(start), str(end)) for view, start, end in rows}
    assert offsets == {
        "telemetry_hourly": ("31 days", "01:00:00"),
        "telemetry_daily": ("32 days", "01:00:00"),
    }


def test_the_policies_alone_roll_up_yesterday(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    """Where no maintenance pass runs, a day's bucket must not wait another day: it is
    materialised once the day has been over for the end offset (an hour)."""
    dialect = dialect_of(conn)
    devices, metrics = register_fleet(conn, devices=5)
    device = devices[4]
    now = datetime.now(UTC)
    ended = (now - timedelta(hours=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    day = ended - timedelta(days=1)  # yesterday, or the day before in the first hour
    rows = [
        r._replace(seq=r.seq + 30_000)
        for r in readings([device], metrics, hours=72, start=day - timedelta(days=1))
        if r.time < now - timedelta(minutes=5)
    ]
    insert_readings(conn, dialect, rows)
    jobs = conn.execute(
        "SELECT job_id FROM timescaledb_information.jobs "
        "WHERE proc_name = 'policy_refresh_continuous_aggregate' ORDER BY hypertable_name DESC"
    ).fetchall()  # hourly first: the daily rollup is built on it
    for (job_id,) in jobs:
        conn.execute("CALL run_job(%s)", (job_id,))
    daily = rollup(conn, "daily", day, day + timedelta(days=1), device_ids=[device])
    assert daily and all(b.bucket == day for b in daily)
    expected = raw_buckets(
        conn, dialect, timedelta(days=1), day, day + timedelta(days=1), device_ids=[device]
    )
    assert_same_buckets(daily, expected)


def test_a_backlog_after_a_long_outage_reaches_the_rollups(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    dialect = dialect_of(conn)
    devices, metrics = register_fleet(conn, devices=4)
    device = devices[3]
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(days=6)
    run_maintenance(conn, now=start)  # the last pass before the device went quiet
    backlog = [
        r._replace(seq=r.seq + 20_000)
        for r in readings([device], metrics, hours=6 * 24, start=start, step_min=60)
    ]
    insert_readings(conn, dialect, backlog)  # delivered when it comes back
    run_maintenance(conn, now=now)
    first_day = start.replace(hour=0)
    daily = rollup(conn, "daily", first_day, now, device_ids=[device])
    assert {b.bucket.date() for b in daily} == {r.time.date() for r in backlog}
    assert_same_buckets(
        daily, raw_buckets(conn, dialect, timedelta(days=1), first_day, now, device_ids=[device])
    )
