"""Connecting to PostgreSQL with errors that say what was tried and how to fix it."""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg
from psycopg.conninfo import conninfo_to_dict

from fleetcare.errors import ServiceUnavailableError
from fleetcare.redact import redact_url

_RETRY_DELAYS_S = (0.0, 0.2, 0.5)


@dataclass(frozen=True)
class DatabaseInfo:
    """What a reachable database server told us about itself."""

    server_version: str
    timescaledb_available: bool
    timescaledb_version: str | None


def _target(url: str) -> str:
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return redact_url(url)
    host = params.get("host") or "localhost (unix socket)"
    port = params.get("port") or "5432"
    dbname = params.get("dbname") or params.get("user") or ""
    return f"{redact_url(url)} (host {host}, port {port}, database {dbname})"


def connect(
    url: str, timeout_s: float = 5.0, *, autocommit: bool = False
) -> psycopg.Connection[tuple[object, ...]]:
    """Open a connection, retrying briefly; raise :class:`ServiceUnavailableError` on failure."""
    attempts: list[str] = []
    deadline = time.monotonic() + timeout_s
    for delay in _RETRY_DELAYS_S:
        if delay:
            time.sleep(delay)
        remaining = max(1, round(deadline - time.monotonic()))
        try:
            return psycopg.connect(url, connect_timeout=remaining, autocommit=autocommit)
        except psycopg.OperationalError as exc:
            attempts.append(f"connect (timeout {remaining} s): {str(exc).strip()}")
        except psycopg.ProgrammingError as exc:
            raise ServiceUnavailableError(
                "database",
                redact_url(url),
                [f"parse URL: {exc}"],
                hint="use the form postgresql://user:password@host:5432/dbname",
            ) from None
        if time.monotonic() >= deadline:
            break
    raise ServiceUnavailableError(
        "database",
        _target(url),
        attempts,
        hint="check that PostgreSQL runs and FLEETCARE_DATABASE_URL is right, "
        "or unset it to use the embedded PostgreSQL",
    )


def check_database(url: str, timeout_s: float = 5.0) -> DatabaseInfo:
    """Connect and report the server version and whether TimescaleDB can be used."""
    with connect(url, timeout_s) as conn:
        version_row = conn.execute("SHOW server_version").fetchone()
        ts_row = conn.execute(
            "SELECT coalesce(installed_version, default_version) FROM pg_available_extensions "
            "WHERE name = 'timescaledb'"
        ).fetchone()
    server_version = str(version_row[0]) if version_row else "unknown"
    ts_version = str(ts_row[0]) if ts_row and ts_row[0] is not None else None
    return DatabaseInfo(
        server_version=server_version,
        timescaledb_available=ts_version is not None,
        timescaledb_version=ts_version,
    )
