"""``AsyncDeviceClient``: the asyncio face of the same engine as ``DeviceClient``.

Nothing here blocks the event loop: starting, stopping, flushing and waiting run in a
worker thread; recording is a few microseconds of CPU and one ``write(2)`` to the page
cache, so it runs inline, except with ``durability="fsync"`` where the ``fdatasync`` runs
in a worker thread. Command and config handlers may be coroutine functions; they run on
the loop that started the client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import TracebackType

from device_sdk._config import DeviceConfig, Durability
from device_sdk._entries import AttrValue, Reading
from device_sdk._surface import ClientSurface
from device_sdk.wire.payloads import Severity


class AsyncDeviceClient(ClientSurface):
    """``DeviceClient`` for asyncio programs; same behaviour and guarantees.

    Example::

        async with AsyncDeviceClient(config) as client:
            seq = await client.record({"temp_c": 21.5})
    """

    def __init__(self, config: DeviceConfig) -> None:
        super().__init__(config)
        self._inline = config.durability is Durability.WRITE

    async def start(self) -> None:
        self._core.downlink.loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._core.start)

    async def stop(self, timeout: float = 2.0) -> None:  # noqa: ASYNC109 - drain time
        await asyncio.to_thread(self._core.stop, timeout)

    async def __aenter__(self) -> AsyncDeviceClient:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def record(self, metrics: Mapping[str, float | None], at: datetime | None = None) -> int:
        """See :meth:`DeviceClient.record`."""
        if self._inline:
            return self._core.record(metrics, at)
        return await asyncio.to_thread(self._core.record, metrics, at)

    async def record_many(
        self,
        readings: Iterable[Reading | tuple[datetime | None, Mapping[str, float | None]]],
    ) -> range:
        """See :meth:`DeviceClient.record_many`."""
        if self._inline:
            return self._core.record_many(readings)
        return await asyncio.to_thread(self._core.record_many, list(readings))

    async def usage(
        self,
        name: str,
        value: float | None = None,
        *,
        unit: str | None = None,
        duration_s: float | None = None,
        attrs: Mapping[str, AttrValue] | None = None,
        at: datetime | None = None,
    ) -> int:
        """See :meth:`DeviceClient.usage`."""

        def call() -> int:
            return self._core.usage(
                name, value, unit=unit, duration_s=duration_s, attrs=attrs, at=at
            )

        return call() if self._inline else await asyncio.to_thread(call)

    async def event(
        self,
        event_type: str,
        *,
        severity: Severity | str = Severity.INFO,
        code: str | None = None,
        message: str | None = None,
        attrs: Mapping[str, AttrValue] | None = None,
        at: datetime | None = None,
    ) -> int:
        """See :meth:`DeviceClient.event`."""

        def call() -> int:
            return self._core.event(
                event_type, severity=severity, code=code, message=message, attrs=attrs, at=at
            )

        return call() if self._inline else await asyncio.to_thread(call)

    async def flush(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109 - see DeviceClient
        await asyncio.to_thread(self._core.flush, timeout)

    async def wait_connected(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        await asyncio.to_thread(self._core.wait_connected, timeout)
