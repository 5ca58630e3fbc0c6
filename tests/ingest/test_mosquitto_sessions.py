"""What mosquitto does with persistent sessions across a restart (the ingest relies on it).

Measured, not assumed: the subscription modes of ``docs/ingest.md`` follow from these facts.
"""

from __future__ import annotations

import os
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from fleetcare.embedded.mosquitto import MosquittoBroker, MosquittoConfig
from tests.fixtures.fix_mqtt import MosquittoFactory
from tests.ingest.helpers import wait_until

pytestmark = [pytest.mark.services]

SHARED = "$share/g/exp/#"
PLAIN = "exp/#"


class Member:
    """A persistent MQTT 5 session that records what it receives."""

    def __init__(self, broker: MosquittoBroker, client_id: str, subscribe: str | None) -> None:
        self.broker = broker
        self.subscribe = subscribe
        self.got: list[str] = []
        self.session_present: bool | None = None
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
        )
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: object, rc: object, props: object
    ) -> None:
        self.session_present = bool(getattr(flags, "session_present", False))
        if self.subscribe is not None:
            client.subscribe([(self.subscribe, SubscribeOptions(qos=1))])

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.got.append(message.payload.decode())

    def connect(self) -> Member:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", self.broker.port, 30, clean_start=False, properties=props)
        self.client.loop_start()
        assert wait_until(lambda: self.session_present is not None, 10)
        time.sleep(0.3)  # the SUBACK
        return self

    def disconnect(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:  # paho leaves it open when the loop stops before closing it
            sock.close()

    def received(self, prefix: str) -> list[str]:
        with self._lock:
            return sorted(m for m in self.got if m.startswith(prefix))


def publish(broker: MosquittoBroker, payloads: list[str]) -> set[str]:
    """Publish at QoS 1 from an MQTT 5 client; the PUBACK reason codes."""
    reasons: set[str] = set()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="", protocol=MQTTProtocolVersion.MQTTv5
    )
    client.on_publish = lambda c, u, mid, rc, props: reasons.add(str(rc))
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        for payload in payloads:
            client.publish("exp/t", payload, qos=1).wait_for_publish(5)
        assert wait_until(lambda: len(reasons) > 0, 5)
    finally:
        client.disconnect()
        client.loop_stop()
    return reasons


@pytest.fixture
def broker(mosquitto_factory: MosquittoFactory) -> MosquittoBroker:
    extra = ("user root",) if os.geteuid() == 0 else ()
    return mosquitto_factory(MosquittoConfig(extra_lines=extra))


def test_restart_keeps_queued_messages_and_plain_subscriptions_but_not_shared_ones(
    broker: MosquittoBroker,
) -> None:
    a = Member(broker, "member-a", SHARED).connect()
    b = Member(broker, "member-b", SHARED).connect()
    p = Member(broker, "plain-p", PLAIN).connect()
    for member in (a, b, p):
        member.disconnect()
    # Offline shared members still get their share queued in their sessions.
    assert publish(broker, [f"queued-{i:02d}" for i in range(10)]) == {"Success"}
    broker.restart()
    # After the restart the shared subscriptions are gone: no subscriber but the plain one.
    assert publish(broker, [f"gap-{i:02d}" for i in range(10)]) == {"Success"}
    a = Member(broker, "member-a", None).connect()  # resume without subscribing
    b = Member(broker, "member-b", None).connect()
    p = Member(broker, "plain-p", None).connect()
    try:
        assert a.session_present and b.session_present and p.session_present
        assert wait_until(lambda: len(a.got) + len(b.got) >= 10 and len(p.got) >= 20, 10)
        # The queued share of each member survived the restart, split between them.
        queued = a.received("queued") + b.received("queued")
        assert sorted(queued) == [f"queued-{i:02d}" for i in range(10)]
        assert a.received("queued") and b.received("queued")
        # What was published after the restart reached only the restored plain subscription.
        assert a.received("gap") == b.received("gap") == []
        assert p.received("gap") == [f"gap-{i:02d}" for i in range(10)]
        for member in (a, b):  # what ingest does on every CONNACK
            member.client.subscribe([(SHARED, SubscribeOptions(qos=1))])
        time.sleep(0.3)
        assert publish(broker, [f"after-{i:02d}" for i in range(10)]) == {"Success"}
        assert wait_until(lambda: len(a.received("after")) + len(b.received("after")) == 10, 10)
    finally:
        for member in (a, b, p):
            member.disconnect()


def test_after_a_restart_a_shared_only_filter_has_no_subscriber(
    broker: MosquittoBroker,
) -> None:
    a = Member(broker, "member-a", SHARED).connect()
    a.disconnect()
    broker.restart()
    # The session is back (its queue with it) but its shared subscription is not: an MQTT 5
    # publisher is told "no matching subscribers", and the message is gone.
    assert publish(broker, ["gap"]) == {"No matching subscribers"}
    a = Member(broker, "member-a", None).connect()
    try:
        assert a.session_present
        time.sleep(0.5)
        assert a.got == []
        a.client.subscribe([(SHARED, SubscribeOptions(qos=1))])  # what ingest does on CONNACK
        time.sleep(0.3)
        assert publish(broker, ["after"]) == {"Success"}
        assert wait_until(lambda: a.got == ["after"], 5)
    finally:
        a.disconnect()
