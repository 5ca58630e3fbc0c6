"""Binary COPY of telemetry readings, with a deduplicating fallback for batches that conflict.

The ingest's hot path. A reading (one row of ``telemetry``: time, device, seq and the
``float8[]`` of its values at the model's catalogue positions, see
:func:`backend.storage.telemetry.align_values`) is packed once, in PostgreSQL's binary COPY
format, by :func:`pack_reading`, and a batch is written with one ``COPY``:

* :func:`copy_telemetry` COPYs straight into ``telemetry`` (the common case, at the speed of
  the table's unique index) inside a savepoint; if the batch hits the unique index
  ``(device_id, time, seq)`` (a redelivered reading), it rolls back to the savepoint and takes
  the deduplicating path: COPY into a temporary staging table, then
  ``INSERT … SELECT … ON CONFLICT DO NOTHING``. ``docs/ingest.md`` has the trade-off.

The caller owns the transaction. Both dialects take the same statements.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import errors as pg_errors

from backend.storage.dialect import Connection

__all__ = [
    "PG_EPOCH_MS",
    "CopyOutcome",
    "TelemetryCopyBatch",
    "copy_telemetry",
    "is_missing_partition",
    "pack_reading",
    "pack_readings",
]

#: Milliseconds from the Unix epoch to PostgreSQL's (2000-01-01 UTC).
PG_EPOCH_MS = 946_684_800_000
_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_TRAILER = b"\xff\xff"
_FLOAT8_OID = 701
_ARRAY_HEADER_BYTES = 20  # ndim, has-null flag, element type, dimension length, lower bound
_NULL_ELEMENT = struct.pack("!i", -1)
_ELEMENT = struct.Struct("!id").pack
# 4 fields: time (int8 µs since 2000), device_id (int8), seq (int8), vals (float8[] of n).
_HEAD = "!hiqiqiqi" + "iiiii"
_COLUMNS = "time, device_id, seq, vals"
_COPY_DIRECT = f"COPY telemetry ({_COLUMNS}) FROM STDIN (FORMAT BINARY)"
_COPY_STAGING = f"COPY fleetcare_ingest_staging ({_COLUMNS}) FROM STDIN (FORMAT BINARY)"
_CREATE_STAGING = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS fleetcare_ingest_staging "
    "(LIKE telemetry INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
_MERGE_STAGING = (
    f"INSERT INTO telemetry ({_COLUMNS}) SELECT {_COLUMNS} FROM fleetcare_ingest_staging "
    "ON CONFLICT DO NOTHING"
)
_CHUNK_PARTS = 256


@lru_cache(maxsize=1100)
def _full_row(width: int) -> struct.Struct:
    """A row whose ``width`` values are all present: one ``pack`` call."""
    return struct.Struct(_HEAD + "id" * width)


_HEAD_ROW = struct.Struct(_HEAD)


def pack_reading(time_ms: int, device_id: int, seq: int, vals: Sequence[float | None]) -> bytes:
    """One ``telemetry`` row in binary COPY format.

    ``vals[i]`` is the value at catalogue position ``i + 1`` (``None``: not measured); the
    array must hold 1 to 1024 values.
    """
    width = len(vals)
    time_us = (time_ms - PG_EPOCH_MS) * 1000
    if None not in vals:
        interleaved: list[float] = [8] * (2 * width)
        interleaved[1::2] = vals  # type: ignore[assignment]
        return _full_row(width).pack(
            4, 8, time_us, 8, device_id, 8, seq,
            _ARRAY_HEADER_BYTES + 12 * width, 1, 0, _FLOAT8_OID, width, 1,
            *interleaved,
        )  # fmt: skip
    body = b"".join(_NULL_ELEMENT if v is None else _ELEMENT(8, v) for v in vals)
    head = _HEAD_ROW.pack(
        4, 8, time_us, 8, device_id, 8, seq,
        _ARRAY_HEADER_BYTES + len(body), 1, 1, _FLOAT8_OID, width, 1,
    )  # fmt: skip
    return head + body


@lru_cache(maxsize=1100)
def _block_template(width: int) -> npt.NDArray[np.void]:
    """One row of ``width`` present values as a big-endian record, constants filled in."""
    dtype = np.dtype(
        [
            ("fields", ">i2"),
            ("time_len", ">i4"),
            ("time", ">i8"),
            ("device_len", ">i4"),
            ("device", ">i8"),
            ("seq_len", ">i4"),
            ("seq", ">i8"),
            ("vals_len", ">i4"),
            ("ndim", ">i4"),
            ("has_null", ">i4"),
            ("element_type", ">i4"),
            ("dim", ">i4"),
            ("lower_bound", ">i4"),
            ("elements", [("len", ">i4"), ("value", ">f8")], (width,)),
        ]
    )
    template = np.zeros(1, dtype)
    template["fields"] = 4
    template["time_len"] = template["device_len"] = template["seq_len"] = 8
    template["vals_len"] = _ARRAY_HEADER_BYTES + 12 * width
    template["ndim"] = 1
    template["element_type"] = _FLOAT8_OID
    template["dim"] = width
    template["lower_bound"] = 1
    template["elements"]["len"] = 8
    return template


def pack_readings(
    times_ms: Sequence[int],
    device_id: int,
    seqs: Sequence[int],
    vals: npt.NDArray[np.float64],
) -> bytes:
    """Rows of one device whose values are all present (``vals``: readings × width), at once.

    The same bytes as :func:`pack_reading` for each reading, several times faster for
    batches of readings: the SDK sends a device's readings in batches of one layout.
    """
    count, width = vals.shape
    block = np.repeat(_block_template(width), count)
    block["time"] = (np.asarray(times_ms, dtype=np.int64) - PG_EPOCH_MS) * 1000
    block["device"] = device_id
    block["seq"] = np.asarray(seqs, dtype=np.int64)
    block["elements"]["value"] = vals
    return block.tobytes()


@dataclass
class TelemetryCopyBatch:
    """Packed rows for one COPY: ``parts`` are rows or blocks of rows, ``rows`` their count."""

    parts: list[bytes]
    rows: int

    def __len__(self) -> int:
        return self.rows

    def chunks(self) -> Iterable[bytes]:
        """The COPY stream: signature, rows in chunks, trailer."""
        yield _SIGNATURE
        parts = self.parts
        for start in range(0, len(parts), _CHUNK_PARTS):
            yield b"".join(parts[start : start + _CHUNK_PARTS])
        yield _TRAILER


@dataclass(frozen=True)
class CopyOutcome:
    """What :func:`copy_telemetry` did.

    Attributes:
        inserted: readings that are new in ``telemetry``.
        duplicates: readings already stored (or repeated within the batch), skipped.
        deduplicated: the batch went through the staging table.
    """

    inserted: int
    duplicates: int
    deduplicated: bool


def _copy(conn: Connection, statement: str, batch: TelemetryCopyBatch) -> None:
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for chunk in batch.chunks():
            copy.write(chunk)


def _copy_dedup(conn: Connection, batch: TelemetryCopyBatch) -> int:
    conn.execute(_CREATE_STAGING)
    _copy(conn, _COPY_STAGING, batch)
    cur = conn.execute(_MERGE_STAGING)
    inserted = max(cur.rowcount, 0)
    conn.execute("TRUNCATE fleetcare_ingest_staging")
    return inserted


def copy_telemetry(
    conn: Connection, batch: TelemetryCopyBatch, *, dedup: bool = False
) -> CopyOutcome:
    """Write ``batch`` into ``telemetry`` inside the caller's transaction.

    Args:
        conn: a connection inside a transaction (``conn.transaction()``).
        batch: the packed rows.
        dedup: go straight to the deduplicating path (the caller expects redeliveries).

    Raises:
        psycopg.Error: anything but a unique violation (which is handled here).
    """
    total = len(batch)
    if total == 0:
        return CopyOutcome(0, 0, False)
    if not dedup:
        try:
            with conn.transaction():
                _copy(conn, _COPY_DIRECT, batch)
            return CopyOutcome(total, 0, False)
        except pg_errors.UniqueViolation:
            pass
    with conn.transaction():
        inserted = _copy_dedup(conn, batch)
    return CopyOutcome(inserted, total - inserted, True)


def is_missing_partition(exc: psycopg.Error) -> bool:
    """Whether ``exc`` is PostgreSQL's "no partition of relation … found for row"."""
    return isinstance(exc, pg_errors.CheckViolation) and "no partition" in str(exc)
