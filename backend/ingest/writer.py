"""One batch into the database, in one transaction: COPY, other rows, dead letters, liveness.

:class:`BatchWriter` owns one connection (autocommit, explicit transactions). ``write`` checks
the batch (:mod:`backend.ingest.prepare`), makes sure partitions exist, then commits in one
transaction:

1. telemetry rows by binary COPY (:func:`backend.storage.copy_writer.copy_telemetry`: straight
   into the table, or through the deduplicating staging table when the batch holds
   redeliveries or the previous batch met duplicates);
2. usage records and events (``INSERT … ON CONFLICT DO NOTHING`` on their unique keys), state
   reports (unless the same one is stored);
3. dead letters (a redelivered message is not dead-lettered twice);
4. liveness (:mod:`backend.ingest.liveness`).

Errors: a connection or server problem propagates (the caller retries the whole batch later:
nothing was acknowledged). A data error the database raises for some message (which the
checks should have caught) splits the batch in halves until the message is found; that
message is dead-lettered with ``write_error`` and the rest is written.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import errors as pg_errors

from backend.ingest.liveness import Goodbye, Seen, mark_goodbyes, mark_seen
from backend.ingest.metrics import IngestMetrics
from backend.ingest.partitions import PartitionGuard
from backend.ingest.pending import Inbound
from backend.ingest.prepare import Accepted, DeadLetter, Prepared, Preparer, ms_to_datetime
from backend.ingest.reasons import Reason, Rejection
from backend.ingest.row_insert import TelemetryWrite, insert_telemetry
from backend.storage.copy_writer import TelemetryCopyBatch, copy_telemetry, is_missing_partition
from backend.storage.dialect import Connection
from device_sdk.wire import Channel

log = logging.getLogger("fleetcare.ingest")

#: Errors worth retrying the batch for: the connection, the server, lock conflicts.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    pg_errors.TransactionRollback,
)
#: Errors caused by the data of some message: split the batch to find it.
DATA_ERRORS: tuple[type[Exception], ...] = (psycopg.DataError, psycopg.IntegrityError)

_INSERT_USAGE = (
    "INSERT INTO usage_records (time, device_id, seq, kind, name, value, duration_s, "
    "attributes) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)
_INSERT_EVENT = (
    "INSERT INTO device_events (time, device_id, seq, kind, severity, code, message, "
    "attributes, received_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT DO NOTHING"
)
_INSERT_STATE = (
    "INSERT INTO device_state_reports (time, device_id, report) "
    "SELECT %(time)s, %(device)s, %(report)s::jsonb WHERE NOT EXISTS ("
    " SELECT 1 FROM device_state_reports WHERE device_id = %(device)s AND time = %(time)s)"
)
_INSERT_DEAD = (
    "INSERT INTO dead_letters (received_at, topic, payload, reason, detail, device_ref) "
    "VALUES (%s, %s, %s, %s, %s, %s)"
)
# A redelivered message (DUP) may have been dead-lettered already before a crash.
_INSERT_DEAD_ONCE = (
    "INSERT INTO dead_letters (received_at, topic, payload, reason, detail, device_ref) "
    "SELECT %(at)s, %(topic)s, %(payload)s, %(reason)s, %(detail)s, %(ref)s "
    "WHERE NOT EXISTS (SELECT 1 FROM dead_letters WHERE reason = %(reason)s "
    "AND received_at >= %(since)s AND topic = %(topic)s AND payload = %(payload)s)"
)
_DEAD_DEDUP_WINDOW = timedelta(days=8)


def _clean(text: str | None, limit: int = 2000) -> str | None:
    """Text safe for a PostgreSQL text column (no NUL), cut to ``limit`` characters."""
    if text is None:
        return None
    return text.replace("\x00", "\\0")[:limit]


@dataclass
class WriteResult:
    """What one :meth:`BatchWriter.write` stored."""

    prepared: Prepared
    rows_inserted: int = 0
    rows_duplicate: int = 0
    transactions: int = 0
    split: bool = False
    refused: list[DeadLetter] = field(default_factory=list)
    """Accepted messages the database refused (dead-lettered with ``write_error``)."""


class BatchWriter:
    """Writes batches through one database connection.

    Args:
        connect: opens a connection (autocommit).
        preparer: checks messages.
        guard: creates partitions ahead of writes.
        metrics: updated after each commit.
        liveness_interval_s: least time between two last-seen updates of one device.
        dead_letter_payload_bytes: dead letters keep at most this much of a payload.
        record_dead_letters: ``False`` for ``dlq replay``, which updates the original rows.
        telemetry_write: ``copy`` (binary COPY) or ``insert`` (for servers without COPY FROM
            STDIN; :mod:`backend.ingest.row_insert`).
        one_connection: checks read through the commit connection (servers that take one
            connection at a time); the caller must not run :meth:`prepare` and
            :meth:`commit` at once.
    """

    def __init__(
        self,
        connect: Callable[[], Connection],
        preparer: Preparer,
        guard: PartitionGuard,
        metrics: IngestMetrics,
        *,
        liveness_interval_s: float = 5.0,
        dead_letter_payload_bytes: int = 256 * 1024,
        record_dead_letters: bool = True,
        telemetry_write: TelemetryWrite = "copy",
        one_connection: bool = False,
    ) -> None:
        self._connect = connect
        self.telemetry_write: TelemetryWrite = telemetry_write
        self.one_connection = one_connection
        self.preparer = preparer
        self.guard = guard
        self.metrics = metrics
        self.liveness_interval_s = liveness_interval_s
        self.dead_letter_payload_bytes = dead_letter_payload_bytes
        self.record_dead_letters = record_dead_letters
        self._conn: Connection | None = None
        self._lookup_conn: Connection | None = None
        self._dedup_next = False
        self._touched: dict[int, float] = {}

    # -- connections -----------------------------------------------------------------------

    def connection(self) -> Connection:
        """The connection batches are committed through."""
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        return self._conn

    def lookup_connection(self) -> Connection:
        """The connection :meth:`prepare` reads devices and catalogues through."""
        if self.one_connection:
            return self.connection()
        if self._lookup_conn is None or self._lookup_conn.closed:
            self._lookup_conn = self._connect()
        return self._lookup_conn

    def reset(self) -> None:
        """Drop the commit connection (after an error); the next call opens a new one."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()

    def reset_lookup(self) -> None:
        if self.one_connection:
            self.reset()
            return
        conn, self._lookup_conn = self._lookup_conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()

    def close(self) -> None:
        self.reset()
        self.reset_lookup()

    # -- writing ---------------------------------------------------------------------------

    def prepare(self, messages: list[Inbound]) -> Prepared:
        """Check ``messages`` (the first stage; may run beside :meth:`commit` of another)."""
        prepared = self.preparer.prepare(self.lookup_connection(), messages)
        for item in prepared.accepted:
            self.metrics.readings_received.inc(item.readings, item.channel.value)
        return prepared

    def write(self, messages: list[Inbound]) -> WriteResult:
        """Check and commit ``messages``. Raises a transient error for the caller to retry."""
        return self.commit(self.prepare(messages))

    def commit(self, prepared: Prepared) -> WriteResult:
        """Commit a prepared batch (the second stage)."""
        conn = self.connection()
        result = WriteResult(prepared)
        self._ensure_partitions(conn, prepared.accepted)
        try:
            self._commit(conn, prepared.accepted, prepared.dead, result)
        except DATA_ERRORS as exc:
            if isinstance(exc, psycopg.Error) and is_missing_partition(exc):
                self.metrics.db_errors.inc(1, "missing_partition")
                self.guard.forget()
                self._ensure_partitions(conn, prepared.accepted)
                self._commit(conn, prepared.accepted, prepared.dead, result)
            else:
                self.metrics.db_errors.inc(1, "data")
                log.warning("batch refused by the database (%s); splitting it", exc)
                result.split = True
                self._split(conn, prepared.accepted, prepared.dead, result, exc)
        return result

    def _split(
        self,
        conn: Connection,
        accepted: list[Accepted],
        dead: list[DeadLetter],
        result: WriteResult,
        error: Exception,
    ) -> None:
        if len(accepted) <= 1:
            refused = [
                DeadLetter(
                    a.inbound,
                    Rejection(Reason.WRITE_ERROR, str(error).strip(), a.device.external_id),
                    a.readings,
                )
                for a in accepted
            ]
            result.refused.extend(refused)
            self._commit(conn, [], dead + refused, result)
            return
        middle = len(accepted) // 2
        for half in (accepted[:middle], accepted[middle:]):
            try:
                self._commit(conn, half, [], result)
            except DATA_ERRORS as exc:
                self._split(conn, half, [], result, exc)
        if dead:
            self._commit(conn, [], dead, result)

    def _ensure_partitions(self, conn: Connection, accepted: list[Accepted]) -> None:
        ranges: dict[str, tuple[int, int]] = {}
        for item in accepted:
            table = _TABLES[item.channel]
            lo, hi = ranges.get(table, (item.tmin_ms, item.tmax_ms))
            ranges[table] = (min(lo, item.tmin_ms), max(hi, item.tmax_ms))
        now_ms = int(time.time() * 1000)
        lo, hi = ranges.get("device_events", (now_ms, now_ms))
        ranges["device_events"] = (min(lo, now_ms), max(hi, now_ms))
        for table, (lo, hi) in ranges.items():
            self.guard.ensure(conn, table, ms_to_datetime(lo), ms_to_datetime(hi))

    def _commit(
        self,
        conn: Connection,
        accepted: list[Accepted],
        dead: list[DeadLetter],
        result: WriteResult,
    ) -> None:
        started = time.perf_counter()
        seen, goodbyes = self._liveness(accepted)
        rows: list[bytes] = []
        row_count = 0
        usage: list[tuple[object, ...]] = []
        events: list[tuple[object, ...]] = []
        states: list[dict[str, object]] = []
        dedup = self._dedup_next
        for item in accepted:
            if item.channel is Channel.TELEMETRY:
                rows.extend(item.rows)
                row_count += item.readings
                dedup = dedup or item.inbound.dup
            elif item.channel is Channel.USAGE:
                usage.extend(item.records)
            elif item.channel is Channel.EVENTS:
                events.extend(item.records)
            else:
                time_at, device_id, report = item.records[0]
                states.append({"time": time_at, "device": device_id, "report": report})
        with conn.transaction():
            batch = TelemetryCopyBatch(rows, row_count)
            if self.telemetry_write == "insert":
                outcome = insert_telemetry(conn, batch)
            else:
                outcome = copy_telemetry(conn, batch, dedup=dedup)
            with conn.cursor() as cur:
                if usage:
                    cur.executemany(_INSERT_USAGE, usage)
                if events:
                    cur.executemany(_INSERT_EVENT, events)
                if states:
                    cur.executemany(_INSERT_STATE, states)
            if dead and self.record_dead_letters:
                self._dead_letters(conn, dead)
            came_online = mark_seen(conn, seen)
            went_offline = mark_goodbyes(conn, goodbyes)
            before_commit = time.perf_counter()
        committed = time.perf_counter()
        now = time.monotonic()
        for s in seen:
            self._touched[s.device_id] = now
        for bye in goodbyes:
            self._touched.pop(bye.device_id, None)
        if len(self._touched) > 1_000_000:
            self._touched.clear()
        if rows:
            self._dedup_next = outcome.duplicates > 0
        result.rows_inserted += outcome.inserted
        result.rows_duplicate += outcome.duplicates
        result.transactions += 1
        self._record(accepted, dead, outcome.inserted, outcome.duplicates, outcome.deduplicated)
        m = self.metrics
        m.commit_seconds.observe(committed - before_commit)
        m.write_seconds.observe(committed - started)
        m.liveness.inc(len(came_online), "online")
        m.liveness.inc(len(went_offline), "offline")

    def _liveness(self, accepted: list[Accepted]) -> tuple[list[Seen], list[Goodbye]]:
        latest: dict[int, Accepted] = {}
        goodbyes: list[Goodbye] = []
        forced: set[int] = set()
        for item in accepted:
            inbound = item.inbound
            if item.channel is Channel.STATE:
                if inbound.retain or item.online is None:
                    continue
                if not item.online:
                    goodbyes.append(
                        Goodbye(
                            item.device.id,
                            datetime.fromtimestamp(inbound.received_at, UTC),
                            item.boot,
                        )
                    )
                    continue
                forced.add(item.device.id)
            current = latest.get(item.device.id)
            if current is None or inbound.received_at >= current.inbound.received_at:
                latest[item.device.id] = item
        now = time.monotonic()
        seen = []
        for device_id, item in latest.items():
            touched = self._touched.get(device_id)
            if (
                device_id not in forced
                and touched is not None
                and now - touched < self.liveness_interval_s
            ):
                continue
            received = item.inbound.received_at
            seen.append(
                Seen(
                    device_id,
                    datetime.fromtimestamp(received, UTC),
                    round(item.sent_ms / 1000 - received, 3),
                    "state" if item.channel is Channel.STATE else "data",
                )
            )
        return seen, goodbyes

    def _dead_letters(self, conn: Connection, dead: list[DeadLetter]) -> None:
        limit = self.dead_letter_payload_bytes
        since = datetime.now(UTC) - _DEAD_DEDUP_WINDOW
        plain: list[tuple[object, ...]] = []
        once: list[dict[str, object]] = []
        for letter in dead:
            inbound, rejection = letter.inbound, letter.rejection
            payload = inbound.payload[:limit]
            detail = rejection.detail
            if len(inbound.payload) > limit:
                detail = f"{detail} (payload cut to {limit} of {len(inbound.payload)} bytes)"
            at = datetime.fromtimestamp(inbound.received_at, UTC)
            values = (
                at,
                _clean(inbound.topic, 1000),
                payload,
                rejection.reason.value,
                _clean(detail),
                _clean(rejection.device_ref, 200),
            )
            if inbound.dup:
                keys = ("at", "topic", "payload", "reason", "detail", "ref")
                once.append({**dict(zip(keys, values, strict=True)), "since": since})
            else:
                plain.append(values)
        with conn.cursor() as cur:
            if plain:
                cur.executemany(_INSERT_DEAD, plain)
            if once:
                cur.executemany(_INSERT_DEAD_ONCE, once)

    def _record(
        self,
        accepted: list[Accepted],
        dead: list[DeadLetter],
        inserted: int,
        duplicates: int,
        deduplicated: bool,
    ) -> None:
        m = self.metrics
        commit_time = time.time()
        telemetry_rows = 0
        for item in accepted:
            channel = item.channel.value
            m.messages_written.inc(1, channel)
            m.readings_written.inc(item.readings, channel)
            m.lag_seconds.observe(max(0.0, commit_time - item.sent_ms / 1000))
            m.reading_age_seconds.observe(max(0.0, commit_time - item.tmin_ms / 1000))
            if item.channel is Channel.TELEMETRY:
                telemetry_rows += item.readings
        for letter in dead:
            m.messages_rejected.inc(1, letter.rejection.reason.value)
            m.readings_rejected.inc(letter.entries, letter.rejection.reason.value)
        m.rows_written.inc(inserted)
        m.rows_duplicate.inc(duplicates)
        if deduplicated and telemetry_rows:
            m.dedup_batches.inc()
        m.batches.inc()
        m.batch_messages.observe(len(accepted) + len(dead))
        m.batch_rows.observe(telemetry_rows)


_TABLES = {
    Channel.TELEMETRY: "telemetry",
    Channel.USAGE: "usage_records",
    Channel.EVENTS: "device_events",
    Channel.STATE: "device_state_reports",
}
