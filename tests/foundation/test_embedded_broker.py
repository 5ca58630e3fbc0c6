"""The embedded MQTT brokers: amqtt carries QoS 1, and the choice honours the environment."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from fleetcare.cli.mqtt_probe import probe_broker
from fleetcare.embedded import broker as broker_module
from fleetcare.embedded.amqtt_broker import AmqttBroker
from fleetcare.embedded.broker import (
    BROKER_CHOICE_ENV,
    choose_broker_kind,
    start_embedded_broker,
)
from fleetcare.embedded.mosquitto import mosquitto_binary
from fleetcare.errors import ConfigError, EmbeddedServiceError


def _client(name: str, port: int) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv311)
    client.connect("127.0.0.1", port, keepalive=10)
    client.loop_start()
    return client


def _closed(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_amqtt_passes_a_qos1_message_between_two_paho_clients(tmp_path: Path) -> None:
    received: list[tuple[str, bytes, int]] = []
    got = threading.Event()
    subscribed = threading.Event()
    with AmqttBroker(tmp_path / "amqtt") as broker:
        subscriber = _client("fc-sub", broker.port)
        publisher = _client("fc-pub", broker.port)
        try:

            def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
                received.append((msg.topic, msg.payload, msg.qos))
                got.set()

            def on_subscribe(*args: object) -> None:
                subscribed.set()

            subscriber.on_message = on_message
            subscriber.on_subscribe = on_subscribe
            subscriber.subscribe("fc/test/+", qos=1)
            assert subscribed.wait(5), "no SUBACK from amqtt"
            info = publisher.publish("fc/test/a", b"\x00payload", qos=1)
            info.wait_for_publish(5)
            assert info.is_published(), "no PUBACK from amqtt"
            assert got.wait(5), "message not delivered"
        finally:
            for client in (subscriber, publisher):
                client.disconnect()
                client.loop_stop()
        assert received == [("fc/test/a", b"\x00payload", 1)]
        port = broker.port
    assert _closed(port)


def test_amqtt_speaks_mqtt_311_only(tmp_path: Path) -> None:
    with AmqttBroker(tmp_path / "amqtt") as broker:
        probe = probe_broker(broker.url, timeout_s=3)
    assert probe.protocol == "3.1.1"
    assert not probe.supports_mqtt5


def test_amqtt_kill_and_restart_keep_the_port(tmp_path: Path) -> None:
    broker = AmqttBroker(tmp_path / "amqtt")
    broker.start()
    port = broker.port
    broker.kill()
    assert not broker.running
    broker.start()
    try:
        assert broker.port == port
        assert not _closed(port)
    finally:
        broker.stop()


def test_forced_amqtt_is_chosen(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(BROKER_CHOICE_ENV, "amqtt")
    assert choose_broker_kind() == "amqtt"
    broker = start_embedded_broker(tmp_path / "broker")
    try:
        assert broker.kind == "amqtt"
        assert broker.supports_mqtt5 is False
        assert probe_broker(broker.url, timeout_s=3).protocol == "3.1.1"
    finally:
        broker.stop()
    assert not broker.running


@pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto not installed")
def test_mosquitto_is_preferred_and_speaks_mqtt5(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(BROKER_CHOICE_ENV, raising=False)
    broker = start_embedded_broker(tmp_path / "broker")
    try:
        assert broker.kind == "mosquitto"
        assert broker.version is not None
        assert broker.supports_mqtt5
        assert probe_broker(broker.url, timeout_s=3).protocol == "5"
    finally:
        broker.stop()


def test_falls_back_to_amqtt_without_mosquitto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BROKER_CHOICE_ENV, raising=False)
    monkeypatch.setattr(broker_module, "mosquitto_binary", lambda: None)
    assert choose_broker_kind() == "amqtt"


def test_forcing_a_missing_mosquitto_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BROKER_CHOICE_ENV, "mosquitto")
    monkeypatch.setattr(broker_module, "mosquitto_binary", lambda: None)
    with pytest.raises(EmbeddedServiceError, match="not installed"):
        choose_broker_kind()


def test_an_unknown_broker_choice_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BROKER_CHOICE_ENV, "rabbitmq")
    with pytest.raises(ConfigError) as caught:
        choose_broker_kind()
    assert caught.value.problems[0][0] == BROKER_CHOICE_ENV
