"""The maintenance pass and service on plain PostgreSQL: late backlogs reach the rollups,
a failed pass is survived, and ``fleetcare db maintain --continuous`` runs pass after pass."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from typer.testing import CliRunner

from backend.storage.maintenance import (
    REFRESH_LOOKBACK,
    Maintainer,
    MaintenanceReport,
    refresh_lookback_for,
    run_maintenance,
)
from backend.storage.migrator import apply_migrations, dialect_of
from backend.storage.rollup_queries import raw_buckets, rollup
from backend.storage.telemetry import insert_readings
from fleetcare.cli.app import build_app
from tests.storage.sample_data import assert_same_buckets, readings, register_fleet

pytestmark = pytest.mark.services

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


@pytest.fixture
def conn(fresh_database_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    apply_migrations(fresh_database_url, dialect="postgres")
    with psycopg.connect(fresh_database_url, autocommit=True) as connection:
        yield connection


def test_the_lookback_follows_what_ingest_accepts() -> None:
    assert refresh_lookback_for(30 * 86_400) == REFRESH_LOOKBACK == timedelta(days=31)
    assert refresh_lookback_for(90 * 86_400) == timedelta(days=91)


@pytest.mark.parametrize("outage_days", [6, 20])
def test_a_backlog_after_a_long_outage_reaches_the_rollups(
    conn: psycopg.Connection[tuple[object, ...]], outage_days: int
) -> None:
    dialect = dialect_of(conn)
    devices, metrics = register_fleet(conn, devices=2)
    start = NOW - timedelta(days=outage_days)
    run_maintenance(conn, now=start)  # the last pass before the devices went quiet
    backlog = readings(devices, metrics, hours=outage_days * 24, start=start, step_min=30)
    insert_readings(conn, dialect, backlog)  # delivered when they come back

    report = run_maintenance(conn, now=NOW)

    assert report.refreshed_from <= start
    end = NOW + timedelta(days=1)
    daily = rollup(conn, "daily", start - timedelta(days=1), end)
    assert {b.bucket.date() for b in daily} == {r.time.date() for r in backlog}
    assert_same_buckets(
        daily, raw_buckets(conn, dialect, timedelta(days=1), start - timedelta(days=1), end)
    )
    hourly = rollup(conn, "hourly", start, end)
    assert_same_buckets(hourly, raw_buckets(conn, dialect, timedelta(hours=1), start, end))
    pending = conn.execute("SELECT count(*) FROM rollup_invalidations").fetchone()
    assert pending == (0,)


def test_a_pass_refreshes_only_as_far_back_as_asked(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    dialect = dialect_of(conn)
    devices, metrics = register_fleet(conn, devices=1)
    start = NOW - timedelta(days=6)
    insert_readings(conn, dialect, readings(devices, metrics, hours=24, start=start))
    run_maintenance(conn, now=NOW, refresh_lookback=timedelta(days=3))
    assert rollup(conn, "hourly", start, NOW) == []  # kept in the log for a wider pass
    run_maintenance(conn, now=NOW, refresh_lookback=timedelta(days=7))
    assert len({b.bucket for b in rollup(conn, "hourly", start, NOW)}) == 24


def test_a_failed_pass_is_counted_and_the_next_one_runs(fresh_database_url: str) -> None:
    apply_migrations(fresh_database_url, dialect="postgres")
    unreachable = Maintainer(
        "postgresql://nobody@127.0.0.1:1/none", REFRESH_LOOKBACK, connect_timeout_s=1
    )
    stop = threading.Event()
    passes: list[MaintenanceReport] = []
    stop_after_two = threading.Timer(2.5, stop.set)
    stop_after_two.start()
    unreachable.run(1.0, stop, passes.append)
    assert unreachable.passes == 0 and unreachable.failures >= 2 and passes == []

    reachable = Maintainer(fresh_database_url, REFRESH_LOOKBACK)
    stop.clear()
    threading.Timer(1.5, stop.set).start()
    reachable.run(0.5, stop, passes.append)
    assert reachable.failures == 0 and reachable.passes == len(passes) >= 2
    assert all(p.dialect == "postgres" for p in passes)


def test_the_maintain_command_runs_once_or_every_interval(
    fresh_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply_migrations(fresh_database_url, dialect="postgres")
    monkeypatch.setenv("FLEETCARE_DATABASE_URL", fresh_database_url)
    monkeypatch.setenv("FLEETCARE_INGEST_MAX_PAST_S", str(10 * 86_400))
    runner, app = CliRunner(), build_app()
    once = runner.invoke(app, ["db", "maintain"])
    assert once.exit_code == 0, once.output
    assert "dialect postgres:" in once.output
    refreshed_from = datetime.strptime(
        once.output.split("rollups refreshed for ")[1][:16], "%Y-%m-%d %H:%M"
    ).replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - refreshed_from - timedelta(days=11)) < timedelta(minutes=2)

    looped = runner.invoke(
        app, ["db", "maintain", "--continuous", "--interval", "1", "--duration", "2.5"]
    )
    assert looped.exit_code == 0, looped.output
    assert "3 pass(es), 0 failed" in looped.output or "2 pass(es), 0 failed" in looped.output
