"""API fixtures: a migrated database per module, a seeded fleet, a pool and a test client."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql
from psycopg_pool import ConnectionPool

from backend.api.app import create_app
from backend.settings import BackendSettings
from backend.storage.migrator import apply_migrations
from tests.api.fleet import Fleet, seed_fleet
from tests.fixtures.fix_db import _with_database

TOPIC_ROOT = "fctest"


@pytest.fixture(scope="module")
def api_database_url(pg_server_url: str) -> Iterator[str]:
    """A new migrated database shared by one test module, dropped afterwards."""
    dbname = f"fleetcare_api_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    url = _with_database(pg_server_url, dbname)
    try:
        apply_migrations(url, dialect="postgres")
        yield url
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )


@pytest.fixture(scope="module")
def fleet(api_database_url: str) -> Fleet:
    with psycopg.connect(api_database_url) as conn:
        return seed_fleet(conn)


@pytest.fixture(scope="module")
def pool(api_database_url: str) -> Iterator[ConnectionPool[Any]]:
    opened: ConnectionPool[Any] = ConnectionPool(
        api_database_url, min_size=1, max_size=4, open=True
    )
    try:
        yield opened
    finally:
        opened.close(timeout=1)


@pytest.fixture(scope="module")
def client(api_database_url: str, pool: ConnectionPool[Any], fleet: Fleet) -> Iterator[TestClient]:
    settings = BackendSettings(database_url=api_database_url, topic_root=TOPIC_ROOT)
    with TestClient(create_app(settings, pool=pool), raise_server_exceptions=False) as test_client:
        yield test_client
