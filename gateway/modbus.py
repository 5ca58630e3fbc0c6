"""Modbus TCP polling (pymodbus): register maps to wire readings of the polled device.

One asyncio task per (device, poll interval); each poll reads every register of its group
(function 3 for ``holding``, 4 for ``input``), converts them (:mod:`gateway.registers`) and
queues one reading for the device. Such devices cannot number their readings, so the
gateway does: the entry's ``seq`` is its index in the durable queue (strictly increasing,
never reused, also across crashes). A register that answers with a Modbus exception gives
``null`` for its metric; a device that does not answer gives no reading (counted in
``modbus_errors``) and is reconnected on the next poll. When a device's map is applied,
a ``gateway.units`` event (attrs: metric -> unit) is queued for it, so the backend knows
the units of the values that follow.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import orjson
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from device_sdk.wire import BatchKind
from gateway.bandwidth import BandwidthFilter
from gateway.clock import gateway_boot_id, now_ms, uptime_ms
from gateway.config import ModbusDeviceConfig
from gateway.metrics import GatewayMetrics
from gateway.records import encode_item
from gateway.registers import RegisterSpec, RegisterTable
from gateway.store import Store

__all__ = ["ModbusPoller", "units_events"]

_log = logging.getLogger("gateway.modbus")

_MAX_ATTRS = 32


def units_events(device: ModbusDeviceConfig) -> list[bytes]:
    """``gateway.units`` event bodies for a device's map (32 metrics per event)."""
    units = [(s.metric, s.unit) for s in device.registers if s.unit is not None]
    bodies = []
    for start in range(0, len(units), _MAX_ATTRS):
        entry = {
            "t": now_ms(),
            "u": uptime_ms(),
            "type": "gateway.units",
            "severity": "info",
            "msg": f"units of the Modbus register map of {device.device_id}",
            "attrs": dict(units[start : start + _MAX_ATTRS]),
        }
        bodies.append(orjson.dumps(entry))
    return bodies


class ModbusPoller:
    """Polls one Modbus device until :meth:`stop`."""

    def __init__(
        self,
        device: ModbusDeviceConfig,
        store: Store,
        metrics: GatewayMetrics,
        bandwidth: BandwidthFilter,
        on_reading: Callable[[str, list[tuple[int, dict[str, float | None]]]], None] | None,
    ) -> None:
        self.device = device
        self.store = store
        self.metrics = metrics
        self.bandwidth = bandwidth
        self.on_reading = on_reading
        self.client = AsyncModbusTcpClient(
            device.host,
            port=device.port,
            timeout=device.timeout_s,
            retries=0,
            reconnect_delay=0,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._link = asyncio.Lock()
        """One connection per device: the groups' polls take turns on it."""
        self._last_log = -1e9

    def groups(self) -> dict[float, list[RegisterSpec]]:
        groups: dict[float, list[RegisterSpec]] = {}
        for spec in self.device.registers:
            interval = spec.poll_interval_s or self.device.poll_interval_s
            groups.setdefault(interval, []).append(spec)
        return groups

    async def start(self) -> None:
        bodies = units_events(self.device)
        if bodies:
            items = [encode_item(self.device.device_id, gateway_boot_id(), -1, b) for b in bodies]
            await asyncio.to_thread(self.store.append, BatchKind.EVENTS, items)
        for interval, specs in self.groups().items():
            name = f"modbus-{self.device.device_id}-{interval}"
            self._tasks.append(asyncio.create_task(self._poll_loop(interval, specs), name=name))

    async def stop(self) -> None:
        self._stopping = True  # pymodbus may turn a cancellation into a ModbusIOException
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        self._tasks.clear()
        self.client.close()
        await asyncio.sleep(0.01)  # let the transport's close callbacks run on this loop

    async def _poll_loop(self, interval: float, specs: list[RegisterSpec]) -> None:
        next_at = time.monotonic()
        while not self._stopping:
            await self.poll_once(specs)
            next_at += interval
            delay = next_at - time.monotonic()
            if delay < 0:  # overran: skip the missed polls rather than bunching them
                next_at = time.monotonic()
                delay = 0
            await asyncio.sleep(delay)

    async def poll_once(self, specs: list[RegisterSpec]) -> dict[str, float | None] | None:
        """Read ``specs`` once and queue the reading; the metrics, or ``None`` on failure."""
        async with self._link:
            return await self._poll_locked(specs)

    async def _poll_locked(self, specs: list[RegisterSpec]) -> dict[str, float | None] | None:
        device = self.device
        try:
            if not self.client.connected and not await self.client.connect():
                raise ModbusException(f"cannot connect to {device.host}:{device.port}")
            t, u = now_ms(), uptime_ms()
            metrics: dict[str, float | None] = {}
            for spec in specs:
                metrics[spec.metric] = await self._read(spec)
        except (TimeoutError, ModbusException, OSError) as exc:
            if self._stopping:
                raise asyncio.CancelledError from None
            self.metrics.add("modbus_errors")
            self._log_rate_limited("%s: poll failed: %s", device.device_id, exc)
            self.client.close()
            return None
        if self.on_reading is not None:
            self.on_reading(device.device_id, [(t, metrics)])
        kept = (
            self.bandwidth.apply(device.device_id, t, metrics) if self.bandwidth.active else metrics
        )
        if len(kept) < len(metrics):
            self.metrics.add("filtered_values", len(metrics) - len(kept))
        if kept:
            body = orjson.dumps({"t": t, "u": u, "m": kept})
            item = encode_item(device.device_id, gateway_boot_id(), -1, body)
            await asyncio.to_thread(self.store.append, BatchKind.TELEMETRY, [item])
        self.metrics.add("polled_readings")
        return metrics

    async def _read(self, spec: RegisterSpec) -> float | None:
        read = (
            self.client.read_holding_registers
            if spec.type is RegisterTable.HOLDING
            else self.client.read_input_registers
        )
        response = await read(spec.address, count=spec.words, device_id=self.device.unit_id)
        if response.isError():
            self.metrics.add("modbus_errors")
            self._log_rate_limited(
                "%s: %s register %d answered %s", self.device.device_id, spec.type.value,
                spec.address, response,
            )  # fmt: skip
            return None
        try:
            return spec.value(list(response.registers))
        except ValueError as exc:
            self.metrics.add("modbus_errors")
            self._log_rate_limited("%s: %s: %s", self.device.device_id, spec.metric, exc)
            return None

    def _log_rate_limited(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last_log >= 10.0:
            self._last_log = now
            _log.warning(message, *args)
