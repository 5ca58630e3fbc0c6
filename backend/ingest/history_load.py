"""Load a simulated fleet's history (the days before a live span) through ingest's writer.

A fleet in the field has been reporting for weeks when anyone looks at it; the failure
models read a window of daily means (28 days) and compare its recent days with the first
half. ``fleetcare demo`` therefore gives its fleet that history before the live span
starts: :func:`load_history` encodes the simulator's readings of the days before the span
(:func:`firmware_sim.history.history_readings`) as the device SDK's telemetry batches (one
per device and day, split under the payload limit), and writes them with the same
:class:`BatchWriter` (checks, partitions, binary COPY, deduplication) the ingest service
uses, then refreshes the rollups over the range, which the scorer reads. Only the age
limit differs: history is older than the ``max_past_s`` a live service accepts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
import psycopg

from backend.ingest.metrics import IngestMetrics
from backend.ingest.pending import Inbound
from backend.ingest.server_traits import probe_server
from backend.ingest.service import build_writer
from backend.ingest.settings import IngestSettings
from backend.storage.migrator import dialect_of
from device_sdk import wire
from firmware_sim.history import DeviceDay

#: Messages per write (a transaction each).
_MESSAGES_PER_WRITE = 200
_BOOT = "history"
#: Bytes of entries per batch, well under the wire's limit (``MAX_PAYLOAD_BYTES``).
_PAYLOAD_BUDGET = wire.MAX_PAYLOAD_BYTES // 2


class HistoryLoadError(RuntimeError):
    """The database refused part of the history (it is kept in the dead letters)."""


@dataclass(frozen=True)
class HistoryLoad:
    """What :func:`load_history` stored (``readings``: telemetry rows inserted)."""

    readings: int
    devices: int
    first: datetime | None
    last: datetime | None
    wall_s: float


def _payloads(day: DeviceDay, seq0: int) -> list[bytes]:
    """The day's readings as telemetry batches, each within the wire's size limits."""
    times_ms = [int(at.timestamp() * 1000) for at, _ in day.readings]
    entries = [
        (seq0 + k, orjson.dumps({"t": t_ms, "m": metrics}))
        for k, (t_ms, (_, metrics)) in enumerate(zip(times_ms, day.readings, strict=True))
    ]
    payloads: list[bytes] = []
    start = size = 0
    for k in range(len(entries) + 1):
        full = k == len(entries) or size + len(entries[k][1]) > _PAYLOAD_BUDGET
        if k > start and (full or k - start == wire.MAX_BATCH_ENTRIES):
            payloads.append(
                wire.encode_batch(
                    device=day.device_id,
                    kind=wire.BatchKind.TELEMETRY,
                    boot=_BOOT,
                    sent=times_ms[k - 1],
                    up=None,
                    dropped=0,
                    entries=entries[start:k],
                )
            )
            start, size = k, 0
        if k < len(entries):
            size += len(entries[k][1]) + 16
    return payloads


def load_history(
    database_url: str,
    topic_root: str,
    days: Iterable[DeviceDay],
    *,
    oldest: datetime,
    settings: IngestSettings | None = None,
    progress: Callable[[int], None] | None = None,
) -> HistoryLoad:
    """Write ``days`` (readings of registered devices) and refresh the rollups over them.

    ``oldest``: the earliest reading time to accept (the history's start). ``settings``:
    the ingest service's (default: its defaults); ``max_past_s`` is widened to ``oldest``.
    ``progress`` is called with the readings written so far after each write.

    Raises:
        HistoryLoadError: some messages were dead-lettered or refused (for instance a
            device that is not registered); what was valid is stored.
    """
    started = time.monotonic()
    past_s = (datetime.now(UTC) - oldest).total_seconds() + 86_400
    settings = (settings or IngestSettings()).model_copy(
        update={"max_past_s": max(past_s, 86_400.0)}
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        dialect = dialect_of(conn)
    writer = build_writer(
        database_url,
        topic_root,
        settings,
        dialect,
        IngestMetrics(),
        server=probe_server(database_url, settings.telemetry_write),
    )
    seqs: dict[str, int] = {}
    readings, first, last = 0, None, None
    refused: list[str] = []
    batch: list[Inbound] = []

    def flush() -> None:
        nonlocal readings
        if not batch:
            return
        result = writer.write(batch)
        refused.extend(f"{d.rejection.reason}: {d.rejection.detail}" for d in result.prepared.dead)
        refused.extend(f"{d.rejection.reason}: {d.rejection.detail}" for d in result.refused)
        readings += result.rows_inserted
        batch.clear()
        if progress is not None:
            progress(readings)

    try:
        for day in days:
            if not day.readings:
                continue
            seq0 = seqs.get(day.device_id, 1)
            seqs[day.device_id] = seq0 + len(day.readings)
            topic = wire.build_topic(day.device_id, wire.Channel.TELEMETRY, topic_root)
            batch.extend(Inbound(topic, payload) for payload in _payloads(day, seq0))
            first = day.readings[0][0] if first is None else min(first, day.readings[0][0])
            last = day.readings[-1][0] if last is None else max(last, day.readings[-1][0])
            if len(batch) >= _MESSAGES_PER_WRITE:
                flush()
        flush()
    finally:
        writer.close()
    if first is not None and last is not None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            dialect.refresh_rollups(conn, first, last + timedelta(seconds=1))
    if refused:
        raise HistoryLoadError(
            f"{len(refused)} history message(s) refused, kept in the dead letters "
            f"(`fleetcare ingest dlq list`); the first: {refused[0]}"
        )
    return HistoryLoad(readings, len(seqs), first, last, time.monotonic() - started)
