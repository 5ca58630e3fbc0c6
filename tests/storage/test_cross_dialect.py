"""The same data in TimescaleDB and in plain PostgreSQL gives the same numbers from every
rollup query, including after late data and a second refresh."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest

from backend.storage.connect import connect
from backend.storage.dialect import Dialect
from backend.storage.migrator import apply_migrations, dialect_of
from backend.storage.rollup_queries import Bucket, raw_buckets, rollup
from backend.storage.telemetry import Reading, insert_readings
from tests.fixtures.fix_timescale import disable_prepared_statements
from tests.storage.sample_data import START, assert_same_buckets, readings, register_fleet

pytestmark = [pytest.mark.timescale, pytest.mark.services, pytest.mark.slow]

Conn = psycopg.Connection[tuple[object, ...]]
HOURS = 54
END = START + timedelta(hours=HOURS)


@pytest.fixture(scope="module")
def both(
    timescale_server_url: str, pg_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Conn]]:
    import secrets

    from psycopg import sql

    dbname = f"fleetcare_xdialect_{secrets.token_hex(4)}"
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    pg_url = psycopg.conninfo.make_conninfo(pg_server_url, dbname=dbname)
    try:
        assert apply_migrations(pg_url, dialect="postgres").dialect == "postgres"
        assert apply_migrations(timescale_server_url).dialect == "timescaledb"
        with (
            connect(pg_url, autocommit=True) as pg,
            connect(timescale_server_url, autocommit=True) as ts,
        ):
            disable_prepared_statements(ts)
            yield {"postgres": pg, "timescaledb": ts}
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )


def _load(conn: Conn) -> tuple[Dialect, list[int], dict[str, int]]:
    dialect = dialect_of(conn)
    devices, metrics = register_fleet(conn, devices=5)
    insert_readings(conn, dialect, readings(devices, metrics, hours=HOURS, step_min=5))
    dialect.refresh_rollups(conn, START, END)
    return dialect, devices, metrics


def _queries(conn: Conn, dialect: Dialect) -> dict[str, list[Bucket]]:
    return {
        "hourly": rollup(conn, "hourly", START, END),
        "daily": rollup(conn, "daily", START, END + timedelta(days=1)),
        "raw_15min": raw_buckets(conn, dialect, timedelta(minutes=15), START, END),
        "raw_1day": raw_buckets(conn, dialect, timedelta(days=1), START, END),
        "raw_7min": raw_buckets(
            conn, dialect, timedelta(minutes=7), START, START + timedelta(hours=5)
        ),
    }


def test_every_rollup_query_returns_the_same_numbers(both: dict[str, Conn]) -> None:
    loaded = {name: _load(conn) for name, conn in both.items()}
    assert loaded["postgres"][1] == loaded["timescaledb"][1]  # same device ids
    assert loaded["postgres"][2] == loaded["timescaledb"][2]  # same metric ids
    results = {name: _queries(conn, loaded[name][0]) for name, conn in both.items()}
    for query, pg_rows in results["postgres"].items():
        assert pg_rows, f"{query} returned nothing"
        assert_same_buckets(pg_rows, results["timescaledb"][query])
    # The rollups agree with the raw data they summarise.
    assert_same_buckets(
        results["postgres"]["hourly"],
        raw_buckets(both["postgres"], loaded["postgres"][0], timedelta(hours=1), START, END),
    )

    # Late data then a refresh of the same window: both dialects pick it up identically.
    for name, conn in both.items():
        dialect, devices, _metrics = loaded[name]
        # bearing_temp is position 2 of the pump catalogue.
        late = [Reading(START + timedelta(hours=7, minutes=3), devices[1], 99_999, [None, 140.0])]
        insert_readings(conn, dialect, late)
        dialect.refresh_rollups(conn, START, END)
    after = {name: _queries(conn, loaded[name][0]) for name, conn in both.items()}
    for query, pg_rows in after["postgres"].items():
        assert_same_buckets(pg_rows, after["timescaledb"][query])
    peak = [b for b in after["postgres"]["hourly"] if b.max == 140.0]
    assert len(peak) == 1 and peak[0].bucket == START + timedelta(hours=7)
