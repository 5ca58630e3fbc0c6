"""A simulated fleet's history, written through ingest's writer before a live span."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from backend.ingest.demo_fleet import LiveSimulation, SimFleetPlan, register_sim_fleet
from backend.ingest.history_load import HistoryLoadError, load_history
from firmware_sim.history import DeviceDay
from tests.ingest.helpers import dead_letters

pytestmark = pytest.mark.services

_PLAN = SimFleetPlan(devices=6, accounts=2, seed=3, speed=600, interval_s=1800, history_days=3)


@pytest.fixture
def simulation(ingest_db: str, root: str) -> Iterator[LiveSimulation]:
    register_sim_fleet(ingest_db, _PLAN)
    sim = LiveSimulation(_PLAN, "mqtt://127.0.0.1:1", root, span_s=86_400.0)
    yield sim
    sim.cleanup()


def _rows(database_url: str, devices: list[str]) -> list[tuple[str, datetime, list[float]]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT d.external_id, t.time, t.vals FROM telemetry t "
            "JOIN devices d ON d.id = t.device_id WHERE d.external_id = ANY(%s)",
            (devices,),
        ).fetchall()
    return [(str(d), t, list(v)) for d, t, v in rows]


def test_the_history_before_the_span_is_stored_and_rolled_up(
    ingest_db: str, root: str, simulation: LiveSimulation
) -> None:
    days = list(simulation.history())
    expected = sum(len(d.readings) for d in days)
    seen: list[int] = []
    load = load_history(
        ingest_db,
        root,
        iter(days),
        oldest=simulation.span_start - timedelta(days=4),
        progress=seen.append,
    )
    devices = sorted({d.device_id for d in days})
    assert len(devices) == 6 and load.devices == 6
    rows = _rows(ingest_db, devices)
    # Three whole days and the part of the span's day before its first reading, every
    # device, and nothing from the span itself.
    start = simulation.span_start
    midnight = datetime(start.year, start.month, start.day, tzinfo=UTC)
    steps = 3 * 48 + int((start - midnight).total_seconds() // 1800)
    assert load.readings == expected == len(rows) == 6 * steps
    assert seen and seen[-1] == load.readings
    assert max(t for _, t, _ in rows) == start - timedelta(seconds=1800) == load.last
    assert min(t for _, t, _ in rows) == midnight - timedelta(days=3) == load.first
    assert dead_letters(ingest_db, root) == []
    # The daily rollup the scorer reads holds each day's mean of what the simulator made.
    day0 = days[0]
    device = day0.device_id
    name = next(iter(day0.readings[0][1]))
    values = [m[name] for _, m in day0.readings if m[name] is not None]
    with psycopg.connect(ingest_db) as conn:
        row = conn.execute(
            "SELECT r.n, r.total / r.n FROM telemetry_daily r "
            "JOIN devices d ON d.id = r.device_id "
            "JOIN device_model_metrics c ON c.model_id = d.model_id AND c.position = r.position "
            "JOIN metrics m ON m.id = c.metric_id "
            "WHERE d.external_id = %s AND m.name = %s AND r.bucket = %s",
            (device, name, midnight - timedelta(days=3)),
        ).fetchone()
    assert row is not None
    assert row[0] == len(values) and row[1] == pytest.approx(sum(values) / len(values))


def test_a_device_that_is_not_registered_is_refused_and_the_rest_is_stored(
    ingest_db: str, root: str, simulation: LiveSimulation
) -> None:
    days = list(itertools.islice(simulation.history(), 4))
    stranger = DeviceDay("cp-999999", days[0].readings)
    with pytest.raises(HistoryLoadError, match="1 history message"):
        load_history(ingest_db, root, [*days, stranger], oldest=days[0].readings[0][0])
    stored = _rows(ingest_db, sorted({d.device_id for d in days}))
    assert len(stored) == sum(len(d.readings) for d in days)
    assert [topic.split("/")[-2] for _, topic, _ in dead_letters(ingest_db, root)] == ["cp-999999"]


def test_registering_the_fleet_again_forgets_its_rows_and_says_so(
    ingest_db: str, root: str, simulation: LiveSimulation
) -> None:
    days = list(simulation.history())
    load_history(ingest_db, root, iter(days), oldest=simulation.span_start - timedelta(days=4))
    devices = sorted({d.device_id for d in days})
    assert len(_rows(ingest_db, devices)) > 0
    said: list[str] = []
    register_sim_fleet(ingest_db, _PLAN, progress=said.append)
    assert said[0] == "forgetting what earlier runs stored for 6 of these devices"
    assert said[1].startswith("forgotten in ") and said[1].endswith(" s")
    assert _rows(ingest_db, devices) == []


def test_forgetting_empties_what_only_this_fleet_used_and_keeps_other_devices_rows(
    fresh_database_url: str, root: str
) -> None:
    from backend.storage.catalogue import MetricSpec, ensure_device, ensure_device_model
    from backend.storage.migrator import apply_migrations

    apply_migrations(fresh_database_url)
    register_sim_fleet(fresh_database_url, _PLAN)
    simulation = LiveSimulation(_PLAN, "mqtt://127.0.0.1:1", root, span_s=86_400.0)
    try:
        days = list(simulation.history())
        load_history(fresh_database_url, root, iter(days), oldest=simulation.history_start)
    finally:
        simulation.cleanup()
    with psycopg.connect(fresh_database_url) as conn:
        stranger = ensure_device(
            conn, "other-1", ensure_device_model(conn, "m", "pump", [MetricSpec("x")])
        )
        conn.execute(
            "INSERT INTO device_events (time, device_id, kind, severity, message) "
            "VALUES (now(), %s, 'online', 'info', 'not of the fleet')",
            (stranger,),
        )
        conn.commit()
    counts = "SELECT (SELECT count(*) FROM telemetry), (SELECT count(*) FROM telemetry_hourly)"
    with psycopg.connect(fresh_database_url) as conn:
        before = conn.execute(counts).fetchone()
    assert before is not None and before[0] > 0 and before[1] > 0
    register_sim_fleet(fresh_database_url, _PLAN)  # forgets the first registration's rows
    with psycopg.connect(fresh_database_url) as conn:
        assert conn.execute(counts).fetchone() == (0, 0)
        kept = conn.execute(
            "SELECT message FROM device_events WHERE device_id = %s", (stranger,)
        ).fetchall()
    assert kept == [("not of the fleet",)]
