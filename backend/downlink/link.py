"""The downlink service's MQTT connection: publish and wait for the broker, receive answers.

One paho client with a persistent session (MQTT 5 ``Clean Start = 0`` with a session
expiry; 3.1.1 ``Clean Session = 0``), subscribed at QoS 1 to every device's
``commands/reply`` and ``config/reported``. Answers are acknowledged only after the caller
stored them (``manual_ack``), so an answer that arrives while the database is down stays
with the broker. Publishes wait for the broker's acknowledgement; on MQTT 5 its reason code
tells "no device session to queue it in" (0x10) from a delivery.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from backend.broker_client import persistent_session_client
from device_sdk.wire import Channel
from device_sdk.wire import subscription as topic_filter
from fleetcare.cli.mqtt_probe import BrokerEndpoint, MqttProtocol

log = logging.getLogger("fleetcare.downlink")

ANSWER_CHANNELS: tuple[Channel, ...] = (Channel.COMMAND_REPLY, Channel.CONFIG_REPORTED)
_NO_MATCHING_SUBSCRIBERS = 16
_SESSION_EXPIRY_S = 7 * 86_400


@dataclass(frozen=True, slots=True)
class Answer:
    """A message a device published on one of :data:`ANSWER_CHANNELS`."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to publish; ``expiry_s`` becomes the MQTT 5 message expiry."""

    topic: str
    payload: bytes
    retain: bool
    expiry_s: int | None = None


class PublishOutcome:
    """What the broker said about one publish."""

    DELIVERED = "delivered"
    NO_SUBSCRIBERS = "no_subscribers"
    FAILED = "failed"


class DownlinkLink:
    """The service's client: :meth:`publish` waits for the broker; answers arrive in
    :attr:`answers` and are acknowledged with :meth:`ack` once stored."""

    def __init__(
        self,
        broker_url: str,
        root: str,
        client_id: str,
        *,
        protocol: MqttProtocol,
        wake: threading.Event,
        keepalive_s: int = 60,
    ) -> None:
        self.endpoint = BrokerEndpoint.from_url(broker_url)
        self.root = root
        self.client_id = client_id
        self.protocol: MqttProtocol = protocol
        self.answers: queue.Queue[Answer] = queue.Queue()
        self._wake = wake
        self._keepalive_s = keepalive_s
        self._lock = threading.Lock()
        self._generation = 0
        self._connected = threading.Event()
        self._reasons: dict[int, int] = {}
        """PUBACK reason code by message id (MQTT 5; 0 on 3.1.1), until read."""
        self._client = self._make_client()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def topics(self) -> list[str]:
        return [topic_filter(channel, root=self.root) for channel in ANSWER_CHANNELS]

    def _make_client(self) -> mqtt.Client:
        client = persistent_session_client(self.endpoint, self.client_id, self.protocol)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        return client

    def start(self) -> None:
        """Connect in the background (paho's thread reconnects by itself)."""
        if self.protocol == "5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = _SESSION_EXPIRY_S
            self._client.connect_async(
                self.endpoint.host,
                self.endpoint.port,
                self._keepalive_s,
                clean_start=False,
                properties=props,
            )
        else:
            self._client.connect_async(self.endpoint.host, self.endpoint.port, self._keepalive_s)
        self._client.loop_start()

    def stop(self) -> None:
        """Disconnect; the session (and the answers it will collect) stays on the broker."""
        try:
            self._client.disconnect()
        finally:
            self._client.loop_stop()
            self._connected.clear()

    def publish_all(self, messages: list[Outgoing], *, timeout_s: float) -> list[str]:
        """Publish each message at QoS 1, then wait for the broker's acknowledgements.

        Returns:
            one :class:`PublishOutcome` per message: ``delivered``; ``no_subscribers`` (MQTT 5
            reason 0x10: nobody subscribed, so a command went nowhere; a retained message
            is kept all the same); ``failed`` (not connected, refused, or no
            acknowledgement within ``timeout_s`` of the last publish).
        """
        infos: list[mqtt.MQTTMessageInfo | None] = []
        for message in messages:
            if not self._connected.is_set():
                infos.append(None)
                continue
            props = None
            if message.expiry_s is not None and self.protocol == "5":
                props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
                props.MessageExpiryInterval = message.expiry_s
            # No lock of ours around paho's calls: paho runs on_publish holding its own.
            info = self._client.publish(
                message.topic, message.payload, qos=1, retain=message.retain, properties=props
            )
            infos.append(info if info.rc == mqtt.MQTT_ERR_SUCCESS else None)
        deadline = time.monotonic() + timeout_s
        outcomes = [self._outcome(info, deadline) for info in infos]
        for message, outcome in zip(messages, outcomes, strict=True):
            if outcome == PublishOutcome.FAILED:
                log.warning("no acknowledgement from the broker for %s", message.topic)
        return outcomes

    def _outcome(self, info: mqtt.MQTTMessageInfo | None, deadline: float) -> str:
        """Wait for ``info``'s acknowledgement; its reason code was recorded by
        :meth:`_on_publish`, which paho runs before it marks the message published."""
        if info is None:
            return PublishOutcome.FAILED
        while not info.is_published():
            left = deadline - time.monotonic()
            if left <= 0 or not self._connected.is_set():
                return PublishOutcome.FAILED  # sent again by a later round if need be
            try:
                info.wait_for_publish(min(0.2, left))
            except (ValueError, RuntimeError):
                return PublishOutcome.FAILED
        with self._lock:
            reason = self._reasons.pop(info.mid, 0)
        if reason == _NO_MATCHING_SUBSCRIBERS:
            return PublishOutcome.NO_SUBSCRIBERS
        if reason >= 0x80:
            return PublishOutcome.FAILED
        return PublishOutcome.DELIVERED

    def ack(self, answer: Answer) -> None:
        """Acknowledge a stored answer (only on the connection it arrived on: after a
        reconnect the broker sends it again and the store ignores the repeat)."""
        if answer.qos == 0:
            return
        with self._lock:
            if self._connected.is_set() and answer.generation == self._generation:
                self._client.ack(answer.mid, answer.qos)

    # -- callbacks (paho's thread) ---------------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            log.error("broker refused the connection of %s: %s", self.client_id, reason)
            return
        with self._lock:
            self._generation += 1
            self._connected.set()
        session = bool(getattr(flags, "session_present", False))
        log.info(
            "connected to %s:%s as %s (MQTT %s, session %s)",
            self.endpoint.host,
            self.endpoint.port,
            self.client_id,
            self.protocol,
            "resumed" if session else "new",
        )
        if self.protocol == "5" or not session:
            client.subscribe([(topic, 1) for topic in self.topics()])
        self._wake.set()  # what waited for the broker can go now

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        with self._lock:
            self._generation += 1
            self._connected.clear()
        if reason is not None and getattr(reason, "is_failure", False):
            log.warning("disconnected from the broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            generation = self._generation
        self.answers.put(Answer(msg.topic, bytes(msg.payload), msg.mid, msg.qos, generation))
        self._wake.set()

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any
    ) -> None:
        with self._lock:  # read once the message is marked published (see _outcome)
            self._reasons[mid] = int(getattr(reason, "value", 0) or 0)
