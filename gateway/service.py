"""Wires the gateway's parts together and runs them until asked to stop."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from gateway.bandwidth import BandwidthFilter
from gateway.config import GatewayConfig, SiteConfig
from gateway.downlink_bridge import DownlinkBridge
from gateway.errors import GatewayError
from gateway.forwarder import Forwarder
from gateway.intake import LocalIntake
from gateway.metrics import GatewayMetrics
from gateway.site import SiteRunner
from gateway.store import Store
from gateway.twin import Twin, load_saved_site
from gateway.uplink import Uplink

if TYPE_CHECKING:
    from gateway.inference import EdgeInference

__all__ = ["BackgroundGateway", "Gateway"]

_log = logging.getLogger("gateway")


class Gateway:
    """One gateway. Build it, then ``await run(stop)``; or use :class:`BackgroundGateway`."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.metrics = GatewayMetrics()
        self.bandwidth = BandwidthFilter(config.bandwidth)
        self.store: Store | None = None
        self.uplink: Uplink | None = None
        self.forwarder: Forwarder | None = None
        self.intake: LocalIntake | None = None
        self.bridge: DownlinkBridge | None = None
        self.inference: EdgeInference | None = None  # imports onnxruntime: only when used
        self.runner: SiteRunner | None = None
        self.twin: Twin | None = None
        self.ready = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending_report: tuple[str, bytes] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.shutdown()

    async def start(self) -> None:
        config = self.config
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(config.data_dir.mkdir, parents=True, exist_ok=True)
        self.store = store = await asyncio.to_thread(
            Store, config.data_dir, config.queue, config.gateway_id
        )
        if config.inference is not None:
            from gateway.inference import EdgeInference

            self.inference = await asyncio.to_thread(
                EdgeInference, config.inference, store, self.metrics, self._publish_alert
            )
        submit = self.inference.submit if self.inference is not None else None
        if config.local is not None:
            self.bridge = DownlinkBridge(
                config.gateway_id, config.uplink.topic_root, config.local.topic_root,
                self.metrics,
            )  # fmt: skip
            self.intake = LocalIntake(
                config.local, config.intake_client_id, store, self.metrics, self.bandwidth,
                on_readings=submit, bridge=self.bridge,
            )  # fmt: skip
        self.runner = SiteRunner(store, self.metrics, self.bandwidth, self.intake, submit)
        self.uplink = Uplink(
            config.uplink, config.gateway_id, config.uplink_client_id, self.metrics,
            on_desired=self._on_desired,
            on_downlink=self.bridge.from_central if self.bridge is not None else None,
        )  # fmt: skip
        if self.bridge is not None and self.intake is not None:
            self.bridge.attach(self.uplink, self.intake)
        saved = await asyncio.to_thread(load_saved_site, config.data_dir)
        self.twin = Twin(
            config.gateway_id, config.uplink.topic_root, config.data_dir, self.runner,
            self.metrics, self._publish_reported,
            applied_version=saved.version if saved is not None else None,
        )  # fmt: skip
        self.forwarder = Forwarder(
            store, self.uplink, config.uplink, self.metrics, config.gateway_id,
            config.queue.fsync_interval_s, on_tick=self._tick,
        )  # fmt: skip
        site: SiteConfig = saved.site if saved is not None else config.site
        await self.runner.apply(site)
        if self.inference is not None:
            self.inference.start()
        self.forwarder.start()
        self.uplink.start()
        if self.intake is not None:
            self.intake.start()
        self.ready.set()
        _log.info("gateway %s started", config.gateway_id)

    async def shutdown(self) -> None:
        if self.intake is not None:
            await asyncio.to_thread(self.intake.stop)
        if self.runner is not None:
            await self.runner.stop()
        if self.inference is not None:
            await asyncio.to_thread(self.inference.stop)
        if self.forwarder is not None and self.uplink is not None:
            await asyncio.to_thread(self.forwarder.stop)
            await asyncio.to_thread(self.uplink.stop, self.forwarder.state_message(False))
        if self.store is not None:
            await asyncio.to_thread(self.store.close)
        for task in list(self._tasks):
            task.cancel()
        _log.info("gateway %s stopped", self.config.gateway_id)

    # ------------------------------------------------------------------ callbacks

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_desired(self, payload: bytes) -> None:
        """paho's thread: hand the desired configuration to the event loop."""
        if self._loop is not None and self.twin is not None:
            self._loop.call_soon_threadsafe(self._spawn, self.twin.handle(payload))

    def _publish_reported(self, topic: str, payload: bytes) -> None:
        self._pending_report = (topic, payload)
        self._tick()

    def _tick(self) -> None:
        """Forwarder thread, every ~100 ms (and after a report): deliver a pending report,
        recover the intake after a storage failure."""
        pending = self._pending_report
        if (
            pending is not None
            and self.uplink is not None
            and self.uplink.publish(pending[0], pending[1], retain=True) is not None
            and self._pending_report is pending
        ):
            self._pending_report = None
        if self.intake is not None:
            self.intake.recover()
        if self.bridge is not None:
            self.bridge.flush()

    def _publish_alert(self, payload: bytes) -> None:
        if self.intake is not None:
            self.intake.publish(self.config.alert_topic, payload)


class BackgroundGateway:
    """A gateway on an event loop of its own thread (tests, embedding in a program)."""

    def __init__(self, config: GatewayConfig) -> None:
        self.gateway = Gateway(config)
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, name="gateway-loop", daemon=True)
        self._started = threading.Event()
        self._error: BaseException | None = None

    def _main(self) -> None:
        asyncio.run(self._amain())

    async def _amain(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            await self.gateway.start()
        except BaseException as exc:
            self._error = exc
            self._started.set()
            raise
        self._started.set()
        try:
            await self._stop.wait()
        finally:
            await self.gateway.shutdown()

    def start(self, timeout: float = 30.0) -> BackgroundGateway:
        self._thread.start()
        if not self._started.wait(timeout):
            raise TimeoutError("gateway did not start")
        if self._error is not None:
            raise self._error
        return self

    def call(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 10.0) -> Any:
        """Run a coroutine on the gateway's loop and return its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)
        if self._thread.is_alive():
            raise GatewayError("the gateway did not stop within 15 s")

    def __enter__(self) -> BackgroundGateway:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
