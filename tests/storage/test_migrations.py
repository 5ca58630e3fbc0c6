"""Migrations on plain PostgreSQL: idempotent, recorded, concurrent-safe, drift detected."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from backend.storage.dialect import choose_dialect
from backend.storage.errors import DialectError, MigrationDriftError
from backend.storage.migrator import (
    apply_migrations,
    load_migrations,
    migration_status,
)
from fleetcare.errors import ServiceUnavailableError

#: Every migration in the package, in order (the same list for both dialects).
ALL_MIGRATIONS = [m.label for m in load_migrations("postgres")]

pytestmark = pytest.mark.services

EXPECTED_TABLES = {
    "users",
    "api_keys",
    "accounts",
    "source_records",
    "account_identities",
    "contracts",
    "orders",
    "account_outcomes",
    "sites",
    "metrics",
    "device_models",
    "device_model_metrics",
    "devices",
    "device_twins",
    "telemetry",
    "usage_records",
    "device_events",
    "device_state_reports",
    "predictions",
    "health_scores",
    "account_segments",
    "tickets",
    "ticket_events",
    "alerts",
    "service_needs",
    "incidents",
    "care_rules",
    "webhooks",
    "notification_outbox",
    "dead_letters",
    "model_versions",
    "audit_log",
    "telemetry_hourly",
    "telemetry_daily",
    "data_quality_snapshots",
}


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
            "AND relkind IN ('r', 'p', 'v', 'm') AND NOT relispartition"
        ).fetchall()
    return {str(row[0]) for row in rows}


def test_first_run_applies_everything_and_second_run_nothing(fresh_database_url: str) -> None:
    first = apply_migrations(fresh_database_url)
    assert first.dialect == "postgres"
    assert first.applied == ALL_MIGRATIONS
    assert first.already_applied == 0
    assert _tables(fresh_database_url) >= EXPECTED_TABLES

    second = apply_migrations(fresh_database_url)
    assert second.applied == []
    assert second.already_applied == len(ALL_MIGRATIONS)

    status = migration_status(fresh_database_url)
    assert status.dialect == "postgres"
    assert [f"{m.version:04d}_{m.name}" for m in status.applied] == ALL_MIGRATIONS
    assert status.pending == []


def test_status_before_migrating_lists_everything_pending(fresh_database_url: str) -> None:
    status = migration_status(fresh_database_url)
    assert status.dialect is None
    assert status.applied == []
    assert status.pending == ALL_MIGRATIONS


def test_concurrent_migrators_apply_each_migration_once(fresh_database_url: str) -> None:
    results: list[object] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        try:
            results.append(apply_migrations(fresh_database_url))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    applied = [name for run in results for name in run.applied]  # type: ignore[attr-defined]
    assert sorted(applied) == ALL_MIGRATIONS
    with psycopg.connect(fresh_database_url) as conn:
        assert conn.execute("SELECT count(*) FROM fleetcare_migrations").fetchone() == (
            len(ALL_MIGRATIONS),
        )


def test_edited_migration_is_refused(fresh_database_url: str) -> None:
    apply_migrations(fresh_database_url)
    with psycopg.connect(fresh_database_url) as conn:
        conn.execute("UPDATE fleetcare_migrations SET checksum = 'x' WHERE version = 1")
    with pytest.raises(MigrationDriftError, match="0001_core changed after it was applied"):
        apply_migrations(fresh_database_url)


def test_timescaledb_requested_without_extension_is_a_clear_error(
    fresh_database_url: str,
) -> None:
    with psycopg.connect(fresh_database_url) as conn:
        if choose_dialect(conn) == "timescaledb":
            pytest.skip("this server has TimescaleDB")
    with pytest.raises(DialectError, match="extension is not available"):
        apply_migrations(fresh_database_url, dialect="timescaledb")


def test_switching_dialect_after_migration_is_refused(fresh_database_url: str) -> None:
    apply_migrations(fresh_database_url, dialect="postgres")
    with pytest.raises(DialectError, match="migrated with dialect postgres"):
        apply_migrations(fresh_database_url, dialect="timescaledb")


def test_unreachable_database_names_the_url_without_password() -> None:
    url = "postgresql://app:hunter2@127.0.0.1:1/fleetcare"
    with pytest.raises(ServiceUnavailableError) as info:
        apply_migrations(url, timeout_s=1)
    message = str(info.value)
    assert "127.0.0.1" in message and "port 1" in message
    assert "hunter2" not in message
    assert "tried:" in message and "connect" in message


def test_every_version_has_a_variant_for_each_dialect() -> None:
    timescale = load_migrations("timescaledb")
    postgres = load_migrations("postgres")
    assert [m.version for m in timescale] == [m.version for m in postgres]
    assert timescale[0].sql == postgres[0].sql  # 0001 is shared
    assert "create_hypertable" in timescale[1].sql
    assert "PARTITION BY RANGE" in postgres[1].sql


def test_live_writes_need_no_ddl_after_migration(fresh_database_url: str) -> None:
    """Partitions from yesterday to a month ahead exist, so an insert routes without DDL."""
    apply_migrations(fresh_database_url)
    now = datetime.now(UTC)
    with psycopg.connect(fresh_database_url) as conn:
        for at in (now - timedelta(hours=20), now, now + timedelta(days=30)):
            conn.execute(
                "INSERT INTO telemetry (time, device_id, seq, vals) VALUES (%s, 1, 1, ARRAY[0.5])",
                (at,),
            )
            conn.execute(
                "INSERT INTO device_events (time, device_id, seq, kind) VALUES (%s, 1, 1, 'reboot')",
                (at,),
            )
        conn.rollback()
        with pytest.raises(psycopg.errors.CheckViolation, match="no partition"):
            conn.execute(
                "INSERT INTO telemetry (time, device_id, seq, vals) VALUES (%s, 1, 1, ARRAY[0.5])",
                (now - timedelta(days=900),),
            )
