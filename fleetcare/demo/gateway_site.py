"""The demo's gateway site: a local broker, and an edge gateway forwarding it upstream.

One shard of the simulated fleet (see ``SimFleetPlan.site_shard``) publishes to a broker of
its own (a second embedded broker on a free port, topic root ``site``) instead of the
central one. ``python -m gateway run --config FILE`` runs as a child process with a
configuration written for the run: it takes the site's batches from the local broker into
its durable queue and forwards them to the central broker under the central topic root,
where ingest takes them like any other device's. The gateway is registered as a device so
that ingest stores its retained ``state`` (health) instead of dead-lettering it.

The demo follows the gateway through that same ``state`` message on the central broker
(every second): entries it received, forwarded and still holds. :meth:`GatewaySite.drain`
waits until it holds nothing, so that the summary's "stored == handed over" covers the
site's devices too. Both the local broker and the gateway's queue start empty each run:
nothing an earlier run left behind is replayed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from backend.storage.catalogue import ensure_device, ensure_device_model
from backend.storage.connect import connect
from device_sdk.wire import Channel, PayloadError, StateMessage, decode_model, subscription
from fleetcare.demo.child import ChildProcess
from fleetcare.embedded.broker import EmbeddedBroker, start_embedded_broker

#: The gateway's device id, and the topic root of the site's local broker.
GATEWAY_ID = "demo-site-gateway"
SITE_ROOT = "site"
#: Device model the gateway is registered under (no metrics: it sends only its state).
GATEWAY_MODEL = "edge_gateway"


@dataclass(frozen=True)
class GatewayHealth:
    """The gateway's latest ``state`` health, as the central broker delivered it.

    Attributes:
        received: entries the gateway took from the site's broker into its queue.
        forwarded: entries the central broker acknowledged.
        queued: entries in its queue not yet acknowledged upstream.
        connected: its uplink session is up.
        at: ``time.monotonic()`` when the demo received it.
    """

    received: int
    forwarded: int
    queued: int
    connected: bool
    at: float

    def text(self) -> str:
        link = "connected" if self.connected else "down"
        return (
            f"{self.forwarded:,} entries forwarded of {self.received:,} received, "
            f"{self.queued:,} queued, uplink {link}"
        )


def _split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """``(url without credentials, username, password)``."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return f"{parts.scheme}://{netloc}", parts.username, parts.password


def gateway_toml(
    *,
    data_dir: Path,
    uplink_url: str,
    uplink_root: str,
    local_url: str,
    devices: list[str],
) -> str:
    """The gateway's configuration for the demo (TOML; strings quoted as JSON, which TOML's
    basic strings accept)."""
    url, username, password = _split_credentials(uplink_url)
    q = json.dumps
    lines = [
        f"gateway_id = {q(GATEWAY_ID)}",
        f"data_dir = {q(str(data_dir))}",
        'log_level = "INFO"',
        "",
        "[uplink]",
        f"url = {q(url)}",
        f"topic_root = {q(uplink_root)}",
        "state_interval_s = 1",
        "reconnect_min_s = 0.2",
        "reconnect_max_s = 2",
    ]
    if username is not None:
        lines.append(f"username = {q(username)}")
    if password is not None:
        lines.append(f"password = {q(password)}")
    lines += [
        "",
        "[local]",
        f"url = {q(local_url)}",
        f"topic_root = {q(SITE_ROOT)}",
        "",
        "[queue]",
        "max_bytes = 268435456",
        "",
        "[site]",
        f"mqtt_devices = {q(devices)}",
        "",
    ]
    return "\n".join(lines)


def register_gateway(database_url: str) -> None:
    """Register the gateway as a device, so that ingest stores its ``state``."""
    with connect(database_url) as conn:
        model = ensure_device_model(conn, GATEWAY_MODEL, "gateway", [])
        ensure_device(conn, GATEWAY_ID, model)
        conn.commit()


class _StateWatcher:
    """Follows the gateway's retained ``state`` on the central broker."""

    def __init__(self, broker_url: str, root: str) -> None:
        parts = urlsplit(broker_url)
        self.topic = subscription(Channel.STATE, root=root, device_id=GATEWAY_ID)
        self.latest: GatewayHealth | None = None
        self._lock = threading.Lock()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"fleetcare-demo-site-{os.getpid()}",
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        if parts.username is not None:
            client.username_pw_set(parts.username, parts.password)
        if parts.scheme == "mqtts":
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.reconnect_delay_set(1, 2)
        self.client = client
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    def start(self) -> None:
        self.client.connect_async(self._host, self._port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, *_args: Any) -> None:
        client.subscribe(self.topic, qos=0)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: Any) -> None:
        try:
            state = decode_model(bytes(message.payload), StateMessage)
        except PayloadError:
            return
        health = state.health
        if health is None:  # the offline state an earlier run left retained
            return
        with self._lock:
            self.latest = GatewayHealth(
                received=health.recorded,
                forwarded=health.sent,
                queued=health.queued,
                connected=health.connected,
                at=time.monotonic(),
            )

    def health(self) -> GatewayHealth | None:
        with self._lock:
            return self.latest


class GatewaySite:
    """A local broker and a gateway process between a shard of the fleet and the centre."""

    def __init__(self) -> None:
        self.devices: list[str] = []
        self.local: EmbeddedBroker | None = None
        self.child: ChildProcess | None = None
        self._watcher: _StateWatcher | None = None

    @property
    def gateway_id(self) -> str:
        return GATEWAY_ID

    @property
    def local_root(self) -> str:
        return SITE_ROOT

    def start(
        self,
        resources: ExitStack,
        *,
        database_url: str,
        central_url: str,
        central_root: str,
        devices: list[str],
    ) -> str:
        """Start the local broker, the gateway and the state watcher (closed by
        ``resources``); returns the local broker's URL."""
        self.devices = list(devices)
        register_gateway(database_url)
        workdir = Path(tempfile.mkdtemp(prefix="fleetcare-demo-site-"))
        resources.callback(shutil.rmtree, workdir, ignore_errors=True)
        local = start_embedded_broker(workdir / "broker")
        resources.callback(local.stop)
        self.local = local
        watcher = _StateWatcher(central_url, central_root)
        watcher.start()
        resources.callback(watcher.stop)
        self._watcher = watcher
        config = workdir / "gateway.toml"
        config.write_text(
            gateway_toml(
                data_dir=workdir / "gateway-data",
                uplink_url=central_url,
                uplink_root=central_root,
                local_url=local.url,
                devices=self.devices,
            )
        )
        config.chmod(0o600)
        child = ChildProcess(
            "gateway",
            ["-m", "gateway", "run", "--config", str(config)],
            dict(os.environ),
            workdir / "gateway.log",
        )
        child.start()
        resources.callback(child.stop)
        self.child = child
        return local.url

    def health(self) -> GatewayHealth | None:
        """The gateway's latest health (``None`` until its first ``state`` arrived)."""
        return None if self._watcher is None else self._watcher.health()

    def wait_ready(self, timeout_s: float = 30.0) -> bool:
        """Wait until the gateway reports an uplink session (it then takes the site's
        batches); ``False`` if it exited or did not within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            health = self.health()
            if health is not None and health.connected:
                return True
            if self.child is not None and self.child.exit_code is not None:
                return False
            time.sleep(0.2)
        return False

    def drain(self, quiet_s: float = 2.0, limit_s: float = 30.0) -> GatewayHealth | None:
        """Wait until the gateway holds nothing and has taken nothing new for ``quiet_s``
        (by states sent after this call); returns its last health."""
        started = time.monotonic()
        deadline = started + limit_s
        last_received, quiet_since = -1, started
        while time.monotonic() < deadline:
            health = self.health()
            if self.child is not None and self.child.exit_code is not None:
                return health
            if health is not None and health.at > started:
                if health.received != last_received or health.queued > 0:
                    last_received, quiet_since = health.received, time.monotonic()
                elif time.monotonic() - quiet_since >= quiet_s:
                    return health
            time.sleep(0.2)
        return self.health()

    def failure(self) -> str | None:
        """Why the gateway process ended early, or ``None`` while it runs."""
        child = self.child
        if child is None or child.exit_code is None:
            return None
        return f"the gateway exited with {child.exit_code}: {child.tail()}"
