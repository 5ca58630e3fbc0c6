"""The device side of a live run: one ``device_sdk.DeviceClient`` per simulated device,
and a raw MQTT publisher for the deliberately wrong traffic the SDK never sends.
"""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from firmware_sim.errors import SdkUnavailableError, SimError
from firmware_sim.firmware import SimulatedFirmware

if TYPE_CHECKING:
    from firmware_sim.live import LiveOptions


def sdk_module() -> Any:
    try:
        import device_sdk
    except ImportError as exc:  # pragma: no cover - the SDK ships with fleetcare
        raise SdkUnavailableError(f"device_sdk is not importable: {exc}") from None
    return device_sdk


class SdkFleet:
    """One started SDK client per device, each with its own durable queue."""

    def __init__(
        self,
        options: LiveOptions,
        ids: list[str],
        catalogue: dict[str, frozenset[str]],
        urls: dict[str, str],
    ) -> None:
        self.sdk = sdk_module()
        self.options = options
        self.catalogue = catalogue
        self.urls = urls
        self.clients: dict[str, Any] = {}
        self.firmware: dict[str, SimulatedFirmware] = {}
        self.last: dict[str, tuple[int, int, dict[str, float | None]]] = {}
        try:
            for device_id in ids:
                self.clients[device_id] = self._client(device_id)
        except BaseException:
            self.stop(0.0)
            raise

    def _client(self, device_id: str) -> Any:
        url = self.urls.get(device_id)
        cfg = self.sdk.DeviceConfig(
            device_id=device_id,
            broker_urls=(url,) if url else self.options.broker_urls,
            queue_path=self.options.queue_dir / device_id,
            topic_root=self.options.topic_root,
            metric_catalogue=self.catalogue[device_id],
            reconnect_min_s=0.2,
            reconnect_max_s=self.options.reconnect_max_s,
        )
        client = self.sdk.DeviceClient(cfg)
        # The firmware outlives a reboot, as its settings would in flash; the retained
        # desired config comes again on the new session all the same.
        firmware = self.firmware.setdefault(
            device_id, SimulatedFirmware(device_id, self.catalogue[device_id])
        )
        client.on_config(firmware.apply_config)
        client.add_command_handler(
            "self_test", lambda _command: firmware.self_test(self.last.get(device_id))
        )
        client.start()
        return client

    def reboot(self, device_id: str) -> None:
        self.clients[device_id].stop(timeout=1.0)
        self.clients[device_id] = self._client(device_id)

    def wait_connected(self, timeout_s: float) -> None:
        """Wait for every client's first session; raise naming what went wrong."""
        deadline = time.monotonic() + timeout_s
        failed: list[str] = []
        for device_id, client in self.clients.items():
            try:
                client.wait_connected(max(0.05, deadline - time.monotonic()))
            except self.sdk.SdkError:
                failed.append(device_id)
        if failed:
            reason = self.clients[failed[0]].health().last_error
            self.stop(0.0)
            raise SimError(
                f"{len(failed)} of {len(self.clients)} devices could not connect within "
                f"{timeout_s:.0f} s (first: {failed[0]}: {reason})"
            )

    def stop(self, timeout_s: float) -> tuple[int, int]:
        """Flush every client for up to ``timeout_s`` seconds, then stop it; all clients at
        once (one after the other, a loaded broker made this take seconds per client).

        Returns:
            ``(undelivered, dropped)`` summed over the clients.
        """
        deadline = time.monotonic() + timeout_s
        clients = list(self.clients.values())
        if not clients:
            return 0, 0
        with ThreadPoolExecutor(len(clients), thread_name_prefix="sim-stop") as pool:
            counts = list(pool.map(lambda client: self._stop_one(client, deadline), clients))
        return sum(u for u, _ in counts), sum(d for _, d in counts)

    def _stop_one(self, client: Any, deadline: float) -> tuple[int, int]:
        left = deadline - time.monotonic()
        if left > 0:
            with contextlib.suppress(self.sdk.SdkError):
                client.flush(left)
        health = client.health()
        client.stop(timeout=0.5 if deadline - time.monotonic() > 0 else 0.05)
        return health.queued, health.dropped


class RawPublisher:
    """A plain paho client for deliberately wrong traffic (duplicates, malformed)."""

    def __init__(self, url: str, client_id: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        parts = urlsplit(url)
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        try:
            self._client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        except OSError as exc:
            raise SimError(f"fault publisher cannot reach {url}: {exc}") from None
        self._client.loop_start()

    def publish(self, topic: str, payload: bytes) -> None:
        info = self._client.publish(topic, payload, qos=1)
        info.wait_for_publish(10)

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


def boot_id() -> str:
    try:
        raw = Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")
    except OSError:
        return "simfault"
    return raw if raw.isalnum() else "simfault"
