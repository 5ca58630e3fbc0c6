"""Fixtures of the ingest tests: a migrated database for the session, fleets, topic roots."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg import sql

from backend.ingest.loadgen import FleetSpec, register_fleet
from backend.storage.migrator import apply_migrations
from fleetcare.embedded.mosquitto import MosquittoBroker, MosquittoConfig
from tests.ingest.helpers import with_database


@pytest.fixture
def mosquitto(mosquitto_factory: Callable[..., MosquittoBroker]) -> MosquittoBroker:
    """A private broker whose persistence works when the tests run as root.

    Run as root, mosquitto switches to the user ``mosquitto``, which cannot write the test's
    private directory: persistence then fails with only "Error: Permission denied." in its
    log, and a restart loses every session. ``user root`` keeps it as root.
    """
    extra = ("user root",) if os.geteuid() == 0 else ()
    return mosquitto_factory(MosquittoConfig(extra_lines=extra))


@pytest.fixture(scope="session")
def ingest_db(pg_server_url: str) -> Iterator[str]:
    """A migrated database shared by the ingest tests (each test uses its own devices)."""
    dbname = f"fleetcare_ingest_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    url = with_database(pg_server_url, dbname)
    try:
        apply_migrations(url)
        yield url
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )


@pytest.fixture
def root(topic_root: str) -> str:
    """A topic root of this test's own."""
    return f"{topic_root}/{secrets.token_hex(4)}"


FleetFactory = Callable[..., FleetSpec]


@pytest.fixture
def fleet(ingest_db: str) -> FleetFactory:
    """Register a fleet of devices of this test's own: ``fleet(devices=3, metrics=(...))``."""

    def make(**kwargs: object) -> FleetSpec:
        prefix = f"t{secrets.token_hex(4)}"
        spec = FleetSpec(prefix=prefix, model=f"model-{prefix}", **kwargs)  # type: ignore[arg-type]
        register_fleet(ingest_db, spec)
        return spec

    return make
