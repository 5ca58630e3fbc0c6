"""The gateway's session with the central broker (paho-mqtt, its own network thread).

It connects in the background and keeps reconnecting with backoff (also after the broker
restarts), publishes with QoS 1, reports PUBACKs and connection changes through callbacks
that only append to queues or set events (never block paho's thread), subscribes to the
gateway's ``config/desired`` and leaves an offline ``state`` as its last will.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from device_sdk.wire import Channel, StateMessage, build_topic, encode_model
from gateway.clock import gateway_boot_id, now_ms
from gateway.config import UplinkConfig
from gateway.metrics import GatewayMetrics

__all__ = ["Uplink"]

_log = logging.getLogger("gateway.uplink")

GATEWAY_AGENT = "fleetcare-gateway/0.1.0"


class Uplink:
    def __init__(
        self,
        config: UplinkConfig,
        gateway_id: str,
        client_id: str,
        metrics: GatewayMetrics,
        on_desired: Callable[[bytes], None] | None = None,
    ) -> None:
        self.config = config
        self.gateway_id = gateway_id
        self.metrics = metrics
        self.on_desired = on_desired
        self.acks: deque[int] = deque()
        """Message ids the broker acknowledged, in order (consumed by the forwarder)."""
        self.wake = threading.Event()
        """Set on every acknowledgement and connection change."""
        self.connected = threading.Event()
        self.session = 0
        """Incremented on every successful connection."""
        self.last_error: str | None = None
        self._ever_connected = False
        self._stopping = False
        parts = urlsplit(config.url)
        self.host = parts.hostname or "127.0.0.1"
        self.tls = parts.scheme == "mqtts"
        self.port = parts.port or (8883 if self.tls else 1883)
        self.safe_url = f"{parts.scheme}://{self.host}:{self.port}"
        self.desired_topic = build_topic(gateway_id, Channel.CONFIG_DESIRED, config.topic_root)
        self.state_topic = build_topic(gateway_id, Channel.STATE, config.topic_root)
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        client.max_inflight_messages_set(config.max_in_flight + 4)  # + state messages
        client.max_queued_messages_set(0)
        # paho sleeps for these: floats work, its annotations say int
        client.reconnect_delay_set(
            cast(int, config.reconnect_min_s), cast(int, config.reconnect_max_s)
        )
        if config.username is not None:
            password = config.password.get_secret_value() if config.password else None
            client.username_pw_set(config.username, password)
        if self.tls:
            client.tls_set(
                ca_certs=str(config.ca_file) if config.ca_file else None,
                certfile=str(config.cert_file) if config.cert_file else None,
                keyfile=str(config.key_file) if config.key_file else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        offline = StateMessage(
            v=1, device=gateway_id, boot=gateway_boot_id(), sent=now_ms(), online=False,
            sdk=GATEWAY_AGENT,
        )  # fmt: skip
        client.will_set(self.state_topic, encode_model(offline), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        self.client = client

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=self.config.keepalive_s)
        self.client.loop_start()

    def stop(self, offline_state: bytes | None = None) -> None:
        if offline_state is not None and self.connected.is_set():
            info = self.client.publish(self.state_topic, offline_state, qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(1.0)
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()
        # loop_start's wake-up socket pair is closed only by paho's __del__; the client is in
        # a reference cycle with our callbacks, so close it now rather than in the collector.
        self.client._reset_sockets()

    # ------------------------------------------------------------------ publishing

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int | None:
        """Publish with QoS 1; the message id, or ``None`` when not connected."""
        if not self.connected.is_set():
            return None
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self.last_error = f"publish failed: {mqtt.error_string(info.rc)}"
            return None
        return info.mid

    # ------------------------------------------------------------------ paho callbacks

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            self.last_error = f"connection refused: {reason}"
            self.metrics.add("connect_failures")
            return
        client.subscribe(self.desired_topic, qos=1)
        if self._ever_connected:
            self.metrics.add("reconnects")
        self._ever_connected = True
        self.session += 1
        self.connected.set()
        self.wake.set()
        _log.info("connected to %s", self.safe_url)

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        self.metrics.add("connect_failures")
        self.last_error = f"cannot connect to {self.safe_url}"

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if self.connected.is_set() and not self._stopping:
            _log.warning("disconnected from %s: %s", self.safe_url, reason)
            self.last_error = f"disconnected: {reason}"
        self.connected.clear()
        self.wake.set()

    def _on_publish(
        self, _client: mqtt.Client, _userdata: Any, mid: int, _reason: Any, _props: Any
    ) -> None:
        self.acks.append(mid)
        self.wake.set()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == self.desired_topic and msg.payload and self.on_desired is not None:
            self.on_desired(bytes(msg.payload))
