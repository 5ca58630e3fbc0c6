"""Scoping: a CSM sees only their accounts' devices, a field user only their tickets' devices."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.fleet import Fleet

pytestmark = pytest.mark.services


def _listed_devices(client: TestClient, fleet: Fleet, who: str) -> set[str]:
    response = client.get("/devices?limit=500", headers=fleet.headers(who))
    assert response.status_code == 200, response.text
    return {row["external_id"] for row in response.json()["items"]}


def test_admin_and_viewer_see_every_device(client: TestClient, fleet: Fleet) -> None:
    assert _listed_devices(client, fleet, "admin") == set(fleet.device_ids)
    assert _listed_devices(client, fleet, "viewer") == set(fleet.device_ids)


def test_csm_sees_only_their_accounts_devices(client: TestClient, fleet: Fleet) -> None:
    anna = _listed_devices(client, fleet, "csm_anna")
    assert anna == {d for d in fleet.device_ids if d.startswith("acme-")}
    other = fleet.device_ids["globex-pump-1"]
    for path in (
        f"/devices/{other}",
        f"/devices/{other}/twin",
        f"/devices/{other}/telemetry",
        f"/devices/{other}/predictions",
    ):
        response = client.get(path, headers=fleet.headers("csm_anna"))
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
    own = fleet.device_ids["acme-pump-1"]
    assert client.get(f"/devices/{own}", headers=fleet.headers("csm_anna")).status_code == 200


def test_csm_cannot_filter_their_way_into_another_account(client: TestClient, fleet: Fleet) -> None:
    globex = fleet.account_ids["globex"]
    response = client.get(f"/devices?account_id={globex}", headers=fleet.headers("csm_anna"))
    assert response.status_code == 200
    assert response.json()["items"] == []


def test_field_user_sees_only_devices_with_tickets_in_their_region(
    client: TestClient, fleet: Fleet
) -> None:
    assert _listed_devices(client, fleet, "field_north") == {"acme-pump-0"}
    assert _listed_devices(client, fleet, "field_south") == {"globex-pump-0"}
    south_device = fleet.device_ids["globex-pump-0"]
    response = client.get(f"/devices/{south_device}", headers=fleet.headers("field_north"))
    assert response.status_code == 404


def test_predictions_follow_device_scope(client: TestClient, fleet: Fleet) -> None:
    response = client.get("/predictions?limit=500", headers=fleet.headers("csm_ben"))
    assert response.status_code == 200
    devices = {row["device_id"] for row in response.json()["items"]}
    assert devices == {fleet.device_ids["globex-pump-0"]}
    acme = fleet.device_ids["acme-pump-0"]
    latest = client.get(f"/devices/{acme}/predictions/latest", headers=fleet.headers("csm_ben"))
    assert latest.status_code == 404


def test_twin_write_is_scoped_too(client: TestClient, fleet: Fleet) -> None:
    other = fleet.device_ids["acme-pump-2"]
    response = client.put(
        f"/devices/{other}/twin/desired",
        headers=fleet.headers("csm_ben"),
        json={"desired": {"sample_interval_s": 5}},
    )
    assert response.status_code == 404
    viewer = client.put(
        f"/devices/{other}/twin/desired",
        headers=fleet.headers("viewer"),
        json={"desired": {"sample_interval_s": 5}},
    )
    assert viewer.status_code == 403


def test_field_user_cannot_read_tickets_outside_their_region(
    client: TestClient, fleet: Fleet
) -> None:
    north, south = fleet.ticket_ids["acme-pump-0"], fleet.ticket_ids["globex-pump-0"]
    listed = client.get("/tickets?limit=500", headers=fleet.headers("field_north"))
    assert listed.status_code == 200, listed.text
    assert [t["id"] for t in listed.json()["items"]] == [north]
    own = client.get(f"/tickets/{north}", headers=fleet.headers("field_north"))
    assert own.status_code == 200 and own.json()["region"] == "north"
    other = client.get(f"/tickets/{south}", headers=fleet.headers("field_north"))
    assert other.status_code == 404
    assert other.json()["error"]["code"] == "not_found"
    filtered = client.get("/tickets?region=south", headers=fleet.headers("field_north"))
    assert filtered.json()["items"] == []
    assign = client.post(f"/tickets/{south}/assign", headers=fleet.headers("field_north"), json={})
    assert assign.status_code == 404
    assert client.get(f"/tickets/{south}", headers=fleet.headers("field_south")).status_code == 200


def test_csm_cannot_read_another_csms_tickets(client: TestClient, fleet: Fleet) -> None:
    acme_ticket = fleet.ticket_ids["acme-pump-0"]
    assert (
        client.get(f"/tickets/{acme_ticket}", headers=fleet.headers("csm_ben")).status_code == 404
    )
    assert (
        client.get(f"/tickets/{acme_ticket}", headers=fleet.headers("csm_anna")).status_code == 200
    )


def test_csm_cannot_read_another_csms_account(client: TestClient, fleet: Fleet) -> None:
    acme, globex = fleet.account_ids["acme"], fleet.account_ids["globex"]
    own = client.get(f"/accounts/{acme}", headers=fleet.headers("csm_anna"))
    assert own.status_code == 200, own.text
    other = client.get(f"/accounts/{globex}", headers=fleet.headers("csm_anna"))
    assert other.status_code == 404
    assert other.json()["error"]["code"] == "not_found"
    health = client.get(f"/accounts/{globex}/health", headers=fleet.headers("csm_anna"))
    assert health.status_code == 404
    listed = client.get("/accounts?limit=500", headers=fleet.headers("csm_anna"))
    assert listed.status_code == 200, listed.text
    assert [a["id"] for a in listed.json()["items"]] == [acme]
    assert client.get(f"/accounts/{globex}", headers=fleet.headers("csm_ben")).status_code == 200
