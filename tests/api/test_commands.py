"""Commands through the API: roles, scope, validation, the downlink's wake-up, and the twin's
``sync`` as the downlink service and the device move it along."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from backend.downlink.commands import NOTIFY_CHANNEL
from tests.api.fleet import Fleet

pytestmark = pytest.mark.services


def _post(client: TestClient, fleet: Fleet, who: str, device: str, body: dict[str, Any]) -> Any:
    return client.post(
        f"/devices/{fleet.device_ids[device]}/commands", headers=fleet.headers(who), json=body
    )


def test_a_command_is_queued_with_its_deadline_and_wakes_the_downlink(
    client: TestClient, fleet: Fleet, api_database_url: str
) -> None:
    with psycopg.connect(api_database_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        response = _post(
            client,
            fleet,
            "field_north",
            "acme-pump-0",
            {"name": "self_test", "args": {"depth": 2}, "ttl_s": 120},
        )
        assert response.status_code == 202, response.text
        notes = list(listener.notifies(timeout=5, stop_after=1))
    assert [n.channel for n in notes] == [NOTIFY_CHANNEL]
    command = response.json()
    assert command["id"].startswith("cmd-")
    assert command["status"] == "queued"
    assert command["args"] == {"depth": 2}
    assert command["requested_by"] == f"user:{fleet.user_ids['field_north']}"
    lifetime = _seconds(command["expires_at"]) - _seconds(command["created_at"])
    assert lifetime == pytest.approx(120, abs=1)
    device_id = fleet.device_ids["acme-pump-0"]
    listed = client.get(f"/devices/{device_id}/commands", headers=fleet.headers("viewer"))
    assert [c["id"] for c in listed.json()] == [command["id"]]
    one = client.get(
        f"/devices/{device_id}/commands/{command['id']}", headers=fleet.headers("csm_anna")
    )
    assert one.status_code == 200
    assert one.json() == command
    with psycopg.connect(api_database_url) as conn:
        audited = conn.execute(
            "SELECT detail FROM audit_log WHERE action = 'device.command' AND subject_id = %s",
            (str(device_id),),
        ).fetchall()
    assert [row[0]["command_id"] for row in audited] == [command["id"]]


def _seconds(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp).timestamp()


def test_who_may_send_commands_and_to_which_device(client: TestClient, fleet: Fleet) -> None:
    body = {"name": "self_test"}
    assert _post(client, fleet, "admin", "globex-pump-2", body).status_code == 202
    for who in ("viewer", "csm_anna", "provisioner"):
        assert _post(client, fleet, who, "acme-pump-0", body).status_code == 403, who
    # A field technician commands only the devices of their tickets.
    assert _post(client, fleet, "field_north", "globex-pump-0", body).status_code == 404
    assert _post(client, fleet, "field_south", "globex-pump-0", body).status_code == 202


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"name": "9lives"}, "name"),
        ({"name": "ok", "args": {"blob": "x" * 70_000}}, "64"),
        ({"name": "ok", "args": {"s": "a\u0000b"}}, "NUL"),
        ({"name": "ok", "ttl_s": 0}, "ttl_s"),
        ({"name": "ok", "ttl_s": 8 * 86_400}, "ttl_s"),
        ({"name": "ok", "args": [1, 2]}, "args"),
    ],
)
def test_bad_commands_are_refused_and_nothing_is_queued(
    client: TestClient, fleet: Fleet, api_database_url: str, body: dict[str, Any], fragment: str
) -> None:
    device_id = fleet.device_ids["acme-pump-2"]
    response = _post(client, fleet, "admin", "acme-pump-2", body)
    assert response.status_code == 422, response.text
    assert fragment in json.dumps(response.json())
    with psycopg.connect(api_database_url) as conn:
        count = conn.execute(
            "SELECT count(*) FROM device_commands WHERE device_id = %s", (device_id,)
        ).fetchone()
    assert count == (0,)


def test_an_unknown_command_id_is_404(client: TestClient, fleet: Fleet) -> None:
    device_id = fleet.device_ids["acme-pump-1"]
    response = client.get(
        f"/devices/{device_id}/commands/cmd-nothere", headers=fleet.headers("admin")
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_twin_says_where_the_desired_config_stands(
    client: TestClient, fleet: Fleet, api_database_url: str
) -> None:
    device_id = fleet.device_ids["globex-pump-1"]
    admin = fleet.headers("admin")

    def sync() -> str:
        twin = client.get(f"/devices/{device_id}/twin", headers=admin).json()
        return str(twin["sync"])

    assert sync() == "in_sync"  # nothing desired yet
    put = client.put(
        f"/devices/{device_id}/twin/desired", headers=admin, json={"desired": {"a": 1}}
    )
    assert put.json()["sync"] == "pending"
    with psycopg.connect(api_database_url) as conn:
        conn.execute(
            "UPDATE device_twins SET desired_sent_version = 1 WHERE device_id = %s", (device_id,)
        )
    assert sync() == "delivered"
    with psycopg.connect(api_database_url) as conn:
        conn.execute(
            "UPDATE device_twins SET reported_version = 1, reported_status = 'rejected',"
            " reported_error = 'no such key: a', reported_at = now() WHERE device_id = %s",
            (device_id,),
        )
    assert sync() == "rejected"
    client.put(f"/devices/{device_id}/twin/desired", headers=admin, json={"desired": {"b": 2}})
    assert sync() == "pending"
    with psycopg.connect(api_database_url) as conn:
        conn.execute(
            "UPDATE device_twins SET desired_sent_version = 2, reported_version = 2,"
            " reported_status = 'applied', reported = '{\"b\": 2}' WHERE device_id = %s",
            (device_id,),
        )
    twin = client.get(f"/devices/{device_id}/twin", headers=admin).json()
    assert twin["sync"] == "in_sync"
    assert twin["reported"] == {"b": 2}


def test_the_text_backslash_u0000_is_not_a_nul_character(client: TestClient, fleet: Fleet) -> None:
    body = {"name": "set_label", "args": {"label": "\\u0000 is how JSON writes NUL"}}
    response = _post(client, fleet, "admin", "globex-pump-1", body)
    assert response.status_code == 202, response.text
    assert response.json()["args"] == body["args"]


def _keyed(
    client: TestClient, fleet: Fleet, who: str, device: str, body: dict[str, Any], key: str
) -> Any:
    headers = {**fleet.headers(who), "Idempotency-Key": key}
    return client.post(f"/devices/{fleet.device_ids[device]}/commands", headers=headers, json=body)


def _commands_keyed(url: str, key: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM device_commands WHERE idempotency_key = %s", (key,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_retry_with_its_idempotency_key_queues_nothing_new(
    client: TestClient, fleet: Fleet, api_database_url: str
) -> None:
    body = {"name": "reboot", "args": {"delay_s": 5}, "ttl_s": 300}
    first = _keyed(client, fleet, "admin", "globex-pump-0", body, "retry-7f3a")
    assert first.status_code == 202, first.text
    assert "Idempotent-Replayed" not in first.headers
    again = _keyed(client, fleet, "admin", "globex-pump-0", body, "retry-7f3a")
    assert again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert _commands_keyed(api_database_url, "retry-7f3a") == 1
    # Keys are the caller's own: another user's same key is another command.
    other = _keyed(client, fleet, "field_south", "globex-pump-0", body, "retry-7f3a")
    assert other.status_code == 202
    assert other.json()["id"] != first.json()["id"]
    assert _commands_keyed(api_database_url, "retry-7f3a") == 2


@pytest.mark.parametrize(
    ("device", "body"),
    [
        ("globex-pump-1", {"name": "reboot", "args": {"delay_s": 6}, "ttl_s": 300}),
        ("globex-pump-1", {"name": "self_test", "args": {"delay_s": 5}, "ttl_s": 300}),
        ("globex-pump-1", {"name": "reboot", "args": {"delay_s": 5}, "ttl_s": 301}),
        ("globex-pump-2", {"name": "reboot", "args": {"delay_s": 5}, "ttl_s": 300}),
    ],
)
def test_an_idempotency_key_reused_for_another_command_is_409(
    client: TestClient, fleet: Fleet, api_database_url: str, device: str, body: dict[str, Any]
) -> None:
    key = f"reuse-{device}-{body['name']}-{body['ttl_s']}-{body['args']['delay_s']}"
    original = {"name": "reboot", "args": {"delay_s": 5}, "ttl_s": 300}
    first = _keyed(client, fleet, "admin", "globex-pump-1", original, key)
    assert first.status_code == 202
    response = _keyed(client, fleet, "admin", device, body, key)
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "idempotency_key_reused"
    assert error["details"]["command_id"] == first.json()["id"]
    assert _commands_keyed(api_database_url, key) == 1


@pytest.mark.parametrize("key", ["", "has space", "x" * 129, "naïve"])
def test_a_malformed_idempotency_key_is_422(
    client: TestClient, fleet: Fleet, api_database_url: str, key: str
) -> None:
    response = client.post(
        f"/devices/{fleet.device_ids['globex-pump-1']}/commands",
        headers={**fleet.headers("admin"), "Idempotency-Key": key.encode()},
        json={"name": "self_test"},
    )
    assert response.status_code == 422, response.text
    assert "Idempotency-Key" in response.text


def test_concurrent_requests_with_one_key_queue_one_command(
    client: TestClient, fleet: Fleet, api_database_url: str
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    body = {"name": "self_test", "ttl_s": 60}
    with ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(
                lambda _: _keyed(client, fleet, "admin", "acme-pump-1", body, "race-1"), range(4)
            )
        )
    assert [a.status_code for a in answers] == [202] * 4
    assert len({a.json()["id"] for a in answers}) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 3
    assert _commands_keyed(api_database_url, "race-1") == 1
