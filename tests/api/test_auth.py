"""API keys: required, stored hashed, revocable; roles answer 403; one error body."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.api.fleet import Fleet

pytestmark = pytest.mark.services


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return dict(body["error"])


def test_missing_and_malformed_keys_answer_401(client: TestClient) -> None:
    _error(client.get("/devices"), 401, "unauthorized")
    _error(client.get("/devices", headers={"Authorization": "Bearer nope"}), 401, "unauthorized")
    _error(client.get("/devices", headers={"X-API-Key": "fc_zz_short"}), 401, "unauthorized")


def test_wrong_secret_with_a_real_prefix_answers_401(client: TestClient, fleet: Fleet) -> None:
    real = fleet.keys["admin"]
    forged = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    _error(client.get("/me", headers={"Authorization": f"Bearer {forged}"}), 401, "unauthorized")


def test_bearer_and_x_api_key_identify_the_user(client: TestClient, fleet: Fleet) -> None:
    by_bearer = client.get("/me", headers=fleet.headers("field_north")).json()
    by_header = client.get("/me", headers={"X-API-Key": fleet.keys["field_north"]}).json()
    assert by_bearer == by_header
    assert by_bearer["role"] == "field" and by_bearer["region"] == "north"
    assert by_bearer["user_id"] == fleet.user_ids["field_north"]


def test_keys_are_stored_hashed(api_database_url: str, fleet: Fleet) -> None:
    with psycopg.connect(api_database_url) as conn:
        rows = conn.execute("SELECT prefix, key_hash FROM api_keys").fetchall()
    stored = " ".join(f"{prefix} {key_hash}" for prefix, key_hash in rows)
    for key in fleet.keys.values():
        secret = key.split("_", 2)[2]
        assert secret not in stored
        assert key.split("_")[1] in stored


def test_role_without_permission_answers_403(client: TestClient, fleet: Fleet) -> None:
    error = _error(client.get("/users", headers=fleet.headers("viewer")), 403, "forbidden")
    assert error["details"]["allowed_roles"] == ["admin"]
    _error(client.get("/devices", headers=fleet.headers("provisioner")), 403, "forbidden")
    _error(
        client.post(
            "/provisioning/devices",
            headers=fleet.headers("csm_anna"),
            json={"external_id": "x-1", "model": fleet.model_name},
        ),
        403,
        "forbidden",
    )


def test_issued_key_works_once_shown_and_stops_when_revoked(
    client: TestClient, fleet: Fleet
) -> None:
    admin = fleet.headers("admin")
    user_id = fleet.user_ids["viewer"]
    issued = client.post(f"/users/{user_id}/keys", headers=admin, json={"label": "ci"})
    assert issued.status_code == 201, issued.text
    key = issued.json()["key"]
    assert client.get("/me", headers={"X-API-Key": key}).status_code == 200
    listed = client.get(f"/users/{user_id}/keys", headers=admin).json()
    assert all("key" not in row and "key_hash" not in row for row in listed)
    assert issued.json()["id"] in [row["id"] for row in listed]
    revoked = client.delete(f"/users/{user_id}/keys/{issued.json()['id']}", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    _error(client.get("/me", headers={"X-API-Key": key}), 401, "unauthorized")
    assert client.get("/me", headers=fleet.headers("viewer")).status_code == 200


def test_disabled_user_is_refused(client: TestClient, fleet: Fleet) -> None:
    admin = fleet.headers("admin")
    created = client.post("/users", headers=admin, json={"name": "temp", "role": "viewer"})
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    key = client.post(f"/users/{user_id}/keys", headers=admin, json={}).json()["key"]
    assert client.get("/devices", headers={"X-API-Key": key}).status_code == 200
    assert client.post(f"/users/{user_id}/disable", headers=admin).status_code == 200
    _error(client.get("/devices", headers={"X-API-Key": key}), 401, "unauthorized")


def test_duplicate_email_is_a_conflict(client: TestClient, fleet: Fleet) -> None:
    body = {"name": "Anna again", "role": "csm", "email": "anna@example.com"}
    _error(client.post("/users", headers=fleet.headers("admin"), json=body), 409, "conflict")


def test_validation_errors_use_the_common_body(client: TestClient, fleet: Fleet) -> None:
    error = _error(
        client.get("/devices?limit=0", headers=fleet.headers("admin")), 422, "invalid_request"
    )
    assert error["details"]["errors"][0]["loc"] == ["query", "limit"]
    _error(client.get("/devices/abc", headers=fleet.headers("admin")), 422, "invalid_request")
    _error(client.get("/nowhere", headers=fleet.headers("admin")), 404, "not_found")
