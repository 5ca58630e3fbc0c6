"""The benchmark's lean publisher speaks MQTT correctly: every message arrives once, intact."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from benchmarks.ingest.raw_publisher import RawMqttPublisher, encode_remaining_length
from fleetcare.embedded.mosquitto import MosquittoBroker


@pytest.mark.parametrize(
    ("length", "encoded"),
    [
        (0, b"\x00"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (16_383, b"\xff\x7f"),
        (16_384, b"\x80\x80\x01"),
        (2_097_152, b"\x80\x80\x80\x01"),
    ],
)
def test_remaining_length_is_mqtts_variable_integer(length: int, encoded: bytes) -> None:
    assert encode_remaining_length(length) == encoded


def test_every_message_arrives_once_and_is_acknowledged(mosquitto: MosquittoBroker) -> None:
    received: list[tuple[str, bytes]] = []
    done = threading.Event()
    count = 600

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        received.append((message.topic, message.payload))
        if len(received) == count:
            done.set()

    subscriber = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="raw-pub-probe")
    subscriber.on_message = on_message
    subscriber.connect("127.0.0.1", mosquitto.port)
    subscriber.subscribe("rawpub/#", qos=1)
    subscriber.loop_start()
    try:
        time.sleep(0.3)
        publisher = RawMqttPublisher("127.0.0.1", mosquitto.port, "raw-pub-test", max_in_flight=50)
        publisher.connect()
        # Sizes across the 1-, 2- and 3-byte remaining-length encodings.
        payloads = [bytes([i % 251]) * (i * 97 % 40_000) for i in range(count)]
        for i, payload in enumerate(payloads):
            publisher.publish(f"rawpub/dev-{i % 7}/telemetry", payload, readings=2)
        assert publisher.wait_acked(30)
        publisher.close()
        assert done.wait(30)
    finally:
        subscriber.loop_stop()
        subscriber.disconnect()
    assert publisher.acked_messages == count
    assert publisher.acked_readings == 2 * count
    assert sorted(received) == sorted(
        (f"rawpub/dev-{i % 7}/telemetry", payload) for i, payload in enumerate(payloads)
    )
