"""The running site: which local devices are accepted and which Modbus devices are polled.

:meth:`SiteRunner.apply` moves from one :class:`~gateway.config.SiteConfig` to another:
pollers of removed or changed devices stop, new ones start, the local device list is
swapped. If starting the new site fails, the previous one is started again (rollback) and
the error is raised to the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from gateway.bandwidth import BandwidthFilter
from gateway.config import ModbusDeviceConfig, SiteConfig
from gateway.intake import LocalIntake
from gateway.metrics import GatewayMetrics
from gateway.modbus import ModbusPoller
from gateway.store import Store

__all__ = ["SiteRunner"]

_log = logging.getLogger("gateway.site")

ReadingCallback = Callable[[str, list[tuple[int, dict[str, float | None]]]], None]


class SiteRunner:
    def __init__(
        self,
        store: Store,
        metrics: GatewayMetrics,
        bandwidth: BandwidthFilter,
        intake: LocalIntake | None,
        on_reading: ReadingCallback | None,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.bandwidth = bandwidth
        self.intake = intake
        self.on_reading = on_reading
        self.site: SiteConfig | None = None
        self.pollers: dict[str, ModbusPoller] = {}

    async def apply(self, site: SiteConfig) -> None:
        """Run ``site``; on failure the previous site runs again and the error is raised."""
        previous = self.site
        try:
            await self._switch(site)
        except Exception:
            _log.exception("applying the site configuration failed; rolling back")
            await self._switch(previous or SiteConfig())
            raise

    async def _switch(self, site: SiteConfig) -> None:
        wanted: dict[str, ModbusDeviceConfig] = {d.device_id: d for d in site.modbus}
        for device_id, poller in list(self.pollers.items()):
            if wanted.get(device_id) != poller.device:
                await poller.stop()
                del self.pollers[device_id]
        for device_id, device in wanted.items():
            if device_id not in self.pollers:
                poller = ModbusPoller(
                    device, self.store, self.metrics, self.bandwidth, self.on_reading
                )
                self.pollers[device_id] = poller
                await poller.start()
        if self.intake is not None:
            self.intake.allowed = (
                frozenset(site.mqtt_devices) if site.mqtt_devices is not None else None
            )
        self.site = site
        _log.info(
            "site running: %d Modbus device(s), local devices: %s", len(self.pollers),
            "any" if site.mqtt_devices is None else len(site.mqtt_devices),
        )  # fmt: skip

    async def stop(self) -> None:
        for poller in self.pollers.values():
            await poller.stop()
        self.pollers.clear()
