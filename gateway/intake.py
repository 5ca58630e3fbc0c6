"""Local MQTT devices: batches from the site's broker into the durable queue.

The gateway subscribes (QoS 1, persistent session) to ``{root}/v1/+/telemetry|usage|events``
on the local broker, the same wire contract as the central one. Each batch is validated
with :func:`device_sdk.wire.decode_batch`, its entries written to the queue in one
``write(2)`` (``fdatasync`` too with ``durability = "fsync"``), and only **then**
acknowledged (manual PUBACK). A gateway killed before the PUBACK gets the batch again from
the broker's session; one killed after it has the entries on disk. Batches that break the
contract are refused (counted, logged) and acknowledged, so they are not redelivered forever.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import urlsplit

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from device_sdk import QueueError
from device_sdk.wire import (
    BATCH_CHANNELS,
    BatchKind,
    PayloadError,
    TopicError,
    decode_batch,
    parse_topic,
    subscription,
)
from gateway.bandwidth import BandwidthFilter
from gateway.clock import now_ms, uptime_ms
from gateway.config import LocalConfig
from gateway.downlink_bridge import ANSWER_CHANNELS, DownlinkBridge
from gateway.metrics import GatewayMetrics
from gateway.records import encode_item
from gateway.store import Store

__all__ = ["LocalIntake", "ReadingSink"]

_log = logging.getLogger("gateway.intake")
_ANSWER_SUFFIXES = tuple(f"/{channel.value}" for channel in ANSWER_CHANNELS)

ReadingSink = Callable[[str, list[tuple[int, dict[str, float | None]]]], None]
"""Called with ``(device, [(t_ms, metrics), ...])`` for every telemetry batch accepted."""


class LocalIntake:
    def __init__(
        self,
        config: LocalConfig,
        client_id: str,
        store: Store,
        metrics: GatewayMetrics,
        bandwidth: BandwidthFilter,
        on_readings: ReadingSink | None = None,
        bridge: DownlinkBridge | None = None,
    ) -> None:
        self.config = config
        self.bridge = bridge
        self.store = store
        self.metrics = metrics
        self.bandwidth = bandwidth
        self.on_readings = on_readings
        self.allowed: frozenset[str] | None = None
        """Devices accepted (``None``: all); replaced when the site configuration changes."""
        self.connected = threading.Event()
        self._last_log = -1e9
        self._broken_since: float | None = None
        parts = urlsplit(config.url)
        self.host = parts.hostname or "127.0.0.1"
        tls = parts.scheme == "mqtts"
        self.port = parts.port or (8883 if tls else 1883)
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=False,
            manual_ack=True,
        )
        client.reconnect_delay_set(cast(int, 0.2), 5)  # paho sleeps for floats too
        if config.username is not None:
            password = config.password.get_secret_value() if config.password else None
            client.username_pw_set(config.username, password)
        if tls:
            client.tls_set(tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self.client = client

    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.client._reset_sockets()  # see Uplink.stop: paho closes these only in __del__

    def publish(self, topic: str, payload: bytes) -> None:
        """Best-effort publish on the local broker (alerts); QoS 1, not waited for."""
        self.client.publish(topic, payload, qos=1)

    def publish_downlink(self, topic: str, payload: bytes, *, retain: bool) -> None:
        """A command or desired config for a site device (QoS 1; paho queues it while the
        local broker is away, the session being persistent)."""
        self.client.publish(topic, payload, qos=1, retain=retain)

    def recover(self) -> None:
        """After a storage failure: reconnect so the broker redelivers what was not acked."""
        if self._broken_since is None or time.monotonic() - self._broken_since < 1.0:
            return
        self._broken_since = None
        self.client.loop_stop()
        self.client._reset_sockets()
        self.start()

    # ------------------------------------------------------------------ paho callbacks

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            _log.warning("local broker refused the connection: %s", reason)
            return
        root = self.config.topic_root
        channels = [*BATCH_CHANNELS, *(ANSWER_CHANNELS if self.bridge is not None else ())]
        client.subscribe([(subscription(c, root=root), 1) for c in channels])
        self.connected.set()
        _log.info("listening for local devices on %s:%d", self.host, self.port)

    def _on_disconnect(self, *_args: Any) -> None:
        self.connected.clear()

    def _on_message(self, client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self.bridge is not None and msg.topic.endswith(_ANSWER_SUFFIXES):
            self._answer(msg.topic, bytes(msg.payload))
            client.ack(msg.mid, msg.qos)
            return
        try:
            accepted = self._accept(msg.topic, bytes(msg.payload))
        except QueueError as exc:
            # Not acknowledged: the broker keeps it for our session and sends it again.
            _log.error("cannot store a local batch (%s); reconnecting to get it again", exc)
            self._broken_since = time.monotonic()
            client.disconnect()
            return
        except (PayloadError, TopicError) as exc:
            self.metrics.add("rejected_batches")
            self._log_rate_limited("refused a local batch on %s: %s", msg.topic, exc)
            accepted = False
        client.ack(msg.mid, msg.qos)
        if accepted is None:
            self.metrics.add("refused_devices")

    def _answer(self, topic: str, payload: bytes) -> None:
        try:
            device = parse_topic(topic).device_id
        except TopicError as exc:
            self._log_rate_limited("refused a local answer on %s: %s", topic, exc)
            return
        allowed = self.allowed
        if allowed is not None and device not in allowed:
            self.metrics.add("refused_devices")
            return
        assert self.bridge is not None
        self.bridge.from_local(topic, payload)

    def _accept(self, topic: str, payload: bytes) -> bool | None:
        _root, version, device, channel = parse_topic(topic)
        if version != 1 or channel not in BATCH_CHANNELS:
            raise TopicError(topic, "not a version 1 batch channel")
        allowed = self.allowed
        if allowed is not None and device not in allowed:
            self._log_rate_limited("ignored batch of %s: not in the device list", device)
            return None
        batch = decode_batch(payload, device_id=device, kind=channel.value)
        if self.bridge is not None:
            self.bridge.device_seen(device)
        sent_offset = batch.sent - now_ms()
        up_offset = batch.up - uptime_ms() if batch.up is not None else None
        items: list[bytes] = []
        readings: list[tuple[int, dict[str, float | None]]] = []
        telemetry = batch.kind is BatchKind.TELEMETRY
        scored = telemetry and self.on_readings is not None
        for entry in batch.entries:
            seq = entry.pop("seq")
            if scored:
                readings.append((entry["t"], entry["m"]))
            if telemetry and self.bandwidth.active:
                kept = self.bandwidth.apply(device, entry["t"], entry["m"])
                if len(kept) < len(entry["m"]):
                    self.metrics.add("filtered_values", len(entry["m"]) - len(kept))
                if not kept:
                    continue
                entry = {**entry, "m": kept}
            items.append(
                encode_item(
                    device, batch.boot, seq, orjson.dumps(entry), sent_offset_ms=sent_offset,
                    up_offset_ms=up_offset, dropped=batch.dropped,
                )
            )  # fmt: skip
        if items:
            self.store.append(batch.kind, items)
        self.metrics.add("received_entries", len(batch.entries))
        if readings and self.on_readings is not None:
            self.on_readings(device, readings)
        return True

    def _log_rate_limited(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last_log >= 10.0:
            self._last_log = now
            _log.warning(message, *args)
