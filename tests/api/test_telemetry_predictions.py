"""Bucketed telemetry from rollups and raw rows; predictions latest and history; model versions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from backend.storage.catalogue import model_positions
from backend.storage.migrator import dialect_of
from backend.storage.telemetry import Reading, align_values, insert_readings
from tests.api.fleet import START, Fleet

pytestmark = pytest.mark.services

HOURS = 3
STEP_MIN = 5


@pytest.fixture(scope="module")
def telemetry(api_database_url: str, fleet: Fleet) -> int:
    """Readings every 5 min for 3 h on acme-pump-1: temperature 20 + hour index, vibration i."""
    device_id = fleet.device_ids["acme-pump-1"]
    with psycopg.connect(api_database_url, autocommit=True) as conn:
        model_id = conn.execute("SELECT model_id FROM devices WHERE id = %s", (device_id,))
        row = model_id.fetchone()
        assert row is not None
        positions = model_positions(conn, int(row[0]))  # type: ignore[arg-type]
        readings = []
        for i in range(HOURS * 60 // STEP_MIN):
            at = START + timedelta(minutes=i * STEP_MIN)
            values = {"temperature_c": 20.0 + i // 12, "vibration_rms": float(i)}
            readings.append(Reading(at, device_id, i, align_values(values, positions)))
        dialect = dialect_of(conn)  # type: ignore[arg-type]
        insert_readings(conn, dialect, readings)  # type: ignore[arg-type]
        dialect.refresh_rollups(conn, START, START + timedelta(hours=HOURS))  # type: ignore[arg-type]
    return device_id


def _series(body: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    return next(s["points"] for s in body["series"] if s["metric"] == metric)


def test_hourly_buckets_come_from_the_rollup(
    client: TestClient, fleet: Fleet, telemetry: int
) -> None:
    response = client.get(
        f"/devices/{telemetry}/telemetry",
        params={
            "metric": "temperature_c",
            "from": START.isoformat(),
            "to": (START + timedelta(hours=HOURS)).isoformat(),
            "bucket": "1h",
        },
        headers=fleet.headers("csm_anna"),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["source"] == "rollup_hourly"
    assert [s["metric"] for s in body["series"]] == ["temperature_c"]
    points = _series(body, "temperature_c")
    assert [p["n"] for p in points] == [12, 12, 12]
    assert [p["avg"] for p in points] == [20.0, 21.0, 22.0]
    assert body["series"][0]["unit"] == "degC"


def test_fine_buckets_come_from_raw_telemetry(
    client: TestClient, fleet: Fleet, telemetry: int
) -> None:
    response = client.get(
        f"/devices/{telemetry}/telemetry",
        params={
            "metric": ["vibration_rms"],
            "from": START.isoformat(),
            "to": (START + timedelta(minutes=30)).isoformat(),
            "bucket": "15m",
        },
        headers=fleet.headers("admin"),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["source"] == "raw"
    points = _series(body, "vibration_rms")
    assert [(p["n"], p["min"], p["max"], p["avg"]) for p in points] == [
        (3, 0.0, 2.0, 1.0),
        (3, 3.0, 5.0, 4.0),
    ]


def test_telemetry_refuses_bad_ranges_and_metrics(
    client: TestClient, fleet: Fleet, telemetry: int
) -> None:
    admin = fleet.headers("admin")
    path = f"/devices/{telemetry}/telemetry"
    unknown = client.get(path, params={"metric": "nope"}, headers=admin)
    assert unknown.status_code == 422
    assert unknown.json()["error"]["details"]["available"] == ["temperature_c", "vibration_rms"]
    backwards = {"from": START.isoformat(), "to": (START - timedelta(hours=1)).isoformat()}
    assert client.get(path, params=backwards, headers=admin).status_code == 422
    too_many = {
        "from": START.isoformat(),
        "to": (START + timedelta(days=30)).isoformat(),
        "bucket": "1m",
    }
    assert client.get(path, params=too_many, headers=admin).status_code == 422


def test_latest_and_history_of_predictions(client: TestClient, fleet: Fleet) -> None:
    device_id = fleet.device_ids["acme-pump-0"]
    headers = fleet.headers("field_north")
    latest = client.get(f"/devices/{device_id}/predictions/latest", headers=headers)
    assert latest.status_code == 200, latest.text
    assert latest.json()["predicted_at"].startswith("2026-03-01T02:00")
    assert latest.json()["failure_risk"] == pytest.approx(0.82)
    first = client.get(f"/devices/{device_id}/predictions?limit=2", headers=headers).json()
    assert [p["rul_hours"] for p in first["items"]] == [98.0, 99.0]
    rest = client.get(
        f"/devices/{device_id}/predictions",
        params={"limit": 2, "cursor": first["next_cursor"]},
        headers=headers,
    ).json()
    assert [p["rul_hours"] for p in rest["items"]] == [100.0]
    assert rest["next_cursor"] is None
    none_yet = client.get(
        f"/devices/{fleet.device_ids['acme-pump-2']}/predictions/latest",
        headers=fleet.headers("admin"),
    )
    assert none_yet.status_code == 404


def test_prediction_filters(client: TestClient, fleet: Fleet) -> None:
    risky = client.get("/predictions?min_risk=0.81", headers=fleet.headers("viewer")).json()
    assert sorted(round(p["failure_risk"], 2) for p in risky["items"]) == [0.81, 0.82]


def test_model_versions(client: TestClient, fleet: Fleet) -> None:
    headers = fleet.headers("viewer")
    listed = client.get("/model-versions?status=champion", headers=headers).json()["items"]
    assert [m["id"] for m in listed] == [fleet.model_version_id]
    one = client.get(f"/model-versions/{fleet.model_version_id}", headers=headers).json()
    assert one["manifest"]["window_hours"] == 24
    missing = client.get("/model-versions/999999", headers=headers)
    assert missing.status_code == 404
    assert client.get("/model-versions?status=retired", headers=headers).json()["items"] == []
