"""The care routes: scoping by role, lifecycle over HTTP, rules, webhooks, the report."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from backend.api.app import create_app
from backend.api.auth import create_api_key, create_user
from backend.care.engine import CareEngine
from backend.settings import BackendSettings
from tests.care.conftest import Fleet, add_prediction, care_settings, scalar, seed_fleet

pytestmark = pytest.mark.services


class World:
    def __init__(self, fleet: Fleet, keys: dict[str, str], tickets: dict[str, int]) -> None:
        self.fleet = fleet
        self.keys = keys
        self.tickets = tickets

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


@pytest.fixture
def world(conn: psycopg.Connection[Any], engine: CareEngine) -> World:
    fleet = seed_fleet(conn)
    keys = {}
    for name, role, region, team in (
        ("admin", "admin", None, None),
        ("viewer", "viewer", None, None),
        ("field_north", "field", "north", "north-mech"),
        ("field_south", "field", "south", "south-all"),
        ("provisioner", "provisioner", None, None),
    ):
        user = create_user(conn, name, role, region=region, team=team)
        keys[name] = create_api_key(conn, user)
    keys["csm_north"] = create_api_key(conn, fleet.csm_ids[0])
    keys["csm_south"] = create_api_key(conn, fleet.csm_ids[1])
    conn.commit()
    tickets = {}
    for region, site in zip(("north", "south"), fleet.site_ids, strict=True):
        device = fleet.devices[site][0]
        engine.process_prediction(conn, add_prediction(conn, device, risk=0.95))
        tickets[region] = int(scalar(conn, "SELECT id FROM tickets WHERE device_id = %s", device))
    return World(fleet, keys, tickets)


@pytest.fixture
def client(care_db: str, world: World) -> Iterator[TestClient]:
    with ConnectionPool(care_db, min_size=1, max_size=4, open=True) as pool:
        app = create_app(BackendSettings(database_url=care_db), pool=pool)
        app.state.care_settings = care_settings()
        with TestClient(app, raise_server_exceptions=False) as test_client:
            yield test_client


def test_field_users_see_only_their_region_and_csms_only_their_accounts(
    client: TestClient, world: World
) -> None:
    north, south = world.tickets["north"], world.tickets["south"]
    listed = client.get("/tickets", headers=world.headers("field_north")).json()
    assert [t["id"] for t in listed["items"]] == [north]
    assert client.get(f"/tickets/{north}", headers=world.headers("field_north")).status_code == 200
    outside = client.get(f"/tickets/{south}", headers=world.headers("field_north"))
    assert outside.status_code == 404
    assert outside.json()["error"]["code"] == "not_found"
    # a field user cannot work a ticket outside its region either
    moved = client.post(f"/tickets/{south}/assign", json={}, headers=world.headers("field_north"))
    assert moved.status_code == 404
    # CSMs: their accounts' alerts only; another CSM's alert is 404
    north_alerts = client.get("/alerts", headers=world.headers("csm_north")).json()["items"]
    assert north_alerts and {a["account_id"] for a in north_alerts} == {world.fleet.account_ids[0]}
    south_alert = client.get("/alerts", headers=world.headers("csm_south")).json()["items"]
    for alert in south_alert:
        response = client.get(f"/alerts/{alert['id']}", headers=world.headers("csm_north"))
        assert response.status_code == 404
    # field users have no business with alerts; provisioners none with tickets
    assert client.get("/alerts", headers=world.headers("field_north")).status_code == 403
    assert client.get("/tickets", headers=world.headers("provisioner")).status_code == 403
    assert client.get("/tickets").status_code == 401
    # viewers read everything but change nothing
    assert len(client.get("/tickets", headers=world.headers("viewer")).json()["items"]) == 2
    denied = client.post(
        f"/tickets/{north}/transition",
        json={"to_status": "closed", "note": "x"},
        headers=world.headers("viewer"),
    )
    assert denied.status_code == 403


def test_ticket_lifecycle_over_http_with_a_conflict_for_illegal_moves(
    client: TestClient, world: World, conn: psycopg.Connection[Any]
) -> None:
    north = world.tickets["north"]
    headers = world.headers("field_north")
    taken = client.post(f"/tickets/{north}/assign", json={"note": "on my way"}, headers=headers)
    assert taken.status_code == 200, taken.text
    assert taken.json()["status"] == "assigned" and taken.json()["team"] == "north-mech"
    illegal = client.post(
        f"/tickets/{north}/transition", json={"to_status": "resolved"}, headers=headers
    )
    assert illegal.status_code == 409
    assert illegal.json()["error"]["code"] == "illegal_transition"
    assert illegal.json()["error"]["details"] == {"from": "assigned", "to": "resolved"}
    started = client.post(
        f"/tickets/{north}/transition", json={"to_status": "in_progress"}, headers=headers
    )
    assert started.json()["status"] == "in_progress"
    done = client.post(
        f"/tickets/{north}/outcome",
        json={"outcome": "failure_confirmed", "note": "bearing cage cracked"},
        headers=headers,
    )
    assert done.status_code == 200 and done.json()["outcome"] == "failure_confirmed"
    detail = client.get(f"/tickets/{north}", headers=headers).json()
    assert [e["to_status"] for e in detail["events"]] == [
        "open",
        "assigned",
        "in_progress",
        "resolved",
    ]
    assert detail["events"][1]["actor"].startswith("user:")
    bad = client.post(f"/tickets/{north}/outcome", json={"outcome": "maybe"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
    filtered = client.get(
        "/tickets", params={"status": "resolved"}, headers=world.headers("admin")
    ).json()
    assert [t["id"] for t in filtered["items"]] == [north]
    report = client.get(
        "/care/report",
        params={"since": "2026-05-01T00:00:00Z", "until": "2026-07-01T00:00:00Z"},
        headers=world.headers("admin"),
    )
    assert report.status_code == 200
    assert report.json()["overall"]["failure_confirmed"] == 1


def test_alerts_are_acknowledged_and_resolved_by_their_csm(
    client: TestClient, world: World
) -> None:
    headers = world.headers("csm_north")
    alert = client.get("/alerts", params={"status": "open"}, headers=headers).json()["items"][0]
    ack = client.post(f"/alerts/{alert['id']}/acknowledge", json={}, headers=headers)
    assert ack.status_code == 200 and ack.json()["status"] == "acknowledged"
    again = client.post(f"/alerts/{alert['id']}/acknowledge", json={}, headers=headers)
    assert again.status_code == 409
    done = client.post(
        f"/alerts/{alert['id']}/resolve",
        json={"action": "call", "note": "spoke to ops"},
        headers=headers,
    )
    assert done.json()["status"] == "resolved" and done.json()["action"] == "call"
    other = client.post(
        f"/alerts/{alert['id']}/resolve", json={}, headers=world.headers("csm_south")
    )
    assert other.status_code == 404


def test_rules_and_webhooks_are_admin_managed(client: TestClient, world: World) -> None:
    admin = world.headers("admin")
    rules = client.get("/care/rules", headers=admin).json()
    assert {r["name"] for r in rules} >= {"failure-risk", "health-drop"}
    created = client.post(
        "/care/rules",
        json={"name": "health-drop", "definition": {"kind": "health_drop", "drop_points": 30}},
        headers=admin,
    )
    assert created.status_code == 201 and created.json()["version"] == 2
    invalid = client.post(
        "/care/rules",
        json={"name": "health-drop", "definition": {"kind": "health_drop", "drop_points": 300}},
        headers=admin,
    )
    assert invalid.status_code == 422
    disabled = client.post(
        f"/care/rules/{created.json()['id']}/enabled", json={"enabled": False}, headers=admin
    )
    assert disabled.json()["enabled"] is False
    assert (
        client.post("/care/rules", json={}, headers=world.headers("csm_north")).status_code == 403
    )
    hook = client.post(
        "/webhooks",
        json={"url": "https://hooks.example.com/fleetcare", "events": ["ticket.*"]},
        headers=admin,
    )
    assert hook.status_code == 201 and len(hook.json()["secret"]) >= 32
    listed = client.get("/webhooks", headers=admin).json()
    assert listed[0]["url"] == "https://hooks.example.com/fleetcare" and "secret" not in listed[0]
    bad_event = client.post(
        "/webhooks", json={"url": "https://x.example.com/h", "events": ["rm -rf"]}, headers=admin
    )
    assert bad_event.status_code == 422
    assert client.delete(f"/webhooks/{hook.json()['id']}", headers=admin).status_code == 204
    assert client.delete(f"/webhooks/{hook.json()['id']}", headers=admin).status_code == 404
