"""Telemetry by multi-row ``INSERT … ON CONFLICT DO NOTHING``, for servers without COPY FROM STDIN.

The TimescaleDB WebAssembly server (PGlite) speaks the PostgreSQL protocol but closes the
connection on ``COPY … FROM STDIN``. For such a server the writer takes this path: the rows
the preparer packed for binary COPY are read back into ``(time, device_id, seq, vals)``
tuples and inserted in statements of :data:`ROWS_PER_STATEMENT` rows with
``ON CONFLICT DO NOTHING``, the same deduplication on the unique index
``(device_id, time, seq)`` as the COPY path's staging table. It is much slower than COPY;
PostgreSQL and a native TimescaleDB keep the COPY path (``telemetry_write = auto``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Literal

from backend.storage.copy_writer import PG_EPOCH_MS, CopyOutcome, TelemetryCopyBatch
from backend.storage.dialect import Connection

TelemetryWrite = Literal["copy", "insert"]

#: Rows per INSERT statement (4 parameters each).
ROWS_PER_STATEMENT = 500
_PG_EPOCH = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=PG_EPOCH_MS)
_ROW_HEAD = struct.Struct("!hiqiqiqi")  # fields; time; device_id; seq; length of vals
_ARRAY_HEAD = struct.Struct("!iiiii")  # ndim, has-null, element type, length, lower bound
_ELEMENT_LENGTH = struct.Struct("!i")
_FLOAT8 = struct.Struct("!d")
_INSERT_HEAD = "INSERT INTO telemetry (time, device_id, seq, vals) VALUES "
_INSERT_TAIL = " ON CONFLICT DO NOTHING"

Row = tuple[datetime, int, int, list[float | None]]


def unpack_rows(parts: list[bytes]) -> Iterator[Row]:
    """The rows of binary COPY ``parts`` (rows or blocks of rows, without signature/trailer)."""
    for part in parts:
        view = memoryview(part)
        offset = 0
        while offset < len(view):
            _, _, time_us, _, device_id, _, seq, _ = _ROW_HEAD.unpack_from(view, offset)
            offset += _ROW_HEAD.size
            _, _, _, width, _ = _ARRAY_HEAD.unpack_from(view, offset)
            offset += _ARRAY_HEAD.size
            vals: list[float | None] = []
            for _ in range(width):
                (length,) = _ELEMENT_LENGTH.unpack_from(view, offset)
                offset += 4
                if length < 0:
                    vals.append(None)
                else:
                    vals.append(_FLOAT8.unpack_from(view, offset)[0])
                    offset += length
            yield _PG_EPOCH + timedelta(microseconds=time_us), device_id, seq, vals


def _statement(rows: int) -> str:
    return _INSERT_HEAD + ", ".join(["(%s, %s, %s, %s)"] * rows) + _INSERT_TAIL


def insert_telemetry(conn: Connection, batch: TelemetryCopyBatch) -> CopyOutcome:
    """Insert ``batch`` inside the caller's transaction, skipping rows already stored."""
    total = len(batch)
    if total == 0:
        return CopyOutcome(0, 0, False)
    rows = list(unpack_rows(batch.parts))
    inserted = 0
    with conn.cursor() as cur:
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            chunk = rows[start : start + ROWS_PER_STATEMENT]
            cur.execute(_statement(len(chunk)), [value for row in chunk for value in row])
            inserted += max(cur.rowcount, 0)
    return CopyOutcome(inserted, total - inserted, inserted < total)
