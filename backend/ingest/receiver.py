"""The receive side: a paho-mqtt client in its own thread, acknowledging only on request.

* MQTT 5 with a persistent session (``clean_start=False`` and a session expiry) and manual
  acknowledgement. Three ways to subscribe (``subscription``):

  - ``plain``: ``{root}/v1/+/{channel}``, one worker;
  - ``partitioned``: the same plain filters in every worker; worker *i* of *N* writes the
    devices of its :class:`DevicePartition` and acknowledges the others unwritten;
  - ``shared``: ``$share/{group}/{root}/v1/+/{channel}``, the broker splits the load.

  Measured with mosquitto 2.0.11 (``tests/ingest/test_mosquitto_sessions.py``): after a broker
  restart a persistent session comes back with its queued and in-flight messages, and with
  its plain subscriptions, but without its shared ones. Until a member subscribes again,
  what devices publish on a shared-only filter has no subscriber: an MQTT 5 publisher gets
  ``PUBACK`` reason 0x10 (no matching subscribers), a 3.1.1 publisher nothing, and the
  message is gone. So the worker subscribes again on every ``CONNACK``, and ``plain`` and
  ``partitioned`` are the modes that lose nothing across a broker restart.
* ``ReceiveMaximum`` asks the broker for at most ``max_pending_messages`` unacknowledged
  messages; the :class:`PendingWindow` enforces the bound itself as well (mosquitto 2.0.11
  does not hold its inflight limit).
* A broker without MQTT 5 (amqtt) gets MQTT 3.1.1 with ``clean_session=False`` and plain
  subscriptions (partitioned when there are several workers); the log says so.
* Acknowledgements: :meth:`Receiver.ack` sends ``PUBACK`` only for messages of the current
  connection. A message that arrived on an earlier connection is redelivered by the broker
  anyway (and deduplicated); acknowledging it on a new connection could acknowledge another
  message that reuses its packet id.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from backend.broker_client import persistent_session_client
from backend.ingest.decode import INGEST_CHANNELS
from backend.ingest.device_partition import DevicePartition
from backend.ingest.errors import BrokerProtocolError
from backend.ingest.metrics import IngestMetrics
from backend.ingest.pending import Inbound, PendingWindow
from device_sdk.wire import subscription as topic_filter
from fleetcare.cli.mqtt_probe import BrokerEndpoint, probe_broker
from fleetcare.errors import ServiceUnavailableError
from fleetcare.redact import redact_url

log = logging.getLogger("fleetcare.ingest")

Protocol = Literal["5", "3.1.1"]
SubscriptionMode = Literal["shared", "plain", "partitioned"]
_CHANNEL_LABELS = frozenset(c.value for c in INGEST_CHANNELS)


def choose_protocol(broker_url: str, timeout_s: float = 5.0, wait_s: float = 30.0) -> Protocol:
    """MQTT 5 when the broker accepts it, else 3.1.1; retries while the broker is unreachable.

    Raises:
        ServiceUnavailableError: no CONNACK for either protocol within ``wait_s``.
    """
    deadline = time.monotonic() + wait_s
    said = False
    while True:
        try:
            protocol = probe_broker(broker_url, timeout_s).protocol
        except ServiceUnavailableError as exc:
            if time.monotonic() >= deadline:
                raise
            if not said:  # a broker starting beside us is normal; silence is not
                said = True
                log.warning(
                    "waiting up to %.0f s for the mqtt broker at %s (%s)",
                    wait_s, exc.target, exc.attempts[-1] if exc.attempts else "no answer",
                )  # fmt: skip
            time.sleep(1.0)
        else:
            if said:
                log.info("the mqtt broker at %s answers (MQTT %s)", broker_url, protocol)
            return protocol


class Receiver:
    """One MQTT client feeding a :class:`PendingWindow`.

    Args:
        broker_url: ``mqtt://`` or ``mqtts://`` URL.
        root: topic root.
        client_id: stable across restarts (the persistent session is keyed on it).
        window: where received messages go (``put`` blocks while it is full).
        protocol: from :func:`choose_protocol`.
        subscription: ``shared`` (MQTT 5 only; plain on 3.1.1), ``plain`` or
            ``partitioned`` (plain filters; only ``partition``'s devices are written).
        partition: this worker's devices (``partitioned``; ``None``: all of them).
        end_session: end the session when stopped (MQTT 5), for a worker whose session
            must not outlive it (the demo's: nobody would ever take it over).
        retire: take over the session only to empty it: unsubscribe everything, receive
            what it holds (``session_present`` says whether there was one), and end it on
            :meth:`stop`.
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
        subscription: SubscriptionMode = "shared",
        partition: DevicePartition | None = None,
        retire: bool = False,
        end_session: bool = False,
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
        self.shared = subscription == "shared" and protocol == "5"
        self.retire = retire
        self.end_session = end_session or retire
        self.session_present: bool | None = None
        self.partition = partition if subscription == "partitioned" else None
        if self.partition is not None and self.partition.count == 1:
            self.partition = None
        self.share_group = share_group
        self.session_expiry_s = session_expiry_s
        self.keepalive_s = keepalive_s
        self._lock = threading.Lock()
        self._generation = 0
        self._connected = threading.Event()
        self.subscribed = threading.Event()
        """Set when the broker acknowledged the subscriptions of the current connection."""
        self._client = self._make_client()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def layout_id(self) -> int | None:
        """The MQTT 5 subscription identifier of this worker's plain filters: the number of
        partitions (1 for ``plain``); ``None`` for ``shared``.

        The broker stamps each message with the identifier of the subscription that queued
        it, also across restarts (measured with mosquitto 2.0.11). A message stamped with
        another layout (queued before a change of the worker count, or under a shared
        subscription) may not have reached the workers that own it now, so it is written
        whatever its partition; the unique index absorbs the copies.
        """
        if self.shared:
            return None
        return self.partition.count if self.partition is not None else 1

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def topics(self, shared: bool | None = None) -> list[str]:
        """The subscription filters (with ``$share/{group}/`` when shared)."""
        filters = [topic_filter(channel, root=self.root) for channel in INGEST_CHANNELS]
        if self.shared if shared is None else shared:
            return [f"$share/{self.share_group}/{f}" for f in filters]
        return filters

    def _make_client(self) -> mqtt.Client:
        client = persistent_session_client(self.endpoint, self.client_id, self.protocol)
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
                "subscriptions (one worker, or several with subscription = partitioned)",
                self.endpoint.host,
                self.endpoint.port,
            )
            client.connect_async(self.endpoint.host, self.endpoint.port, self.keepalive_s)
        client.loop_start()

    def stop(self) -> None:
        """Disconnect after the acknowledgements queued; the session stays on the broker,
        unless this receiver retires it or was made with ``end_session`` (MQTT 5)."""
        self.window.close()
        try:
            if self.end_session and self.protocol == "5":
                props = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
                props.SessionExpiryInterval = 0
                self._client.disconnect(properties=props)
            else:
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
        self.session_present = session
        if self.retire:
            client.unsubscribe([*self.topics(shared=True), *self.topics(shared=False)])
            return
        log.info(
            "connected to %s:%s as %s (MQTT %s, %s subscription, session %s)",
            self.endpoint.host,
            self.endpoint.port,
            self.client_id,
            self.protocol,
            self._mode_text(),
            "resumed" if session else "new",
        )
        if self.protocol == "5":
            if session:  # the other mode's filters, from an earlier run, would deliver twice
                client.unsubscribe(self.topics(shared=not self.shared))
            # On every CONNACK, session or not: a restarted mosquitto 2.0.11 gives the session
            # back without its shared subscriptions.
            options = SubscribeOptions(qos=1)
            props = None
            if self.layout_id is not None:
                props = Properties(PacketTypes.SUBSCRIBE)  # type: ignore[no-untyped-call]
                props.SubscriptionIdentifier = self.layout_id
            client.subscribe([(topic, options) for topic in self.topics()], properties=props)
        elif not session:
            client.subscribe([(topic, 1) for topic in self.topics()])
        else:  # MQTT 3.1.1 keeps the subscriptions with the session
            self.subscribed.set()

    def _mode_text(self) -> str:
        if self.shared:
            return "shared"
        if self.partition is not None:
            return f"plain, partition {self.partition.index} of {self.partition.count}"
        return "plain"

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, properties: Any
    ) -> None:
        refused = [r for r in reasons if getattr(r, "is_failure", False)]
        if refused:
            log.error("broker refused subscriptions of %s: %s", self.client_id, refused)
        elif len(reasons) == len(INGEST_CHANNELS):  # the SUBSCRIBE, not the UNSUBSCRIBE
            self.subscribed.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        with self._lock:
            self._generation += 1
            self._connected.clear()
            self.subscribed.clear()
        if not self.window.closed:
            log.warning("disconnected from the broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = bytes(message._topic).decode("utf-8", "replace")
        channel = topic.rsplit("/", 1)[-1]
        partition = self.partition
        if partition is not None and not partition.owns(topic) and self._current_layout(message):
            # Another worker writes it; held (without its payload) to be acknowledged in order.
            self.metrics.messages_foreign.inc()
            self.window.put(
                Inbound(
                    topic=topic,
                    payload=b"",
                    mid=message.mid,
                    qos=message.qos,
                    generation=self._generation,
                    foreign=True,
                )
            )
            return
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

    def _current_layout(self, message: mqtt.MQTTMessage) -> bool:
        """Whether the subscription of this layout queued ``message`` (MQTT 3.1.1: assumed)."""
        if self.protocol != "5":
            return True
        ids = getattr(message.properties, "SubscriptionIdentifier", None)
        return ids is not None and self.layout_id in ids

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


def require_single_worker(protocol: Protocol, workers: int, subscription: SubscriptionMode) -> None:
    """Refuse several ``shared`` workers on a broker without shared subscriptions (each would
    receive and write every message); ``partitioned`` works on MQTT 3.1.1 as well."""
    if subscription == "shared" and protocol != "5" and workers > 1:
        raise BrokerProtocolError(
            f"the broker speaks MQTT 3.1.1 only: no shared subscriptions, so {workers} "
            "workers would each write every message; use subscription = partitioned, "
            "run one worker, or use an MQTT 5 broker"
        )


def prepare_partition_sessions(
    broker_url: str,
    root: str,
    client_ids: list[str],
    *,
    protocol: Protocol,
    session_expiry_s: int,
    timeout_s: float = 10.0,
) -> None:
    """Subscribe the persistent session of every worker of a partitioned layout before any
    worker starts.

    A partitioned worker acknowledges the messages of other partitions unwritten; until the
    owner's session is subscribed, such a message would be written by nobody. With every
    session subscribed first, each one queues every message from then on.

    Raises:
        ServiceUnavailableError: a session was not subscribed within ``timeout_s``.
    """
    count = len(client_ids)
    for index, client_id in enumerate(client_ids):
        window = PendingWindow(100, 1024 * 1024)
        receiver = Receiver(
            broker_url,
            root,
            client_id,
            window,
            IngestMetrics(),
            protocol=protocol,
            subscription="partitioned",
            partition=DevicePartition(index, count),
            session_expiry_s=session_expiry_s,
        )
        receiver.start()
        try:
            if not receiver.subscribed.wait(timeout_s):
                raise ServiceUnavailableError(
                    "mqtt broker",
                    redact_url(broker_url),
                    [f"the session of {client_id} was not subscribed in {timeout_s:g} s"],
                )
        finally:
            receiver.stop()  # what it received unacknowledged goes to the worker
