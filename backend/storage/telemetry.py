"""Writing telemetry rows through either dialect (the high-rate COPY path lives in ingest)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import NamedTuple

from backend.storage.dialect import Connection, Dialect
from backend.storage.errors import StorageError


class Reading(NamedTuple):
    """One reading of one device: a row of the ``telemetry`` table.

    ``vals[i - 1]`` is the value of the metric at catalogue position ``i`` of the device's
    model; ``None`` means not measured.
    """

    time: datetime
    device_id: int
    seq: int
    vals: list[float | None]


def align_values(
    values: Mapping[str, float | None], positions: Mapping[str, int]
) -> list[float | None]:
    """The value array for ``values`` (metric name -> value) under a model's positions.

    Raises:
        StorageError: a metric name is not in the catalogue.
    """
    unknown = [name for name in values if name not in positions]
    if unknown:
        raise StorageError(f"metrics not in the device model's catalogue: {sorted(unknown)}")
    width = max((positions[name] for name in values), default=0)
    vals: list[float | None] = [None] * width
    for name, value in values.items():
        vals[positions[name] - 1] = value
    return vals


_INSERT = (
    "INSERT INTO telemetry (time, device_id, seq, vals) "
    "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING"
)


def insert_readings(conn: Connection, dialect: Dialect, readings: Sequence[Reading]) -> int:
    """Insert ``readings`` in one transaction, skipping ones already stored; returns inserted.

    A redelivered reading (same device, seq and time) is skipped, so retries are harmless.
    Partitions are created as needed.
    """
    if not readings:
        return 0
    times = [reading.time for reading in readings]
    with conn.transaction(), conn.cursor() as cur:
        dialect.ensure_partitions(conn, "telemetry", min(times), max(times))
        cur.executemany(_INSERT, readings)
        return max(cur.rowcount, 0)
