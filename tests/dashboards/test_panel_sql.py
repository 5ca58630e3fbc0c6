"""Every SQL panel and variable, expanded as Grafana expands it, runs on a simulated fleet in
plain PostgreSQL and in a real TimescaleDB and returns rows with the expected columns."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
import pytest
from psycopg import sql

from backend.storage.connect import connect
from backend.storage.migrator import apply_migrations, dialect_of
from dashboards.catalog import all_dashboards
from dashboards.macros import QueryContext, TemplateValue, expand
from dashboards.model import Panel, SqlTarget
from dashboards.sample_fleet import SampleFleet, load_sample_fleet, start_for
from firmware_sim.config import SimConfig
from tests.fixtures.fix_timescale import disable_prepared_statements

pytestmark = [pytest.mark.services, pytest.mark.slow]

Conn = psycopg.Connection[tuple[object, ...]]
DAYS = 2
CONFIG = SimConfig(
    seed=11,
    devices=6,
    accounts=3,
    days=DAYS,
    interval_s=600,
    start=start_for(DAYS),
    wear_acceleration=40.0,
)


@dataclass
class Loaded:
    conn: Conn
    fleet: SampleFleet
    timescaledb: bool


def _load(conn: Conn) -> Loaded:
    dialect = dialect_of(conn)
    fleet = load_sample_fleet(conn, dialect, CONFIG)
    return Loaded(conn, fleet, dialect.name == "timescaledb")


@pytest.fixture(scope="module")
def postgres_fleet(pg_server_url: str) -> Iterator[Loaded]:
    dbname = f"fleetcare_dash_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    url = psycopg.conninfo.make_conninfo(pg_server_url, dbname=dbname)
    try:
        assert apply_migrations(url, dialect="postgres").dialect == "postgres"
        with connect(url, autocommit=True) as conn:
            yield _load(conn)
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )


@pytest.fixture(scope="module")
def timescale_fleet(timescale_server_url: str) -> Iterator[Loaded]:
    assert apply_migrations(timescale_server_url).dialect == "timescaledb"
    with connect(timescale_server_url, autocommit=True) as conn:
        disable_prepared_statements(conn)
        yield _load(conn)


@pytest.fixture(params=["postgres", pytest.param("timescaledb", marks=pytest.mark.timescale)])
def loaded(request: pytest.FixtureRequest) -> Loaded:
    if request.param == "timescaledb":
        return request.getfixturevalue("timescale_fleet")  # type: ignore[no-any-return]
    return request.getfixturevalue("postgres_fleet")  # type: ignore[no-any-return]


def _scalar(conn: Conn, query: str) -> object:
    row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def _variables(loaded: Loaded) -> dict[str, TemplateValue]:
    """Values a user would pick: the device with the most events, its account, all regions."""
    conn = loaded.conn
    device = _scalar(
        conn,
        "SELECT d.id FROM devices d LEFT JOIN tickets t ON t.device_id = d.id "
        "LEFT JOIN device_events e ON e.device_id = d.id "
        "GROUP BY d.id ORDER BY count(DISTINCT t.id) DESC, count(e.*) DESC, d.id LIMIT 1",
    )
    account = _scalar(conn, f"SELECT account_id FROM devices WHERE id = {device}")
    metrics = [
        str(name)
        for (name,) in conn.execute(
            "SELECT m.name FROM devices d JOIN device_model_metrics dm ON dm.model_id = "
            f"d.model_id JOIN metrics m ON m.id = dm.metric_id WHERE d.id = {device} "
            "ORDER BY dm.position LIMIT 3"
        )
    ]
    regions = [str(r) for (r,) in conn.execute("SELECT DISTINCT region FROM sites ORDER BY 1")]
    return {
        "device": TemplateValue.single(str(device)),
        "account": TemplateValue.single(str(account)),
        "metric": TemplateValue.many(metrics, include_all=True),
        "region": TemplateValue.many(regions, include_all=True),
    }


def _ranges(fleet: SampleFleet) -> dict[str, tuple[datetime, datetime]]:
    """A range for each branch of the telemetry panels: raw, hourly rollup, daily rollup."""
    end = fleet.end + timedelta(hours=1)
    return {
        "raw": (fleet.end - timedelta(minutes=50), fleet.end),
        "hourly": (fleet.start, end),
        "daily": (fleet.end - timedelta(days=40), end),
    }


def _sql_targets() -> list[tuple[str, Panel, SqlTarget]]:
    return [
        (dashboard.uid, panel, target)
        for dashboard in all_dashboards()
        for panel in dashboard.panels
        for target in panel.targets
        if isinstance(target, SqlTarget)
    ]


def _run(conn: Conn, query: str) -> tuple[tuple[str, ...], list[tuple[object, ...]]]:
    cur = conn.execute(query)
    assert cur.description is not None
    return tuple(column.name for column in cur.description), cur.fetchall()


def test_every_sql_panel_returns_rows_with_its_columns(loaded: Loaded) -> None:
    variables = _variables(loaded)
    empty: set[str] = set()
    seen: set[str] = set()
    for name, (start, end) in _ranges(loaded.fleet).items():
        for uid, panel, target in _sql_targets():
            context = QueryContext(
                start, end, variables, min_interval=panel.min_interval,
                timescaledb=loaded.timescaledb,
            )  # fmt: skip
            key = f"{uid} / {panel.title} / {target.columns}"
            try:
                columns, rows = _run(loaded.conn, expand(target.sql, context))
            except psycopg.Error as exc:
                pytest.fail(f"{key} on the {name} range: {exc}")
            assert columns == target.columns, key
            (seen if rows else empty).add(key)
            if target.format == "time_series":
                assert columns[0] == "time", key
    assert seen >= {f"{u} / {p.title} / {t.columns}" for u, p, t in _sql_targets()}, (
        f"panels with no rows on any range: {sorted(empty - seen)}"
    )


def test_every_variable_query_returns_values(loaded: Loaded) -> None:
    variables = _variables(loaded)
    start, end = _ranges(loaded.fleet)["hourly"]
    for dashboard in all_dashboards():
        for variable in dashboard.variables:
            if not hasattr(variable, "sql"):
                continue
            context = QueryContext(start, end, variables, timescaledb=loaded.timescaledb)
            columns, rows = _run(loaded.conn, expand(variable.sql, context))
            assert rows, f"{dashboard.uid}: variable {variable.name} has no options"
            assert columns[0] == "__value"


def test_readings_stored_adds_up_to_the_telemetry_on_every_branch(loaded: Loaded) -> None:
    """Raw rows, the hourly and the daily rollup give the same number of readings stored."""
    panel = next(
        p for d in all_dashboards() for p in d.panels if p.title == "Readings stored (database)"
    )
    target = panel.targets[0]
    assert isinstance(target, SqlTarget)
    ranges = _ranges(loaded.fleet)
    ranges["hourly"] = (loaded.fleet.end - timedelta(hours=36), loaded.fleet.end)
    for name, (start, end) in ranges.items():
        context = QueryContext(start, end, timescaledb=loaded.timescaledb)
        _columns, rows = _run(loaded.conn, expand(target.sql, context))
        interval_ms = int(expand("$__interval_ms", context))
        width_s = {"raw": 0, "hourly": 3600, "daily": 86400}[name]
        total = sum(float(str(rate)) * max(interval_ms / 1000, width_s) for _t, rate in rows)
        window = (
            "time BETWEEN %s AND %s"
            if name == "raw"
            else "time >= date_trunc('day', %s::timestamptz) AND time <= %s"
        )
        if name == "hourly":
            window = "time >= date_trunc('hour', %s::timestamptz) AND time <= %s"
        row = loaded.conn.execute(
            f"SELECT count(vals[1]) FROM telemetry WHERE {window}",
            (start, end),
        ).fetchone()
        assert row is not None and row[0], name
        assert total == pytest.approx(float(str(row[0])), rel=1e-9), name


def test_sensor_history_from_rollups_matches_raw_averages(loaded: Loaded) -> None:
    """The hourly branch of the sensor panel gives the hour's mean of the raw readings."""
    panel = next(p for d in all_dashboards() for p in d.panels if p.title.startswith("Sensor"))
    target = panel.targets[0]
    assert isinstance(target, SqlTarget)
    variables = _variables(loaded)
    variables["metric"] = TemplateValue.many([variables["metric"].values[0]])
    start, end = _ranges(loaded.fleet)["hourly"]
    context = QueryContext(
        start, end, variables, min_interval="1h", timescaledb=loaded.timescaledb,
        max_data_points=10_000,
    )  # fmt: skip
    _columns, rows = _run(loaded.conn, expand(target.sql, context))
    assert len(rows) >= 24
    device = variables["device"].values[0]
    raw: dict[object, object] = {
        row[0]: row[1]
        for row in loaded.conn.execute(
            "SELECT floor(extract(epoch FROM t.time) / 3600) * 3600, avg(t.vals[dm.position]) "
            "FROM telemetry t JOIN devices d ON d.id = t.device_id "
            "JOIN device_model_metrics dm ON dm.model_id = d.model_id "
            "JOIN metrics m ON m.id = dm.metric_id "
            f"WHERE t.device_id = {device} AND m.name = %s GROUP BY 1",
            (variables["metric"].values[0],),
        ).fetchall()
    }
    for bucket, _metric, value in rows:
        epoch = bucket.timestamp() if isinstance(bucket, datetime) else bucket
        key = next(k for k in raw if float(str(k)) == float(str(epoch)))
        assert float(str(value)) == pytest.approx(float(str(raw[key])), rel=1e-9)
