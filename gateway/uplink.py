"""The gateway's session with the central broker (paho-mqtt, its own network thread).

It connects in the background and keeps reconnecting with backoff (also after the broker
restarts), publishes with QoS 1, reports PUBACKs (with their MQTT 5 reason code) and
connection changes through callbacks that only append to queues or set events (never block
paho's thread), subscribes to the gateway's ``config/desired`` and leaves an offline
``state`` as its last will.

Protocol ``auto`` (the default) connects with MQTT 5 and falls back to 3.1.1 when the broker
refuses 5; while no CONNECT was ever answered it alternates between the two, for brokers
that drop an MQTT 5 CONNECT without a CONNACK.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Literal, cast
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from device_sdk.wire import Channel, StateMessage, build_topic, encode_model
from gateway.clock import gateway_boot_id, now_ms
from gateway.config import UplinkConfig
from gateway.metrics import GatewayMetrics

__all__ = ["Uplink"]

_log = logging.getLogger("gateway.uplink")

GATEWAY_AGENT = "fleetcare-gateway/0.1.0"

MQTT5 = MQTTProtocolVersion.MQTTv5
MQTT311 = MQTTProtocolVersion.MQTTv311
ProtocolName = Literal["MQTTv5", "MQTTv311"]
_UNSUPPORTED_PROTOCOL = frozenset({0x84, 1})  # MQTT 5 reason code / 3.1.1 return code


class Uplink:
    def __init__(
        self,
        config: UplinkConfig,
        gateway_id: str,
        client_id: str,
        metrics: GatewayMetrics,
        on_desired: Callable[[bytes], None] | None = None,
        on_downlink: Callable[[str, bytes], bool] | None = None,
    ) -> None:
        self.config = config
        self.gateway_id = gateway_id
        self.metrics = metrics
        self.on_desired = on_desired
        self.on_downlink = on_downlink
        """Messages on the other subscriptions (:meth:`add_subscription`)."""
        self._subscriptions: set[str] = set()
        self._subscriptions_lock = threading.Lock()
        self._subscribing = False
        """Between a CONNACK and the disconnection: new subscriptions go out at once."""
        self.acks: deque[tuple[int, int]] = deque()
        """``(message id, reason code)`` of every PUBACK, in order (consumed by the
        forwarder); the reason code is always 0 with MQTT 3.1.1."""
        self.wake = threading.Event()
        """Set on every acknowledgement and connection change."""
        self.connected = threading.Event()
        self.session = 0
        """Incremented on every successful connection."""
        self.last_error: str | None = None
        self._ever_connected = False
        self._answered = False
        """The broker answered the current connection attempt with a CONNACK."""
        self._attempt = 0
        self._connack_timer: threading.Timer | None = None
        self._stopping = False
        parts = urlsplit(config.url)
        self.host = parts.hostname or "127.0.0.1"
        self.tls = parts.scheme == "mqtts"
        self.port = parts.port or (8883 if self.tls else 1883)
        self.safe_url = f"{parts.scheme}://{self.host}:{self.port}"
        self.desired_topic = build_topic(gateway_id, Channel.CONFIG_DESIRED, config.topic_root)
        self.state_topic = build_topic(gateway_id, Channel.STATE, config.topic_root)
        protocol = MQTT311 if config.protocol == "3.1.1" else MQTT5
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
            clean_session=True if protocol == MQTT311 else None,
        )
        client.connect_timeout = config.connect_timeout_s
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
        client.on_pre_connect = self._on_pre_connect
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        self.client = client

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        # clean_start (MQTT 5) on every connection, like clean_session with 3.1.1: after a
        # reconnect the forwarder sends everything unacknowledged again from the queue.
        self.client.connect_async(
            self.host, self.port, keepalive=self.config.keepalive_s, clean_start=True
        )
        self.client.loop_start()

    def stop(self, offline_state: bytes | None = None) -> None:
        if offline_state is not None and self.connected.is_set():
            info = self.client.publish(self.state_topic, offline_state, qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(1.0)
        self._stopping = True
        self._cancel_connack_timer()
        self.client.disconnect()
        self.client.loop_stop()
        # loop_start's wake-up socket pair is closed only by paho's __del__; the client is in
        # a reference cycle with our callbacks, so close it now rather than in the collector.
        self.client._reset_sockets()

    @property
    def protocol_name(self) -> ProtocolName:
        """The protocol of the current session, or of the next connection attempt."""
        return "MQTTv5" if self.client.protocol == MQTT5 else "MQTTv311"

    def _use_protocol(self, client: mqtt.Client, protocol: MQTTProtocolVersion) -> None:
        """Make paho's next reconnect use ``protocol``.

        Called on paho's thread from a connection callback, before paho reconnects. paho
        reads the protocol afresh for every CONNECT (its own downgrade from 3.1.1 to 3.1
        sets the same attribute when a CONNACK refuses the version), so the client, its
        callbacks and its will are kept.
        """
        client._protocol = protocol
        if protocol == MQTT311:
            client._clean_session = True

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

    def add_subscription(self, topic: str) -> None:
        """Subscribe (QoS 1) now if connected, and again on every connection."""
        with self._subscriptions_lock:
            if topic in self._subscriptions:
                return
            self._subscriptions.add(topic)
            now = self._subscribing
        if now:
            self.client.subscribe(topic, qos=1)

    # ------------------------------------------------------------------ paho callbacks

    def _on_pre_connect(self, client: mqtt.Client, _userdata: Any) -> None:
        """A connection attempt starts: the CONNACK must come within ``connect_timeout_s``
        (the TCP and TLS connection included; paho bounds that part by the same time)."""
        self._cancel_connack_timer()
        self._answered = False
        self._attempt += 1
        timer = threading.Timer(
            self.config.connect_timeout_s, self._connack_overdue, (client, self._attempt)
        )
        timer.daemon = True
        timer.name = "gateway-uplink-connack"
        self._connack_timer = timer
        timer.start()

    def _connack_overdue(self, client: mqtt.Client, attempt: int) -> None:
        """No CONNACK in time (some brokers never answer a CONNECT they cannot parse): shut
        the socket down, so paho sees the connection end and retries (see _on_disconnect)."""
        if attempt != self._attempt or self._answered or self._stopping:
            return
        sock = client.socket()
        if isinstance(sock, socket.socket | ssl.SSLSocket):
            _log.debug("no CONNACK from %s in time", self.safe_url)
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _cancel_connack_timer(self) -> None:
        timer, self._connack_timer = self._connack_timer, None
        if timer is not None:
            timer.cancel()

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        self._answered = True
        self._cancel_connack_timer()
        if reason.is_failure:
            self.last_error = f"connection refused: {reason}"
            self.metrics.add("connect_failures")
            if (
                reason.value in _UNSUPPORTED_PROTOCOL
                and client.protocol == MQTT5
                and self.config.protocol == "auto"
            ):
                self._use_protocol(client, MQTT311)
                _log.info("%s refused MQTT 5; using MQTT 3.1.1", self.safe_url)
            return
        with self._subscriptions_lock:
            topics = [self.desired_topic, *sorted(self._subscriptions)]
            self._subscribing = True
        client.subscribe([(topic, 1) for topic in topics])
        if self._ever_connected:
            self.metrics.add("reconnects")
        self._ever_connected = True
        self.session += 1
        self.connected.set()
        self.wake.set()
        _log.info("connected to %s (%s)", self.safe_url, self.protocol_name)

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        self.metrics.add("connect_failures")
        self.last_error = f"cannot connect to {self.safe_url}"

    def _on_disconnect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if self.connected.is_set() and not self._stopping:
            _log.warning("disconnected from %s: %s", self.safe_url, reason)
            self.last_error = f"disconnected: {reason}"
        elif not self._answered and not self._stopping:
            # The connection ended without a CONNACK: closed by the broker, or by us when
            # none came within the timeout.
            self.last_error = f"connection closed before CONNACK: {reason}"
            self.metrics.add("connect_failures")
            if self.config.protocol == "auto" and not self._ever_connected:
                # Some 3.1.1-only brokers drop an MQTT 5 CONNECT instead of refusing it:
                # alternate until one protocol is confirmed.
                other = MQTT311 if client.protocol == MQTT5 else MQTT5
                self._use_protocol(client, other)
        self._answered = False
        self._cancel_connack_timer()
        with self._subscriptions_lock:
            self._subscribing = False
        self.connected.clear()
        self.wake.set()

    def _on_publish(
        self, _client: mqtt.Client, _userdata: Any, mid: int, reason: Any, _props: Any
    ) -> None:
        self.acks.append((mid, reason.value))
        self.wake.set()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == self.desired_topic:
            if msg.payload and self.on_desired is not None:
                self.on_desired(bytes(msg.payload))
        elif self.on_downlink is not None:
            self.on_downlink(msg.topic, bytes(msg.payload))
