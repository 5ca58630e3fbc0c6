"""Devices: keyset pagination, filters, the twin's desired config with optimistic versions."""

from __future__ import annotations

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.api.fleet import Fleet

pytestmark = pytest.mark.services


def test_pages_cover_every_device_once_in_id_order(client: TestClient, fleet: Fleet) -> None:
    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 4}
        if cursor is not None:
            params["cursor"] = cursor
        response = client.get("/devices", params=params, headers=fleet.headers("admin"))
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= 4
        seen += [row["id"] for row in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 2
    assert seen == sorted(fleet.device_ids.values())


def test_invalid_cursor_is_a_422(client: TestClient, fleet: Fleet) -> None:
    response = client.get("/devices?cursor=not-a-cursor", headers=fleet.headers("admin"))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


def test_filters(client: TestClient, fleet: Fleet) -> None:
    admin = fleet.headers("admin")
    acme = fleet.account_ids["acme"]
    by_account = client.get(f"/devices?account_id={acme}", headers=admin).json()["items"]
    assert {d["external_id"] for d in by_account} == {"acme-pump-0", "acme-pump-1", "acme-pump-2"}
    by_prefix = client.get("/devices?external_id_prefix=globex-pump-2", headers=admin).json()
    assert [d["external_id"] for d in by_prefix["items"]] == ["globex-pump-2"]
    assert client.get("/devices?model=nope", headers=admin).json()["items"] == []
    by_model = client.get(f"/devices?model={fleet.model_name}&status=active", headers=admin)
    assert len(by_model.json()["items"]) == 6
    device = by_model.json()["items"][0]
    assert device["model_name"] == fleet.model_name
    assert "credential_hash" not in device


def test_desired_config_versions_and_conflicts(
    client: TestClient, fleet: Fleet, api_database_url: str
) -> None:
    device_id = fleet.device_ids["acme-pump-1"]
    path = f"/devices/{device_id}/twin/desired"
    anna = fleet.headers("csm_anna")
    first = client.put(path, headers=anna, json={"desired": {"sample_interval_s": 10}})
    assert first.status_code == 200, first.text
    assert first.json()["desired"] == {"sample_interval_s": 10}
    assert first.json()["desired_version"] == 1
    stale = client.put(
        path, headers=anna, json={"desired": {"sample_interval_s": 20}, "expected_version": 0}
    )
    assert stale.status_code == 409
    assert stale.json()["error"]["details"] == {"desired_version": 1}
    second = client.put(
        path, headers=anna, json={"desired": {"sample_interval_s": 20}, "expected_version": 1}
    )
    assert second.json()["desired_version"] == 2
    twin = client.get(f"/devices/{device_id}/twin", headers=fleet.headers("viewer")).json()
    assert twin["desired"] == {"sample_interval_s": 20}
    with psycopg.connect(api_database_url) as conn:
        stored = conn.execute(
            "SELECT desired, desired_version FROM device_twins WHERE device_id = %s",
            (device_id,),
        ).fetchone()
        audited = conn.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'twin.desired.set' AND subject_id = %s",
            (str(device_id),),
        ).fetchone()
    assert stored == ({"sample_interval_s": 20}, 2)
    assert audited == (2,)


def test_desired_config_refuses_nul_characters(client: TestClient, fleet: Fleet) -> None:
    device_id = fleet.device_ids["acme-pump-2"]
    response = client.put(
        f"/devices/{device_id}/twin/desired",
        headers=fleet.headers("admin"),
        json={"desired": {"name": "a\u0000b"}},
    )
    assert response.status_code == 422
    twin = client.get(f"/devices/{device_id}/twin", headers=fleet.headers("admin")).json()
    assert twin["desired_version"] == 0


def test_a_single_valued_query_parameter_given_twice_is_refused(
    client: TestClient, fleet: Fleet
) -> None:
    response = client.get(
        "/devices?status=active&status=provisioned", headers=fleet.headers("admin")
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"] == {"repeated": ["status"]}
    device_id = fleet.device_ids["acme-pump-0"]
    both = client.get(
        f"/devices/{device_id}/telemetry?metric=temperature_c&metric=vibration_rms",
        headers=fleet.headers("admin"),
    )
    assert both.status_code == 200, both.text
    assert [s["metric"] for s in both.json()["series"]] == ["temperature_c", "vibration_rms"]
