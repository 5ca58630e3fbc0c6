"""Reading from the database what the scorer needs: who has new data, and their windows.

A device is due when it has a reading of a completed day (UTC) newer than the
``window_end`` of its last prediction (within the look-back). Its window is the ``days``
daily means ending with the day of that newest reading, read from the daily rollup
(``telemetry_daily``: ``total / n`` per metric); a day without a rollup row, or a metric
with no observed value that day, is NaN: an offline gap is missing data, never zeros. Rows
arrive by binary ``COPY`` and are parsed with numpy in one go.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
import psycopg
from numpy.typing import NDArray

_COPY_HEADER = len(b"PGCOPY\n\xff\r\n\x00") + 4 + 4
# one row: field count, then (length, value) for int8 device, int4 day, int2 position, float8 mean
_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("l_device", ">i4"), ("device", ">i8"),
        ("l_day", ">i4"), ("day", ">i4"),
        ("l_pos", ">i4"), ("pos", ">i2"),
        ("l_mean", ">i4"), ("mean", ">f8"),
    ]
)  # fmt: skip


_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class DueDevice:
    device_id: int
    newest: datetime


def catalogue_models(conn: psycopg.Connection[Any], machine_type: str) -> list[int]:
    """Ids of the device models a fleet model serves: named ``machine_type`` or of that kind.

    A manufacturer's catalogue names models by product (``CP-80``) and records the machine
    type in ``kind``; a fleet model is trained per machine type, so it serves every product
    of that kind. Each product has its own metric positions, so callers read per model id.
    """
    rows = conn.execute(
        "SELECT id FROM device_models WHERE name = %s OR kind = %s ORDER BY id",
        (machine_type, machine_type),
    ).fetchall()
    return [int(r[0]) for r in rows]


def due_devices(
    conn: psycopg.Connection[Any], model_id: int, since: datetime, until: datetime
) -> list[DueDevice]:
    """Devices of catalogue model ``model_id`` with a reading in ``(last window_end or since,
    until)``; ``newest`` is the latest such reading."""
    rows = conn.execute(
        """
        SELECT d.id, newest.time
        FROM devices d
        LEFT JOIN LATERAL (
            SELECT p.window_end FROM predictions p
            WHERE p.device_id = d.id ORDER BY p.predicted_at DESC LIMIT 1
        ) last ON true
        CROSS JOIN LATERAL (
            SELECT t.time FROM telemetry t
            WHERE t.device_id = d.id
              AND t.time > greatest(last.window_end, %(since)s) AND t.time < %(until)s
            ORDER BY t.time DESC LIMIT 1
        ) newest
        WHERE d.model_id = %(model)s AND d.status <> 'decommissioned'
        ORDER BY d.id
        """,
        {"model": model_id, "since": since, "until": until},
    ).fetchall()
    return [DueDevice(int(r[0]), r[1]) for r in rows]


def metric_columns(
    conn: psycopg.Connection[Any], model_id: int, metrics: tuple[str, ...]
) -> dict[int, int]:
    """Catalogue position -> column of the model's window, for the metrics it reads."""
    rows = conn.execute(
        "SELECT m.name, dm.position FROM device_model_metrics dm "
        "JOIN metrics m ON m.id = dm.metric_id WHERE dm.model_id = %s",
        (model_id,),
    ).fetchall()
    by_name = {str(name): int(position) for name, position in rows}
    return {by_name[m]: j for j, m in enumerate(metrics) if m in by_name}


def _parse_copy(data: bytes) -> NDArray[np.void]:
    body = data[_COPY_HEADER:]
    extension = int.from_bytes(data[_COPY_HEADER - 4 : _COPY_HEADER], "big")
    body = body[extension:]
    if body[-2:] == b"\xff\xff":
        body = body[:-2]
    return np.frombuffer(body, dtype=_ROW)


def daily_rows(
    conn: psycopg.Connection[Any],
    device_ids: list[int],
    positions: list[int],
    first_day: date,
    end_day: date,
) -> NDArray[np.void]:
    """Daily means of ``device_ids`` at catalogue ``positions`` for days in
    ``[first_day, end_day)``, as a structured array with fields ``device``, ``day`` (days
    since 1970-01-01), ``pos`` and ``mean``; days and metrics without an observed value
    have no row. One binary ``COPY`` (the rollup's primary key
    ``(device_id, position, bucket)`` serves it), parsed with numpy in one go.
    """
    query = """
        COPY (
            SELECT r.device_id::int8,
                   (extract(epoch FROM r.bucket) / 86400)::int4,
                   r.position::int2,
                   (r.total / r.n)::float8
            FROM telemetry_daily r
            WHERE r.device_id = ANY(%(ids)s) AND r.position = ANY(%(positions)s)
              AND r.bucket >= %(first)s AND r.bucket < %(end)s
              AND r.n > 0 AND r.total IS NOT NULL
        ) TO STDOUT (FORMAT binary)
    """
    params = {
        "ids": device_ids,
        "positions": positions,
        "first": datetime.combine(first_day, time.min, UTC),
        "end": datetime.combine(end_day, time.min, UTC),
    }
    buffer = bytearray()
    with conn.cursor() as cur, cur.copy(query, params) as copy:
        for chunk in copy:
            buffer += chunk
    return _parse_copy(bytes(buffer))


def read_windows(
    conn: psycopg.Connection[Any],
    devices: list[DueDevice],
    days: int,
    columns: dict[int, int],
    n_metrics: int,
) -> NDArray[np.float32]:
    """Windows ``(len(devices), days, n_metrics)`` of daily means; NaN where missing.

    Each device's window ends with the day of its newest reading. One range query over
    all devices' rollup rows (the primary key ``(device_id, position, bucket)`` serves
    it); rows are placed in the windows with numpy.
    """
    out = np.full((len(devices), days, n_metrics), np.nan, dtype=np.float32)
    if not devices:
        return out
    ids = np.asarray([d.device_id for d in devices], dtype=np.int64)
    last = np.asarray(
        [(d.newest.astimezone(UTC).date() - _EPOCH).days for d in devices], dtype=np.int64
    )
    first_day = _EPOCH + timedelta(days=int(last.min()) - (days - 1))
    end_day = _EPOCH + timedelta(days=int(last.max()) + 1)
    rows = daily_rows(conn, ids.tolist(), list(columns), first_day, end_day)
    if rows.size == 0:
        return out
    row, column = place_rows(rows, ids, columns)
    day = rows["day"].astype(np.int64) - (last[row] - (days - 1))
    inside = (day >= 0) & (day < days)
    out[row[inside], day[inside], column[inside]] = rows["mean"][inside]
    return out


def place_rows(
    rows: NDArray[np.void], device_ids: NDArray[np.int64], columns: dict[int, int]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """For each row of :func:`daily_rows`: the index of its device in ``device_ids`` and
    its column (catalogue position -> column by ``columns``; -1 for a position not there)."""
    order = np.argsort(device_ids, kind="stable")
    at = np.searchsorted(device_ids[order], rows["device"].astype(np.int64))
    row: NDArray[np.int64] = order[np.minimum(at, device_ids.size - 1)]
    lookup = np.full(max(columns, default=0) + 1, -1, dtype=np.int64)
    for position, place in columns.items():
        lookup[position] = place
    column: NDArray[np.int64] = lookup[rows["pos"].astype(np.int64)]
    return row, column
