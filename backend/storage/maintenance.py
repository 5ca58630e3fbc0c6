"""The storage maintenance pass: partitions ahead, rollups refreshed, retention applied.

Run every ``FLEETCARE_MAINTENANCE_INTERVAL_S`` by the ``maintain`` service of
``fleetcare up`` (``fleetcare db maintain --continuous``), or once by ``fleetcare db
maintain``. On plain PostgreSQL nothing else refreshes the rollups or applies retention. On
TimescaleDB its background jobs do the same; running the pass there too is harmless and
keeps tests and small installs independent of the job scheduler.

The refresh reaches back as far as ingest accepts readings (``max_past_s``): a device or
gateway that comes back from a week-long outage delivers a week-old backlog, and its
readings must reach the rollups (and so the scorer and the dashboards) like fresh ones.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from backend.storage.connect import connect
from backend.storage.dialect import Connection, RetentionReport, ensure_partitions_around
from backend.storage.errors import StorageError
from backend.storage.migrator import dialect_of
from fleetcare.errors import ServiceUnavailableError
from fleetcare.periodic import every_interval

#: Added to ingest's accepted past: readings at its edge land in a bucket that starts earlier.
REFRESH_MARGIN = timedelta(days=1)
#: The default lookback: ingest's default accepted past (30 days) and the margin.
REFRESH_LOOKBACK = timedelta(days=30) + REFRESH_MARGIN

log = logging.getLogger("fleetcare.maintenance")


def refresh_lookback_for(max_past_s: float) -> timedelta:
    """How far back a pass must refresh so that every reading ingest accepts is rolled up."""
    return timedelta(seconds=max_past_s) + REFRESH_MARGIN


@dataclass(frozen=True)
class MaintenanceReport:
    dialect: str
    partitions_created: int
    refreshed_from: datetime
    refreshed_to: datetime
    retention: RetentionReport
    seconds: float = 0.0


def run_maintenance(
    conn: Connection, now: datetime | None = None, refresh_lookback: timedelta = REFRESH_LOOKBACK
) -> MaintenanceReport:
    """One maintenance pass; ``conn`` must be in autocommit mode."""
    begun = time.perf_counter()
    now = now or datetime.now(UTC)
    dialect = dialect_of(conn)
    created = ensure_partitions_around(conn, dialect, now)
    start = now - refresh_lookback
    dialect.refresh_rollups(conn, start, now)
    retention = dialect.apply_retention(conn, now)
    return MaintenanceReport(
        dialect.name, created, start, now, retention, time.perf_counter() - begun
    )


class Maintainer:
    """Maintenance passes on one database, every interval, each on a fresh connection.

    A pass that fails (the database restarting, a lock timeout) is logged and counted; the
    next one runs at its time, so an outage delays the rollups but loses nothing: the
    writes it missed stay in the invalidation log until a pass succeeds.
    """

    def __init__(
        self, database_url: str, refresh_lookback: timedelta, connect_timeout_s: float = 5.0
    ) -> None:
        self.database_url = database_url
        self.refresh_lookback = refresh_lookback
        self.connect_timeout_s = connect_timeout_s
        self.passes = 0
        self.failures = 0

    def run_once(self) -> MaintenanceReport:
        with connect(self.database_url, self.connect_timeout_s, autocommit=True) as conn:
            report = run_maintenance(conn, refresh_lookback=self.refresh_lookback)
        self.passes += 1
        return report

    def run(
        self,
        interval_s: float,
        stop: threading.Event,
        on_pass: Callable[[MaintenanceReport], None] | None = None,
    ) -> None:
        """Pass after pass, every ``interval_s`` seconds, until ``stop`` is set."""
        every_interval(
            interval_s,
            stop,
            self.run_once,
            on_pass=on_pass,
            expected=(psycopg.Error, OSError, ServiceUnavailableError, StorageError),
            on_failure=self._failed,
        )

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        log.error("maintenance pass failed (%s): %s", type(exc).__name__, exc)
