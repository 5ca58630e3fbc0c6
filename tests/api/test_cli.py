"""``fleetcare api``: the OpenAPI spec, users and keys from the command line."""

from __future__ import annotations

import json

import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from backend.api.app import ROUTER_MODULES
from backend.api.mosquitto_passwd import verify_password
from fleetcare.cli.app import build_app
from tests.api.fleet import Fleet
from tests.cli_output import said


def test_openapi_prints_the_complete_spec_without_a_database() -> None:
    result = CliRunner().invoke(build_app(), ["api", "openapi"])
    assert result.exit_code == 0, result.output
    spec = json.loads(result.stdout)
    assert spec["info"]["title"] == "fleetcare API"
    assert {"/devices", "/devices/{device_id}/telemetry", "/provisioning/devices"} <= set(
        spec["paths"]
    )
    schemes = spec["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} == {"http", "apiKey"}
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            assert operation.get("tags"), f"{method} {path} has no tag"
            assert operation.get("summary"), f"{method} {path} has no summary"
            if operation.get("security"):
                error = operation["responses"]["401"]["content"]["application/json"]["schema"]
                assert error == {"$ref": "#/components/schemas/ErrorBody"}
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    operation_ids = [op["operationId"] for item in spec["paths"].values() for op in item.values()]
    assert len(operation_ids) == len(set(operation_ids))
    assert "devices_list_devices" in operation_ids
    assert len(ROUTER_MODULES) >= 6


@pytest.mark.services
def test_users_and_keys_from_the_cli(api_database_url: str, client: TestClient) -> None:
    env = {"FLEETCARE_DATABASE_URL": api_database_url}
    runner = CliRunner()
    created = runner.invoke(
        build_app(),
        ["api", "users", "create", "--name", "Ops", "--role", "admin", "--email", "ops@x.io"],
        env=env,
    )
    assert created.exit_code == 0, created.output
    assert created.stdout.startswith("user ")
    key = runner.invoke(build_app(), ["api", "keys", "create", "--user", "ops@x.io"], env=env)
    assert key.exit_code == 0, key.output
    plaintext = key.stdout.strip()
    me = client.get("/me", headers={"Authorization": f"Bearer {plaintext}"})
    assert me.status_code == 200 and me.json()["role"] == "admin"
    bad_role = runner.invoke(
        build_app(), ["api", "users", "create", "--name", "X", "--role", "root"], env=env
    )
    assert bad_role.exit_code == 2
    with psycopg.connect(api_database_url) as conn:
        users_before = conn.execute("SELECT count(*) FROM users").fetchone()
    for bad, says in (
        (["--name", "", "--role", "csm"], "--name: String should have at least 1 character"),
        (["--name", "X", "--role", "csm", "--email", "nope"], "--email: String should match"),
        (["--name", "X\x00", "--role", "csm"], "--name: String should match"),
    ):
        refused = runner.invoke(build_app(), ["api", "users", "create", *bad], env=env)
        assert refused.exit_code == 2
        assert says in said(refused.output)
    with psycopg.connect(api_database_url) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == users_before
    missing = runner.invoke(build_app(), ["api", "keys", "create", "--user", "9999"], env=env)
    assert missing.exit_code == 2
    revoked = runner.invoke(
        build_app(), ["api", "keys", "revoke", plaintext.split("_")[1]], env=env
    )
    assert revoked.exit_code == 0, revoked.output
    assert client.get("/me", headers={"Authorization": f"Bearer {plaintext}"}).status_code == 401


@pytest.mark.services
def test_device_provisioning_from_the_cli(api_database_url: str, fleet: Fleet) -> None:
    env = {"FLEETCARE_DATABASE_URL": api_database_url}
    runner = CliRunner()
    registered = runner.invoke(
        build_app(),
        [
            "api",
            "provision",
            "device",
            "cli-dev-1",
            "--model",
            fleet.model_name,
            "--site",
            str(fleet.site_ids["globex"]),
        ],
        env=env,
    )
    assert registered.exit_code == 0, registered.output
    first = registered.stdout.split("password (shown once): ")[1].strip()
    # A device registered elsewhere (no credentials yet) gets its first password here.
    issued = runner.invoke(
        build_app(), ["api", "provision", "credentials", "globex-pump-2"], env=env
    )
    assert issued.exit_code == 0, issued.output
    second = issued.stdout.rsplit(": ", 1)[1].strip()
    with psycopg.connect(api_database_url) as conn:
        rows = dict(
            conn.execute(
                "SELECT external_id, credential_hash FROM devices"
                " WHERE external_id IN ('cli-dev-1', 'globex-pump-2')"
            ).fetchall()
        )
    assert verify_password(first, rows["cli-dev-1"])
    assert verify_password(second, rows["globex-pump-2"])
    unknown = runner.invoke(build_app(), ["api", "provision", "credentials", "nope"], env=env)
    assert unknown.exit_code == 2
    bad_model = runner.invoke(
        build_app(), ["api", "provision", "device", "cli-dev-2", "--model", "nope"], env=env
    )
    assert bad_model.exit_code == 2


@pytest.mark.services
def test_commands_refuse_an_unmigrated_database(fresh_database_url: str) -> None:
    result = CliRunner().invoke(
        build_app(),
        ["api", "users", "create", "--name", "X", "--role", "admin"],
        env={"FLEETCARE_DATABASE_URL": fresh_database_url},
    )
    assert result.exit_code == 2
    assert "fleetcare db migrate" in result.output
    with psycopg.connect(fresh_database_url) as conn:
        row = conn.execute("SELECT to_regclass('users')").fetchone()
    assert row == (None,)
