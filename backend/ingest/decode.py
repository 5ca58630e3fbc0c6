"""First check of a message, without the database: topic, size, encoding, schema, clocks.

:func:`Decoder.decode` turns an :class:`Inbound` into a :class:`Decoded` (the validated batch
or state message) or a :class:`Rejection` with its :class:`Reason`. Device and metric lookups
come later, per batch (:mod:`backend.ingest.prepare`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from typing import Any

import orjson

from backend.ingest.pending import Inbound
from backend.ingest.reasons import Reason, Rejection
from backend.ingest.telemetry_fast import TelemetryColumns, decode_telemetry
from device_sdk.wire import (
    TOPIC_VERSION,
    Channel,
    DecodedBatch,
    PayloadError,
    StateMessage,
    TopicError,
    decode_batch,
    decode_model,
    parse_topic,
)

#: The channels ingest subscribes to.
INGEST_CHANNELS: tuple[Channel, ...] = (
    Channel.TELEMETRY,
    Channel.USAGE,
    Channel.EVENTS,
    Channel.STATE,
)


@dataclass(slots=True)
class Decoded:
    """A message that passed the checks that need no database.

    Attributes:
        inbound: the message.
        channel: its channel (from the topic).
        device_ref: the device's external id (topic and payload agree).
        batch: the validated entries (usage, events).
        telemetry: the validated readings as columns (telemetry).
        state: the validated state message (state channel).
        time_ms: for the state channel, the time its report is stored under.
        times: the entries' times, in order (batch channels).
    """

    inbound: Inbound
    channel: Channel
    device_ref: str
    batch: DecodedBatch | None = None
    telemetry: TelemetryColumns | None = None
    state: StateMessage | None = None
    time_ms: int = 0
    times: list[int] = field(default_factory=list)

    @property
    def entry_count(self) -> int:
        """Readings, usage records or events in the message (1 for a state report)."""
        return len(self.times) if self.state is None else 1


_TIME = itemgetter("t")


@lru_cache(maxsize=65_536)
def _topic(topic: str, root: str) -> tuple[str, Channel] | Rejection:
    try:
        parts = parse_topic(topic)
    except TopicError as exc:
        return Rejection(Reason.BAD_TOPIC, exc.reason)
    if parts.root != root or parts.version != TOPIC_VERSION:
        return Rejection(Reason.BAD_TOPIC, f"expected {root}/v{TOPIC_VERSION}/…", parts.device_id)
    if parts.channel not in INGEST_CHANNELS:
        return Rejection(
            Reason.BAD_TOPIC,
            f"channel {parts.channel.value} is not read by ingest",
            parts.device_id,
        )
    return parts.device_id, parts.channel


def _unparseable(payload: bytes, error: str, device_ref: str) -> Rejection:
    """Tell JSON that only lacks finite numbers (NaN, Infinity, 1e999) from garbage."""
    try:
        json.loads(payload)
    except Exception:
        return Rejection(Reason.MALFORMED, error, device_ref)
    return Rejection(Reason.NON_FINITE, f"a number is NaN or infinite: {error}", device_ref)


def _device_mismatch(payload_device: str, device_ref: str) -> Rejection:
    return Rejection(
        Reason.DEVICE_MISMATCH,
        f"payload device {payload_device!r} is not the topic's {device_ref!r}",
        device_ref,
    )


def _has_nul(value: object) -> bool:
    return isinstance(value, str) and "\x00" in value


def _nested_nul(doc: object) -> bool:
    """Whether any string (key or value) anywhere in ``doc`` holds a NUL character."""
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _nul_in_entry(entry: dict[str, Any]) -> bool:
    for key in ("code", "msg", "unit"):
        if _has_nul(entry.get(key)):
            return True
    attrs = entry.get("attrs")
    return isinstance(attrs, dict) and any(_has_nul(v) for v in attrs.values())


class Decoder:
    """Checks one message against the wire contract and the ingest's limits.

    Args:
        root: the topic root ingest subscribes under.
        max_payload_bytes: larger payloads are rejected (``too_large``).
        max_future_s / max_past_s: the accepted window of entry times around the server clock.
    """

    def __init__(
        self, root: str, max_payload_bytes: int, max_future_s: float, max_past_s: float
    ) -> None:
        self.root = root
        self.max_payload_bytes = max_payload_bytes
        self.max_future_ms = int(max_future_s * 1000)
        self.max_past_ms = int(max_past_s * 1000)

    def decode(self, message: Inbound, now_ms: int) -> Decoded | Rejection:
        """The validated message, or why it is refused. Never raises on bad input."""
        route = _topic(message.topic, self.root)
        if isinstance(route, Rejection):
            return route
        device_ref, channel = route
        payload = message.payload
        if len(payload) > self.max_payload_bytes:
            return Rejection(
                Reason.TOO_LARGE,
                f"payload of {len(payload)} bytes exceeds {self.max_payload_bytes}",
                device_ref,
            )
        if channel is Channel.STATE:
            return self._state(message, device_ref, now_ms)
        columns = decode_telemetry(payload) if channel is Channel.TELEMETRY else None
        if columns is not None:
            if columns.device != device_ref:
                return _device_mismatch(columns.device, device_ref)
            return self._telemetry(message, device_ref, now_ms, columns)
        try:
            batch = decode_batch(payload)
        except PayloadError as exc:
            return self._classify(payload, exc.reason, device_ref)
        except (RecursionError, MemoryError, ValueError) as exc:  # defensive: never crash
            return Rejection(Reason.MALFORMED, f"{type(exc).__name__}: {exc}", device_ref)
        if batch.device != device_ref:
            return _device_mismatch(batch.device, device_ref)
        if batch.kind.value != channel.value:
            return Rejection(
                Reason.KIND_MISMATCH,
                f"payload kind {batch.kind.value!r} on the {channel.value} channel",
                device_ref,
            )
        if channel is Channel.TELEMETRY:
            return self._telemetry(message, device_ref, now_ms, TelemetryColumns.of_batch(batch))
        entries = batch.entries
        times = list(map(_TIME, entries))
        rejection = self._check_times(min(times), max(times), now_ms, device_ref)
        if rejection is not None:
            return rejection
        if any(_nul_in_entry(e) for e in entries):
            return Rejection(Reason.SCHEMA, "a text field holds a NUL character", device_ref)
        return Decoded(message, channel, device_ref, batch=batch, times=times)

    def _telemetry(
        self, message: Inbound, device_ref: str, now_ms: int, columns: TelemetryColumns
    ) -> Decoded | Rejection:
        times = columns.times
        rejection = self._check_times(min(times), max(times), now_ms, device_ref)
        if rejection is not None:
            return rejection
        return Decoded(message, Channel.TELEMETRY, device_ref, telemetry=columns, times=times)

    def _check_times(self, tmin: int, tmax: int, now_ms: int, device_ref: str) -> Rejection | None:
        if tmax > now_ms + self.max_future_ms:
            return Rejection(
                Reason.TIMESTAMP_FUTURE,
                f"entry time {tmax} ms is {(tmax - now_ms) / 1000:.1f} s ahead of the server "
                f"(limit {self.max_future_ms / 1000:g} s)",
                device_ref,
            )
        if tmin < now_ms - self.max_past_ms:
            return Rejection(
                Reason.TIMESTAMP_PAST,
                f"entry time {tmin} ms is {(now_ms - tmin) / 1000:.0f} s old "
                f"(limit {self.max_past_ms / 1000:g} s)",
                device_ref,
            )
        return None

    def _classify(self, payload: bytes, reason: str, device_ref: str) -> Rejection:
        if reason.startswith("not JSON"):
            return _unparseable(payload, reason, device_ref)
        if reason.startswith("payload must be a JSON object"):
            return Rejection(Reason.MALFORMED, reason, device_ref)
        if reason.startswith("payload of"):
            return Rejection(Reason.TOO_LARGE, reason, device_ref)
        return Rejection(Reason.SCHEMA, reason, device_ref)

    def _state(self, message: Inbound, device_ref: str, now_ms: int) -> Decoded | Rejection:
        try:
            doc = orjson.loads(message.payload)
        except orjson.JSONDecodeError as exc:
            return _unparseable(message.payload, f"not JSON: {exc}", device_ref)
        if not isinstance(doc, dict):
            return Rejection(Reason.MALFORMED, "payload must be a JSON object", device_ref)
        try:
            state = decode_model(message.payload, StateMessage)
        except PayloadError as exc:
            return Rejection(Reason.SCHEMA, exc.reason, device_ref)
        if state.device != device_ref:
            return Rejection(
                Reason.DEVICE_MISMATCH,
                f"payload device {state.device!r} is not the topic's {device_ref!r}",
                device_ref,
            )
        if _nested_nul(doc):
            return Rejection(Reason.SCHEMA, "a text field holds a NUL character", device_ref)
        in_window = self._check_times(state.sent, state.sent, now_ms, device_ref) is None
        # A last will carries the time its device connected: store it under the receive time
        # when the device's clock is outside the accepted window.
        time_ms = state.sent if in_window else int(message.received_at * 1000)
        return Decoded(message, Channel.STATE, device_ref, state=state, time_ms=time_ms)
