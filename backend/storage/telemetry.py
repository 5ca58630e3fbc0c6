"""Writing telemetry rows through either dialect (the high-rate COPY path lives in ingest)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from backend.storage.dialect import Connection, Dialect


class TelemetryRow(NamedTuple):
    """One metric value of one reading: the narrow layout of the ``telemetry`` table."""

    time: datetime
    device_id: int
    seq: int
    metric_id: int
    value: float | None


_INSERT = (
    "INSERT INTO telemetry (time, device_id, seq, metric_id, value) "
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)


def insert_telemetry(conn: Connection, dialect: Dialect, rows: Sequence[TelemetryRow]) -> int:
    """Insert ``rows`` in one transaction, ignoring ones already stored; returns rows inserted.

    Duplicates of an already stored (device, seq, metric, time) are skipped, so redelivery
    is harmless. Partitions are created as needed.
    """
    if not rows:
        return 0
    times = [row.time for row in rows]
    with conn.transaction(), conn.cursor() as cur:
        dialect.ensure_partitions(conn, "telemetry", min(times), max(times))
        cur.executemany(_INSERT, rows)
        return max(cur.rowcount, 0)
