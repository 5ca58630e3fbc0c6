"""The storage maintenance pass: partitions ahead, rollups refreshed, retention applied.

Run periodically by the backend (and by ``fleetcare db maintain``). On TimescaleDB its
background jobs do the same; running the pass there too is harmless and keeps tests and
small installs independent of the job scheduler.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from backend.storage.dialect import Connection, RetentionReport, ensure_partitions_around
from backend.storage.migrator import dialect_of

REFRESH_LOOKBACK = timedelta(days=3)


@dataclass(frozen=True)
class MaintenanceReport:
    dialect: str
    partitions_created: int
    refreshed_from: datetime
    refreshed_to: datetime
    retention: RetentionReport


def run_maintenance(
    conn: Connection, now: datetime | None = None, refresh_lookback: timedelta = REFRESH_LOOKBACK
) -> MaintenanceReport:
    """One maintenance pass; ``conn`` must be in autocommit mode."""
    now = now or datetime.now(UTC)
    dialect = dialect_of(conn)
    created = ensure_partitions_around(conn, dialect, now)
    start = now - refresh_lookback
    dialect.refresh_rollups(conn, start, now)
    retention = dialect.apply_retention(conn, now)
    return MaintenanceReport(dialect.name, created, start, now, retention)
