"""``DeviceClient``: the synchronous face of the SDK."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from types import TracebackType

from device_sdk._entries import AttrValue, Reading
from device_sdk._surface import ClientSurface
from device_sdk.wire.payloads import Severity


class DeviceClient(ClientSurface):
    """A device's connection to fleetcare: durable, bounded, observable, duplicate-safe.

    ``record()``, ``usage()`` and ``event()`` validate their input, append it to the
    on-disk queue and return its sequence number; they never wait for the network. A
    background thread publishes the queue in batches with QoS 1 and removes entries only
    once the broker acknowledged them.

    Example::

        config = DeviceConfig(device_id="pump-0042", broker_urls=["mqtt://broker:1883"],
                              queue_path=Path("/var/lib/acme/fleetcare"))
        with DeviceClient(config) as client:
            seq = client.record({"temp_c": 21.5, "rpm": 1450})

    The client can be started again after ``stop()``; it cannot be started twice.
    """

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Open the queue and start publishing in the background. Returns at once.

        Raises:
            ClientStateError: already started.
            QueueLockedError: another client uses ``queue_path``.
            QueueError: ``queue_path`` cannot be used.
            ConfigError: TLS files cannot be loaded.
        """
        self._core.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Deliver what it can within ``timeout`` seconds, then disconnect and close the queue.

        Undelivered entries stay on disk and are sent after the next start.
        """
        self._core.stop(timeout)

    def __enter__(self) -> DeviceClient:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ recording

    def record(self, metrics: Mapping[str, float | None], at: datetime | None = None) -> int:
        """Queue one reading: one or many metrics at one time. Returns its sequence number.

        Args:
            metrics: metric name to value; ``None`` marks a metric as unavailable.
            at: when it was measured (timezone-aware); default now, on the device's clock.

        Raises:
            InvalidInputError: NaN/inf, a non-number, a bad name, too many metrics, naive
                ``at``; nothing is queued.
            UnknownMetricError: a name outside ``metric_catalogue``; nothing is queued.
            ClientStateError: the client is not started.
        """
        return self._core.record(metrics, at)

    def record_many(
        self,
        readings: Iterable[Reading | tuple[datetime | None, Mapping[str, float | None]]],
    ) -> range:
        """Queue many readings with one disk write; all or none. Returns their sequence numbers.

        Raises:
            InvalidInputError: any reading is invalid, or more than ``max_record_many``.
        """
        return self._core.record_many(readings)

    def usage(
        self,
        name: str,
        value: float | None = None,
        *,
        unit: str | None = None,
        duration_s: float | None = None,
        attrs: Mapping[str, AttrValue] | None = None,
        at: datetime | None = None,
    ) -> int:
        """Queue a usage record (session, feature use, duty cycle, operating hours).

        Example: ``client.usage("wash_cycle", duration_s=3420, attrs={"program": "eco"})``.
        """
        return self._core.usage(name, value, unit=unit, duration_s=duration_s, attrs=attrs, at=at)

    def event(
        self,
        event_type: str,
        *,
        severity: Severity | str = Severity.INFO,
        code: str | None = None,
        message: str | None = None,
        attrs: Mapping[str, AttrValue] | None = None,
        at: datetime | None = None,
    ) -> int:
        """Queue a device event (fault, error, maintenance, reboot, ...).

        Example: ``client.event("fault", severity="error", code="E42", message="pump dry")``.
        """
        return self._core.event(
            event_type, severity=severity, code=code, message=message, attrs=attrs, at=at
        )

    # ------------------------------------------------------------------ observing

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until the broker acknowledged every queued entry.

        Raises:
            FlushTimeoutError: entries remain after ``timeout`` s (they stay queued).
        """
        self._core.flush(timeout)

    def wait_connected(self, timeout: float = 10.0) -> None:
        """Wait until a broker session is up.

        Raises:
            ConnectTimeoutError: not connected in time (``last_error`` says why).
        """
        self._core.wait_connected(timeout)
