"""Pieces of the API core: key format, cursors, the error body for unexpected failures."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from backend.api.app import create_app
from backend.api.deps import DbConnection
from backend.api.errors import ApiError
from backend.api.keys import hash_secret, new_key, parse_key, verify_secret
from backend.api.pagination import decode_cursor, encode_cursor
from backend.settings import BackendSettings


def test_keys_have_the_documented_format_and_verify() -> None:
    plaintext, prefix, stored = new_key()
    parsed = parse_key(plaintext)
    assert parsed is not None and parsed.prefix == prefix
    assert plaintext.startswith(f"fc_{prefix}_")
    assert stored.startswith("sha256$") and parsed.secret not in stored
    assert verify_secret(parsed, stored)
    other = parse_key(new_key()[0])
    assert other is not None and not verify_secret(other, stored)
    assert parse_key("fc_short_x") is None
    assert hash_secret(prefix, parsed.secret) == stored


def test_cursor_round_trip_and_tampering() -> None:
    assert decode_cursor(encode_cursor(12345)) == 12345
    for bad in ("", "!!!", encode_cursor(1)[:-1] + "\x00", "aWQ6LTE", "Zm9vOjE"):
        with pytest.raises(ApiError) as raised:
            decode_cursor(bad)
        assert raised.value.status_code == 422


def test_create_app_needs_a_database() -> None:
    with pytest.raises(ValueError, match="FLEETCARE_DATABASE_URL"):
        create_app(BackendSettings(database_url=None))


@pytest.mark.services
def test_unexpected_errors_answer_500_without_internals(
    api_database_url: str, pool: ConnectionPool[Any]
) -> None:
    app: FastAPI = create_app(BackendSettings(database_url=api_database_url), pool=pool)

    @app.get("/boom")
    def boom(conn: DbConnection) -> None:
        conn.execute(
            "INSERT INTO audit_log (actor, action, subject_kind, subject_id)"
            " VALUES ('t', 'boom', 't', 'rolled-back')"
        )
        raise RuntimeError("secret internal detail")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "internal", "message": "internal server error", "details": {}}
    }
    with psycopg.connect(api_database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM audit_log WHERE subject_id = 'rolled-back'"
        ).fetchone()
    assert row == (0,)


@pytest.mark.services
def test_app_opens_and_closes_its_own_pool(api_database_url: str) -> None:
    app = create_app(BackendSettings(database_url=api_database_url))
    with TestClient(app) as client:
        response = client.get("/health")
        assert response.json() == {"status": "ok", "database": "ok"}
    assert app.state.pool.closed
