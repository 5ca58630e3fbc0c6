"""A small simulated customer base, generated once per session, and a migrated database."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from backend.storage.migrator import apply_migrations
from firmware_sim import SimConfig, generate
from tests.fixtures.fix_db import _with_database as with_database

SIM_CONFIG = SimConfig(devices=300, accounts=150, days=400, seed=7, interval_s=900)


@pytest.fixture(scope="session")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("customers-sim") / "sim"
    generate(SIM_CONFIG, out)
    return out


@pytest.fixture
def conn(fresh_database_url: str) -> Iterator[psycopg.Connection]:
    apply_migrations(fresh_database_url, "postgres")
    with psycopg.connect(fresh_database_url) as connection:
        yield connection


@pytest.fixture(scope="session")
def loaded_database_url(pg_server_url: str, sim_dir: Path) -> Iterator[str]:
    """A database holding the whole simulated history, loaded once for the session."""
    from backend.customers.simload import load_simulation

    dbname = f"fleetcare_customers_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    url = with_database(pg_server_url, dbname)
    try:
        apply_migrations(url, "postgres")
        with psycopg.connect(url) as connection:
            load_simulation(connection, sim_dir)
        yield url
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )


@pytest.fixture
def loaded(loaded_database_url: str) -> Iterator[psycopg.Connection]:
    """A connection to the loaded database; what the test writes is rolled back."""
    with psycopg.connect(loaded_database_url) as connection:
        yield connection
        connection.rollback()
