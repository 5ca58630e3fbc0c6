"""Second check of a batch, with the database's catalogue: devices, metrics, rows to write.

:func:`Preparer.prepare` takes the messages of one batch and returns a :class:`Prepared`:
for each message either an :class:`Accepted` (with its rows already packed for COPY) or a
:class:`DeadLetter`. A message is accepted or refused as a whole.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
from psycopg.types.json import Jsonb

from backend.ingest.decode import Decoded, Decoder
from backend.ingest.pending import Inbound
from backend.ingest.reasons import Reason, Rejection
from backend.ingest.resolver import DECOMMISSIONED, DeviceInfo, Resolver
from backend.ingest.telemetry_fast import TelemetryColumns
from backend.storage.copy_writer import pack_reading, pack_readings
from backend.storage.dialect import Connection
from device_sdk.wire import Channel

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ms_to_datetime(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


@dataclass(slots=True)
class Accepted:
    """A valid message and what it writes.

    Attributes:
        rows: telemetry rows packed for COPY, one part per row or block of rows.
        records: usage / event / state rows, as parameter tuples of their INSERT.
        readings: entries in the message (readings, usage records or events; 1 for state).
        tmin_ms / tmax_ms: the range of entry times (for partitions and lag).
        sent_ms: the device's send time (envelope ``sent``).
        online: for a state message, the ``online`` it reports.
    """

    inbound: Inbound
    channel: Channel
    device: DeviceInfo
    readings: int
    tmin_ms: int
    tmax_ms: int
    sent_ms: int
    rows: list[bytes] = field(default_factory=list)
    records: list[tuple[Any, ...]] = field(default_factory=list)
    online: bool | None = None
    boot: str = ""


@dataclass(slots=True)
class DeadLetter:
    """A refused message and why."""

    inbound: Inbound
    rejection: Rejection
    entries: int = 0
    """Entries the message held, when it decoded (0 otherwise)."""


@dataclass
class Prepared:
    """A batch after both checks."""

    accepted: list[Accepted] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)

    @property
    def messages(self) -> list[Inbound]:
        return [a.inbound for a in self.accepted] + [d.inbound for d in self.dead]


class _UnknownMetricError(Exception):
    def __init__(self, name: str) -> None:
        self.name = name


def _telemetry_rows(
    columns: TelemetryColumns, device_id: int, positions: dict[str, int]
) -> list[bytes]:
    """The message's rows, packed for COPY: one block when every reading has the same
    metrics, all present (the common case); else one part per reading."""
    readings = columns.metrics
    names = tuple(readings[0])
    try:
        slots = [positions[name] - 1 for name in names]
    except KeyError as exc:
        raise _UnknownMetricError(str(exc.args[0])) from None
    width = max(slots) + 1
    count = len(readings)
    if width == len(slots) and sum(map(len, readings)) == width * count:
        # The same names in every reading (in any order), fetched in ``names`` order straight
        # into one array (no tuple per reading). A missing name (KeyError) or a null value
        # (TypeError) takes the reading-by-reading path.
        fetch = itemgetter(*names)
        flat = map(fetch, readings) if width == 1 else chain.from_iterable(map(fetch, readings))
        try:
            values = np.fromiter(flat, np.float64, count * width).reshape(count, width)
        except (KeyError, TypeError, ValueError):
            values = None
        if values is not None and not np.isnan(values).any():
            if slots != list(range(width)):  # None became NaN above: those need NULLs
                ordered = np.empty_like(values)
                ordered[:, slots] = values
                values = ordered
            return [pack_readings(columns.times, device_id, columns.seqs, values)]
    return _rows_one_by_one(columns, device_id, positions)


def _rows_one_by_one(
    columns: TelemetryColumns, device_id: int, positions: dict[str, int]
) -> list[bytes]:
    rows: list[bytes] = []
    for seq, time_ms, metrics in zip(columns.seqs, columns.times, columns.metrics, strict=True):
        try:
            slots = [positions[name] - 1 for name in metrics]
        except KeyError as exc:
            raise _UnknownMetricError(str(exc.args[0])) from None
        vals: list[float | None] = [None] * (max(slots) + 1)
        for slot, value in zip(slots, metrics.values(), strict=True):
            vals[slot] = value
        rows.append(pack_reading(time_ms, device_id, seq, vals))
    return rows


def _usage_records(decoded: Decoded, device: DeviceInfo) -> list[tuple[Any, ...]]:
    assert decoded.batch is not None
    records = []
    for entry in decoded.batch.entries:
        attrs = dict(entry.get("attrs") or {})
        kind = attrs.pop("kind", None)
        if entry.get("unit") is not None:
            attrs["unit"] = entry["unit"]
        records.append(
            (
                ms_to_datetime(entry["t"]),
                device.id,
                entry["seq"],
                kind if isinstance(kind, str) and kind else "usage",
                entry["name"],
                entry.get("value"),
                entry.get("dur"),
                Jsonb(attrs),
            )
        )
    return records


def _event_records(decoded: Decoded, device: DeviceInfo) -> list[tuple[Any, ...]]:
    assert decoded.batch is not None
    received = datetime.fromtimestamp(decoded.inbound.received_at, UTC)
    return [
        (
            ms_to_datetime(entry["t"]),
            device.id,
            entry["seq"],
            entry["type"],
            entry.get("severity", "info"),
            entry.get("code"),
            entry.get("msg"),
            Jsonb(entry.get("attrs") or {}),
            received,
        )
        for entry in decoded.batch.entries
    ]


class Preparer:
    """Runs both checks over a batch of messages."""

    def __init__(self, decoder: Decoder, resolver: Resolver) -> None:
        self.decoder = decoder
        self.resolver = resolver

    def prepare(self, conn: Connection, messages: list[Inbound]) -> Prepared:
        """Check ``messages``; reads devices and metrics through ``conn`` on cache misses."""
        prepared = Prepared()
        now_ms = time.time_ns() // 1_000_000
        decoded: list[Decoded] = []
        for message in messages:
            result = self.decoder.decode(message, now_ms)
            if isinstance(result, Rejection):
                prepared.dead.append(DeadLetter(message, result))
            else:
                decoded.append(result)
        if not decoded:
            return prepared
        devices = self.resolver.devices(conn, (d.device_ref for d in decoded))
        for item in decoded:
            device = devices.get(item.device_ref)
            entries = item.entry_count
            if device is None:
                rejection = Rejection(Reason.UNKNOWN_DEVICE, "no such device", item.device_ref)
            elif device.status == DECOMMISSIONED:
                rejection = Rejection(
                    Reason.DECOMMISSIONED_DEVICE, "the device is decommissioned", item.device_ref
                )
            else:
                outcome = self._accept(conn, item, device)
                if isinstance(outcome, Accepted):
                    prepared.accepted.append(outcome)
                    continue
                rejection = outcome
            prepared.dead.append(DeadLetter(item.inbound, rejection, entries))
        return prepared

    def _accept(self, conn: Connection, item: Decoded, device: DeviceInfo) -> Accepted | Rejection:
        if item.channel is Channel.STATE:
            state = item.state
            assert state is not None
            time_at = ms_to_datetime(item.time_ms)
            record = (time_at, device.id, item.inbound.payload.decode())
            return Accepted(
                item.inbound,
                item.channel,
                device,
                readings=1,
                tmin_ms=item.time_ms,
                tmax_ms=item.time_ms,
                sent_ms=state.sent,
                records=[record],
                online=state.online,
                boot=state.boot,
            )
        batch = item.batch
        times = item.times
        columns = item.telemetry
        if columns is not None:
            sent_ms = columns.sent
        else:
            assert batch is not None  # usage and events
            sent_ms = batch.sent
        accepted = Accepted(
            item.inbound,
            item.channel,
            device,
            readings=len(times),
            tmin_ms=min(times),
            tmax_ms=max(times),
            sent_ms=sent_ms,
        )
        if columns is not None:
            rows = self._rows(conn, columns, device)
            if isinstance(rows, Rejection):
                return rows
            accepted.rows = rows
        elif item.channel is Channel.USAGE:
            accepted.records = _usage_records(item, device)
        else:
            accepted.records = _event_records(item, device)
        return accepted

    def _rows(
        self, conn: Connection, columns: TelemetryColumns, device: DeviceInfo
    ) -> list[bytes] | Rejection:
        positions = self.resolver.positions(conn, device.model_id)
        if not positions:
            self.resolver.learn_catalogue(conn, device.model_id, _names_in_order(columns.metrics))
            positions = self.resolver.positions(conn, device.model_id)
        try:
            return _telemetry_rows(columns, device.id, positions)
        except _UnknownMetricError as exc:
            missing = exc.name
        if self.resolver.reread_after_miss(conn):
            positions = self.resolver.positions(conn, device.model_id)
            try:
                return _telemetry_rows(columns, device.id, positions)
            except _UnknownMetricError as exc:
                missing = exc.name
        return Rejection(
            Reason.UNKNOWN_METRIC,
            f"metric {missing!r} is not in the catalogue of the device's model",
            device.external_id,
        )


def _names_in_order(readings: list[dict[str, float | None]]) -> list[str]:
    """Metric names in order of first appearance (a new model's catalogue positions)."""
    names: dict[str, None] = {}
    for metrics in readings:
        names.update(dict.fromkeys(metrics))
    return list(names)[:1024]
