"""The receive side: a paho-mqtt client in its own thread, acknowledging only on request.

* MQTT 5 with a persistent session (``clean_start=False`` and a session expiry), manual
  acknowledgement, and shared subscriptions ``$share/{group}/{root}/v1/+/{channel}`` so that
  several workers share the load (``shared=True``). A single worker subscribes without
  ``$share`` (``shared=False``): mosquitto 2.0.11 restores plain subscriptions of a persistent
  session after a broker restart but not shared ones, which are gone until the worker
  subscribes again; whatever devices publish in between has no subscriber and is dropped
  (measured; ``docs/ingest.md``). ``ReceiveMaximum`` asks the broker for at most
  ``max_pending_messages`` unacknowledged messages; the :class:`PendingWindow` enforces the
  bound itself as well (mosquitto 2.0.11 does not hold its inflight limit).
* A broker without MQTT 5 (amqtt) gets MQTT 3.1.1 with ``clean_session=False`` and plain
  subscriptions; the log says so. Without shared subscriptions every worker would receive
  everything, so only one worker may run.
* Acknowledgements: :meth:`Receiver.ack` sends ``PUBACK`` only for messages of the current
  connection. A message that arrived on an earlier connection is redelivered by the broker
  anyway (and deduplicated); acknowledging it on a new connection could acknowledge another
  message that reuses its packet id.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from backend.ingest.decode import INGEST_CHANNELS
from backend.ingest.errors import BrokerProtocolError
from backend.ingest.metrics import IngestMetrics
from backend.ingest.pending import Inbound, PendingWindow
from device_sdk.wire import subscription
from fleetcare.cli.mqtt_probe import BrokerEndpoint, probe_broker
from fleetcare.errors import ServiceUnavailableError

log = logging.getLogger("fleetcare.ingest")

Protocol = Literal["5", "3.1.1"]
_CHANNEL_LABELS = frozenset(c.value for c in INGEST_CHANNELS)


def choose_protocol(broker_url: str, timeout_s: float = 5.0, wait_s: float = 30.0) -> Protocol:
    """MQTT 5 when the broker accepts it, else 3.1.1; retries while the broker is unreachable.

    Raises:
        ServiceUnavailableError: no CONNACK for either protocol within ``wait_s``.
    """
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return probe_broker(broker_url, timeout_s).protocol
        except ServiceUnavailableError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(1.0)


class Receiver:
    """One MQTT client feeding a :class:`PendingWindow`.

    Args:
        broker_url: ``mqtt://`` or ``mqtts://`` URL.
        root: topic root.
        client_id: stable across restarts (the persistent session is keyed on it).
        window: where received messages go (``put`` blocks while it is full).
        protocol: from :func:`choose_protocol`.
    """

    def __init__(
        self,
        broker_url: str,
        root: str,
        client_id: str,
        window: PendingWindow,
        metrics: IngestMetrics,
        *,
        protocol: Protocol,
        shared: bool = True,
        share_group: str = "fleetcare-ingest",
        session_expiry_s: int = 7 * 86_400,
        keepalive_s: int = 60,
    ) -> None:
        self.endpoint = BrokerEndpoint.from_url(broker_url)
        self.root = root
        self.client_id = client_id
        self.window = window
        self.metrics = metrics
        self.protocol: Protocol = protocol
        self.shared = shared and protocol == "5"
        self.share_group = share_group
        self.session_expiry_s = session_expiry_s
        self.keepalive_s = keepalive_s
        self._lock = threading.Lock()
        self._generation = 0
        self._connected = threading.Event()
        self._client = self._make_client()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def topics(self, shared: bool | None = None) -> list[str]:
        """The subscription filters (with ``$share/{group}/`` when shared)."""
        filters = [subscription(channel, root=self.root) for channel in INGEST_CHANNELS]
        if self.shared if shared is None else shared:
            return [f"$share/{self.share_group}/{f}" for f in filters]
        return filters

    def _make_client(self) -> mqtt.Client:
        v5 = self.protocol == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        if self.endpoint.username is not None:
            client.username_pw_set(self.endpoint.username, self.endpoint.password)
        if self.endpoint.tls:
            client.tls_set_context(ssl.create_default_context())
        client.reconnect_delay_set(min_delay=1, max_delay=5)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def start(self) -> None:
        """Connect in the background (paho's thread reconnects by itself)."""
        client = self._client
        if self.protocol == "5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self.session_expiry_s
            props.ReceiveMaximum = min(65_535, self.window.max_messages)
            client.connect_async(
                self.endpoint.host,
                self.endpoint.port,
                self.keepalive_s,
                clean_start=False,
                properties=props,
            )
        else:
            log.warning(
                "broker %s:%s does not speak MQTT 5: using MQTT 3.1.1 without shared "
                "subscriptions (run a single ingest worker)",
                self.endpoint.host,
                self.endpoint.port,
            )
            client.connect_async(self.endpoint.host, self.endpoint.port, self.keepalive_s)
        client.loop_start()

    def stop(self) -> None:
        """Disconnect (the session stays on the broker) after the acknowledgements queued."""
        self.window.close()
        try:
            self._client.disconnect()
        finally:
            self._client.loop_stop()
            self._connected.clear()

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
        self.metrics.mqtt_connects.inc(1, self.protocol)
        session = bool(getattr(flags, "session_present", False))
        log.info(
            "connected to %s:%s as %s (MQTT %s, %s subscription, session %s)",
            self.endpoint.host,
            self.endpoint.port,
            self.client_id,
            self.protocol,
            "shared" if self.shared else "plain",
            "resumed" if session else "new",
        )
        if self.protocol == "5":
            if session:  # the other mode's filters, from an earlier run, would deliver twice
                client.unsubscribe(self.topics(shared=not self.shared))
            options = SubscribeOptions(qos=1)
            client.subscribe([(topic, options) for topic in self.topics()])
        elif not session:
            client.subscribe([(topic, 1) for topic in self.topics()])

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, properties: Any
    ) -> None:
        refused = [r for r in reasons if getattr(r, "is_failure", False)]
        if refused:
            log.error("broker refused subscriptions of %s: %s", self.client_id, refused)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        with self._lock:
            self._generation += 1
            self._connected.clear()
        if not self.window.closed:
            log.warning("disconnected from the broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = bytes(message._topic).decode("utf-8", "replace")
        channel = topic.rsplit("/", 1)[-1]
        self.metrics.messages_received.inc(1, channel if channel in _CHANNEL_LABELS else "other")
        inbound = Inbound(
            topic=topic,
            payload=bytes(message.payload),
            mid=message.mid,
            qos=message.qos,
            dup=bool(message.dup),
            retain=bool(message.retain),
            generation=self._generation,
            received_at=time.time(),
        )
        # Blocks while the window is full: paho's loop pauses and the broker keeps the rest.
        self.window.put(inbound)

    # -- acknowledgements (writer's thread) ------------------------------------------------

    def ack(self, messages: list[Inbound]) -> None:
        """Acknowledge ``messages`` (their batch is committed) and free their room."""
        sent = skipped = 0
        with self._lock:
            current = self._generation if self._connected.is_set() else -1
            for message in messages:
                if message.qos == 0:
                    continue
                if message.generation == current:
                    self._client.ack(message.mid, message.qos)
                    sent += 1
                else:
                    skipped += 1
        self.metrics.acks.inc(sent)
        self.metrics.acks_skipped.inc(skipped)
        self.window.release(messages)


def require_single_worker(protocol: Protocol, workers: int) -> None:
    """Refuse several workers without shared subscriptions (each would get every message)."""
    if protocol != "5" and workers > 1:
        raise BrokerProtocolError(
            f"the broker speaks MQTT 3.1.1 only: no shared subscriptions, so {workers} "
            "workers would each receive every message; run one worker or use an MQTT 5 broker"
        )
