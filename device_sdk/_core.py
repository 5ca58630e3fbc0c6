"""The one implementation behind ``DeviceClient`` and ``AsyncDeviceClient``.

It owns the durable queue, the I/O thread (``Publisher``) and the down-link worker, and
turns ``record``/``usage``/``event`` calls into queue entries. None of its recording paths
touch the network: they validate, append to the queue (one ``write(2)``) and return.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from device_sdk._clock import boot_id, now_ms, uptime_ms
from device_sdk._config import DeviceConfig, Durability
from device_sdk._downlink import CommandHandler, ConfigHandler, Downlink
from device_sdk._entries import AttrValue, EntryEncoder, Reading
from device_sdk._errors import (
    ClientStateError,
    ConnectTimeoutError,
    FlushTimeoutError,
    QueueClosedError,
)
from device_sdk._publisher import KIND_TAGS, Publisher
from device_sdk._version import __version__
from device_sdk.queue import DurableQueue
from device_sdk.wire.codec import encode_model
from device_sdk.wire.payloads import (
    SCHEMA_VERSION,
    BatchKind,
    DesiredConfig,
    Health,
    ReportStatus,
    Severity,
    StateMessage,
)

_log = logging.getLogger("device_sdk")

_TELEMETRY = KIND_TAGS[BatchKind.TELEMETRY]
_USAGE = KIND_TAGS[BatchKind.USAGE]
_EVENTS = KIND_TAGS[BatchKind.EVENTS]

DROPPED_EVENT = "sdk.dropped"
"""Event type the SDK records when its queue bound drops entries."""


class Core:
    """Shared engine; see the module docstring. Thread-safe."""

    def __init__(self, config: DeviceConfig) -> None:
        self.config = config
        self._encoder = EntryEncoder(
            catalogue=config.metric_catalogue, max_metrics=config.max_metrics_per_reading
        )
        self._fsync = config.durability is Durability.FSYNC
        self._lifecycle = threading.Lock()
        self._queue: DurableQueue | None = None
        self._publisher: Publisher | None = None
        self._downlink = Downlink(config.device_id, config.command_queue_size)
        self._acked = threading.Condition()
        self._first_index = 0
        self._last_health: Health | None = None
        self._boot = boot_id()

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        return self._queue is not None

    def start(self) -> None:
        """Open the queue and start the I/O and handler threads; does not wait for a broker.

        Raises:
            ClientStateError: already started.
            QueueError: the queue directory cannot be used (e.g. another process holds it).
            ConfigError: TLS files cannot be loaded.
        """
        with self._lifecycle:
            if self._queue is not None:
                raise ClientStateError("client already started")
            config = self.config
            tls_context = None
            if any(broker.tls for broker in config.brokers) and config.tls is not None:
                tls_context = config.tls.ssl_context()
            queue = DurableQueue(
                config.queue_path,
                max_bytes=config.queue_max_bytes,
                segment_bytes=config.segment_bytes,
                label=self._boot,
            )
            try:
                publisher = Publisher(
                    config,
                    queue,
                    boot=self._boot,
                    tls_context=tls_context,
                    state_payload=self._state_payload,
                    on_message=self._downlink.on_message,
                    on_acked=self._notify_acked,
                    on_drops=lambda: self._report_drops(queue),
                )
                self._first_index = queue.next_index
                self._queue = queue
                self._publisher = publisher
                self._downlink.start(publisher.send)
                publisher.start()
            except BaseException:
                self._queue = self._publisher = None
                self._downlink.stop(timeout=1.0)
                queue.close()  # release the directory lock
                raise
            _log.info(
                "device_sdk: %s started (queue %s: %d entries waiting, next seq %d)",
                config.device_id,
                config.queue_path,
                queue.stats().items,
                queue.next_index,
            )

    def stop(self, timeout: float) -> None:
        """Send what can be sent within ``timeout`` s, disconnect, close the queue.

        Entries not delivered stay on disk and are sent after the next ``start()``.
        """
        with self._lifecycle:
            queue, publisher = self._queue, self._publisher
            if queue is None or publisher is None:
                return
            try:
                publisher.stop(timeout)
                self._last_health = self._health(queue, publisher)
            finally:
                self._queue = None
                self._publisher = None
                self._downlink.stop(timeout=2.0)
                queue.close()
            with self._acked:
                self._acked.notify_all()

    # ------------------------------------------------------------------ recording

    def _require(self) -> tuple[DurableQueue, Publisher]:
        queue, publisher = self._queue, self._publisher
        if queue is None or publisher is None:
            raise ClientStateError("client is not started: call start() (or use `with`)")
        return queue, publisher

    def _append(self, bodies: list[bytes], tag: int) -> range:
        queue, publisher = self._require()
        try:
            indexes = queue.append_many(bodies, tag=tag)
        except QueueClosedError:
            raise ClientStateError("client was stopped") from None
        if self._fsync:
            queue.sync(indexes.stop - 1)
        publisher.notify()
        return indexes

    def record(self, metrics: Mapping[str, float | None], at: datetime | None) -> int:
        queue, publisher = self._require()
        body = self._encoder.reading(metrics, at)
        try:
            index = queue.append(body, tag=_TELEMETRY)
        except QueueClosedError:
            raise ClientStateError("client was stopped") from None
        if self._fsync:
            queue.sync(index)
        publisher.notify()
        return index

    def record_many(
        self,
        readings: Iterable[Reading | tuple[datetime | None, Mapping[str, float | None]]],
    ) -> range:
        self._require()
        bodies = self._encoder.readings(readings, self.config.max_record_many)
        return self._append(bodies, _TELEMETRY)

    def usage(
        self,
        name: str,
        value: float | None,
        *,
        unit: str | None,
        duration_s: float | None,
        attrs: Mapping[str, AttrValue] | None,
        at: datetime | None,
    ) -> int:
        self._require()
        body = self._encoder.usage(
            name, value, unit=unit, duration_s=duration_s, attrs=attrs, at=at
        )
        return self._append([body], _USAGE).start

    def event(
        self,
        event_type: str,
        *,
        severity: Severity | str,
        code: str | None,
        message: str | None,
        attrs: Mapping[str, AttrValue] | None,
        at: datetime | None,
    ) -> int:
        self._require()
        body = self._encoder.event(
            event_type, severity=severity, code=code, message=message, attrs=attrs, at=at
        )
        return self._append([body], _EVENTS).start

    def _report_drops(self, queue: DurableQueue) -> None:
        """Record the pending drop report as an ``sdk.dropped`` event (I/O thread, online).

        Called only while connected, so the report goes out promptly instead of waiting in
        a full queue, where the bound could drop the report itself.
        """
        report = queue.take_drops()
        if report is None:
            return
        body = self._encoder.event(
            DROPPED_EVENT,
            severity=Severity.WARNING,
            code="queue_bound",
            message=f"queue bound reached: {report.count} entries dropped, oldest first",
            attrs={
                "count": report.count,
                "first_seq": report.first_index,
                "last_seq": report.last_index,
            },
            at=None,
        )
        queue.append(body, tag=_EVENTS)

    # ------------------------------------------------------------------ waiting

    def _notify_acked(self) -> None:
        with self._acked:
            self._acked.notify_all()

    def flush(self, timeout: float) -> None:
        """Block until every queued entry is acknowledged by the broker.

        Raises:
            FlushTimeoutError: entries remain after ``timeout`` s (they stay queued).
        """
        queue, publisher = self._require()
        deadline = time.monotonic() + timeout
        publisher.begin_flush()
        try:
            with self._acked:
                while True:
                    if self._queue is not queue:
                        raise ClientStateError("client was stopped during flush()")
                    remaining = queue.stats().items
                    if remaining == 0:
                        return
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise FlushTimeoutError(remaining, timeout)
                    self._acked.wait(min(left, 0.1))
        finally:
            publisher.end_flush()

    def wait_connected(self, timeout: float) -> None:
        _queue, publisher = self._require()
        if not publisher.wait_connected(timeout):
            raise ConnectTimeoutError(timeout, publisher.last_error)

    # ------------------------------------------------------------------ health

    def health(self) -> Health:
        queue, publisher = self._queue, self._publisher
        if queue is None or publisher is None:
            if self._last_health is not None:
                return self._last_health
            raise ClientStateError("client was never started")
        return self._health(queue, publisher)

    def _health(self, queue: DurableQueue, publisher: Publisher) -> Health:
        stats = queue.stats()
        oldest = queue.oldest_unacked_ms() if stats.items else None
        broker, protocol = publisher.link_info
        return Health(
            connected=publisher.connected,
            broker=broker,
            protocol=protocol,
            queued=stats.items,
            in_flight=publisher.in_flight_entries,
            sent=publisher.sent,
            recorded=stats.next_index - self._first_index,
            dropped=stats.dropped,
            reconnects=publisher.reconnects,
            connect_failures=publisher.connect_failures,
            unrouted=publisher.unrouted,
            oldest_unsent_age_s=max(0.0, (now_ms() - oldest) / 1000) if oldest else None,
            queue_bytes=stats.bytes,
            queue_max_bytes=stats.max_bytes,
            queue_fill=round(min(1.0, stats.fill), 4),
            last_seq=stats.next_index - 1 if stats.next_index > 1 else None,
            last_error=publisher.last_error,
        )

    def _state_payload(self, online: bool) -> bytes:
        health = None
        if online and self._queue is not None and self._publisher is not None:
            health = self._health(self._queue, self._publisher)
        message = StateMessage(
            v=SCHEMA_VERSION,
            device=self.config.device_id,
            boot=self._boot,
            sent=now_ms(),
            up=uptime_ms(),
            online=online,
            health=health,
            sdk=f"fleetcare-device-sdk/{__version__}",
        )
        return encode_model(message)

    # ------------------------------------------------------------------ down-link

    @property
    def downlink(self) -> Downlink:
        return self._downlink

    def add_command(self, name: str, handler: CommandHandler) -> None:
        self._downlink.add_command(name, handler)

    def set_config_handler(self, handler: ConfigHandler | None) -> None:
        self._downlink.set_config_handler(handler)

    @property
    def desired_config(self) -> DesiredConfig | None:
        return self._downlink.desired

    def report_config(
        self,
        version: int,
        config: Mapping[str, Any] | None,
        status: ReportStatus | str,
        error: str | None,
    ) -> None:
        self._require()
        self._downlink.report(
            version, dict(config) if config is not None else None, ReportStatus(status), error
        )
