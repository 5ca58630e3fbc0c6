"""The storage dialect seam: TimescaleDB or plain PostgreSQL behind one interface.

Callers receive a :class:`Dialect` from :func:`dialect_for` and never branch on its name.
Table and column names are the same in both dialects (``telemetry``, ``telemetry_hourly``,
``telemetry_daily`` …); what differs is how buckets are computed, how rollups are kept
fresh, how partitions are created and how old data is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

import psycopg
from psycopg import sql

from backend.storage.errors import DialectError

DialectName = Literal["timescaledb", "postgres"]
DIALECT_NAMES: tuple[DialectName, ...] = ("timescaledb", "postgres")

#: Time-series tables and the storage setting that holds each one's retention in days.
RETENTION_SETTINGS: dict[str, str] = {
    "telemetry": "telemetry_retention_days",
    "usage_records": "events_retention_days",
    "device_events": "events_retention_days",
    "device_state_reports": "events_retention_days",
    "telemetry_hourly": "rollup_retention_days",
    "telemetry_daily": "rollup_retention_days",
}
ROLLUPS: tuple[str, ...] = ("telemetry_hourly", "telemetry_daily")
#: Time-series tables split by time (hypertables or range partitions).
TIME_PARTITIONED_TABLES: tuple[str, ...] = (
    "telemetry",
    "usage_records",
    "device_events",
    "device_state_reports",
)
PARTITIONS_BEHIND = timedelta(days=1)
PARTITIONS_AHEAD = timedelta(days=35)

Connection = psycopg.Connection[tuple[object, ...]]


@dataclass
class RetentionReport:
    """What one retention pass removed, per table (partitions/chunks dropped, rows deleted)."""

    dropped: dict[str, list[str]] = field(default_factory=dict)
    deleted_rows: dict[str, int] = field(default_factory=dict)


class Dialect(Protocol):
    """What differs between TimescaleDB and plain PostgreSQL."""

    name: DialectName

    def time_bucket(self, width: sql.Composable, column: sql.Composable) -> sql.Composable:
        """An SQL expression bucketing ``column`` into ``width`` intervals aligned on UTC."""
        ...

    def ensure_partitions(
        self, conn: Connection, table: str, start: datetime, end: datetime
    ) -> int:
        """Make sure rows of ``table`` with time in ``[start, end]`` can be inserted."""
        ...

    def refresh_rollups(self, conn: Connection, start: datetime, end: datetime) -> None:
        """Bring hourly then daily rollups up to date for the buckets overlapping the window.

        ``conn`` must be in autocommit mode (TimescaleDB refuses to refresh in a transaction).
        """
        ...

    def apply_retention(self, conn: Connection, now: datetime) -> RetentionReport:
        """Drop data older than each table's retention (see ``storage_settings``)."""
        ...

    def set_retention(self, conn: Connection, setting: str, days: int) -> None:
        """Change a retention setting and whatever schedules it (policies, jobs)."""
        ...


def retention_days(conn: Connection) -> dict[str, int]:
    rows = conn.execute("SELECT key, value FROM storage_settings").fetchall()
    return {str(key): int(str(value)) for key, value in rows if str(key).endswith("_days")}


def _utc(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        raise ValueError(f"naive datetime {ts!r}: pass an aware datetime (UTC)")
    return ts.astimezone(UTC)


def hour_floor(ts: datetime) -> datetime:
    """Start of the UTC hour containing ``ts``."""
    return _utc(ts).replace(minute=0, second=0, microsecond=0)


def hour_ceil(ts: datetime) -> datetime:
    floor = hour_floor(ts)
    return floor if floor == _utc(ts) else floor + timedelta(hours=1)


def day_floor(ts: datetime) -> datetime:
    """Start of the UTC day containing ``ts``."""
    return _utc(ts).replace(hour=0, minute=0, second=0, microsecond=0)


def day_ceil(ts: datetime) -> datetime:
    floor = day_floor(ts)
    return floor if floor == _utc(ts) else floor + timedelta(days=1)


def dialect_for(name: DialectName) -> Dialect:
    """The implementation of dialect ``name``."""
    if name == "timescaledb":
        from backend.storage.timescale import TimescaleDialect

        return TimescaleDialect()
    if name == "postgres":
        from backend.storage.postgres import PostgresDialect

        return PostgresDialect()
    raise DialectError(f"unknown dialect {name!r}; expected one of {', '.join(DIALECT_NAMES)}")


def timescaledb_available(conn: Connection) -> bool:
    row = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    return row is not None


def choose_dialect(conn: Connection, requested: str = "auto") -> DialectName:
    """Pick the dialect for a database not yet migrated.

    ``auto`` picks TimescaleDB when the extension is available, else plain PostgreSQL.
    """
    if requested == "auto":
        return "timescaledb" if timescaledb_available(conn) else "postgres"
    if requested == "timescaledb":
        if not timescaledb_available(conn):
            raise DialectError(
                "dialect timescaledb requested but the timescaledb extension is not "
                "available on this server (install TimescaleDB or use dialect postgres)"
            )
        return "timescaledb"
    if requested == "postgres":
        return "postgres"
    raise DialectError(f"unknown dialect {requested!r}; expected auto, timescaledb or postgres")


def ensure_partitions_around(conn: Connection, dialect: Dialect, now: datetime) -> int:
    """Create the partitions from a day before ``now`` to 35 days after it, so that live
    writes never wait on DDL; returns how many were created."""
    created = 0
    with conn.transaction():
        for table in TIME_PARTITIONED_TABLES:
            created += dialect.ensure_partitions(
                conn, table, now - PARTITIONS_BEHIND, now + PARTITIONS_AHEAD
            )
    return created
