"""The accounts routes: scoping, the 360 view, health history, upsert, export and erasure."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from backend.api.app import create_app
from backend.api.auth import create_api_key, create_user
from backend.customers.health_job import recompute
from backend.customers.health_weights import load_weights
from backend.settings import BackendSettings

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def keys(loaded_database_url: str) -> dict[str, Any]:
    with psycopg.connect(loaded_database_url) as conn:
        admin = create_user(conn, "Ada Admin", "admin")
        csm = create_user(conn, "Carl Csm", "csm")
        viewer = create_user(conn, "Vera Viewer", "viewer")
        owned = conn.execute("SELECT min(id) FROM accounts").fetchone()[0]
        conn.execute("UPDATE accounts SET csm_user_id = %s WHERE id = %s", (csm, owned))
        recompute(conn, load_weights(), at=datetime(2025, 10, 1, tzinfo=UTC), account_ids=[owned])
        out = {
            "admin": create_api_key(conn, admin),
            "csm": create_api_key(conn, csm),
            "viewer": create_api_key(conn, viewer),
            "owned": owned,
        }
        conn.commit()
    return out


@pytest.fixture(scope="module")
def client(loaded_database_url: str) -> Iterator[TestClient]:
    pool: ConnectionPool[Any] = ConnectionPool(
        loaded_database_url, min_size=1, max_size=2, open=True
    )
    settings = BackendSettings(database_url=loaded_database_url)
    try:
        with TestClient(create_app(settings, pool=pool), raise_server_exceptions=False) as test:
            yield test
    finally:
        pool.close(timeout=1)


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_scoping_and_customer_360(client: TestClient, keys: dict[str, Any]) -> None:
    owned = keys["owned"]
    page = client.get("/accounts?limit=20", headers=_auth(keys["admin"])).json()
    assert len(page["items"]) == 20 and page["next_cursor"]
    mine = client.get("/accounts", headers=_auth(keys["csm"])).json()
    assert [a["id"] for a in mine["items"]] == [owned]
    assert mine["items"][0]["health_score"] is not None
    assert client.get(f"/accounts/{owned + 1}", headers=_auth(keys["csm"])).status_code == 404
    view = client.get(f"/accounts/{owned}", headers=_auth(keys["csm"]))
    assert view.status_code == 200, view.text
    body = view.json()
    assert body["account"]["id"] == owned and body["devices"] and body["usage_weeks"]
    assert {s["source"] for s in body["sources"]} >= {"crm", "erp"}
    health = client.get(f"/accounts/{owned}/health", headers=_auth(keys["csm"])).json()
    assert health["items"][0]["inputs"]["devices"] >= 1
    assert "measures" in health["items"][0]["components"]
    assert client.get("/accounts").status_code == 401


def test_upsert_export_and_erase_are_admin_only(client: TestClient, keys: dict[str, Any]) -> None:
    record = {"crm_id": "API-1", "account_name": "Quillon Dynamics", "website": "quillon.example"}
    denied = client.put(
        "/accounts/records/crm", json={"record": record}, headers=_auth(keys["csm"])
    )
    assert denied.status_code == 403
    bad = client.put(
        "/accounts/records/crm", json={"record": {"crm_id": "API-2"}}, headers=_auth(keys["admin"])
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
    made = client.put(
        "/accounts/records/crm", json={"record": record}, headers=_auth(keys["admin"])
    )
    assert made.status_code == 200, made.text
    account = made.json()["account_id"]
    assert (
        client.get(f"/accounts/{account}/export", headers=_auth(keys["viewer"])).status_code == 403
    )
    exported = client.get(f"/accounts/{account}/export", headers=_auth(keys["admin"])).json()
    assert exported["account"]["name"] == "Quillon Dynamics"
    erased = client.post(f"/accounts/{account}/erase", headers=_auth(keys["admin"]))
    assert erased.status_code == 200 and erased.json()["source_records"] == 1
    again = client.post(f"/accounts/{account}/erase", headers=_auth(keys["admin"]))
    assert again.status_code == 409
    view = client.get(f"/accounts/{account}", headers=_auth(keys["admin"])).json()
    assert view["account"]["status"] == "erased" and "Quillon" not in str(view)
