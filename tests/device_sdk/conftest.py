"""Helpers for device_sdk tests: a backend stand-in that collects and deduplicates."""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from device_sdk import DeviceConfig
from device_sdk.wire import BATCH_CHANNELS, Channel, decode_batch, parse_topic
from fleetcare.embedded.mosquitto import MosquittoBroker, MosquittoConfig
from tests.fixtures.fix_mqtt import MosquittoFactory


def broker_config(**overrides: Any) -> MosquittoConfig:
    """A private broker's config that works when the tests run as root.

    Started as root, mosquitto drops to the ``mosquitto`` user, which cannot enter pytest's
    0700 temporary directories: persistence, password and certificate files then fail
    ("Permission denied"). ``user root`` keeps it as the user that made the directory.
    """
    lines = ("user root",) if hasattr(os, "geteuid") and os.geteuid() == 0 else ()
    extra = tuple(overrides.pop("extra_lines", ()))
    return MosquittoConfig(extra_lines=lines + extra, **overrides)


@pytest.fixture
def broker(mosquitto_factory: MosquittoFactory) -> MosquittoBroker:
    """A private mosquitto with persistence and deliberate (large) queue limits."""
    return mosquitto_factory(broker_config())


class Collector:
    """Subscribes to ``{root}/v1/+/#`` like the ingest would, and deduplicates on (device, seq).

    It uses a persistent session (clean_session=False, QoS 1), so it gets what was queued
    for it while a broker restarted. Every batch goes through ``decode_batch``.
    """

    def __init__(self, port: int, root: str) -> None:
        self.port = port
        self.root = root
        self.lock = threading.Lock()
        self.arrivals: Counter[tuple[str, int]] = Counter()
        self.entries: dict[tuple[str, int], dict[str, Any]] = {}
        self.batches: list[dict[str, Any]] = []
        self.other: dict[Channel, list[dict[str, Any]]] = {}
        self.errors: list[str] = []
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"collector-{secrets.token_hex(4)}",
            protocol=mqtt.MQTTv311,
            clean_session=False,
        )
        self.client.max_inflight_messages_set(100)
        self.client.reconnect_delay_set(0.05, 0.5)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_args: self._subscribed.set()

    def start(self) -> Collector:
        self.client.connect("127.0.0.1", self.port, keepalive=10)
        self.client.loop_start()
        assert self._subscribed.wait(5), "collector did not subscribe"
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, *_args: Any) -> None:
        client.subscribe(f"{self.root}/v1/+/#", qos=1)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            _root, _version, device, channel = parse_topic(msg.topic)
            if channel in BATCH_CHANNELS:
                batch = decode_batch(msg.payload, device_id=device, kind=channel.value)
                with self.lock:
                    self.batches.append(
                        {
                            "kind": batch.kind,
                            "dropped": batch.dropped,
                            "n": len(batch.entries),
                            "boot": batch.boot,
                            "up": batch.up,
                            "sent": batch.sent,
                        }
                    )
                    for entry in batch.entries:
                        key = (device, entry["seq"])
                        self.arrivals[key] += 1
                        self.entries[key] = entry
            elif msg.payload:
                with self.lock:
                    self.other.setdefault(channel, []).append(orjson.loads(msg.payload))
        except Exception as exc:  # recorded; tests assert there were none
            self.errors.append(f"{msg.topic}: {exc}")

    # views --------------------------------------------------------------------

    def seqs(self, device: str) -> set[int]:
        with self.lock:
            return {seq for (dev, seq) in self.arrivals if dev == device}

    def duplicates(self) -> int:
        with self.lock:
            return sum(n - 1 for n in self.arrivals.values())

    def messages(self, channel: Channel) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.other.get(channel, []))

    def events(self, device: str, event_type: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                e
                for (dev, _s), e in self.entries.items()
                if dev == device and e.get("type") == event_type
            ]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.02)
        raise AssertionError(f"condition not met within {timeout} s; errors: {self.errors[:3]}")

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(5)


@pytest.fixture
def collector_factory() -> Iterator[Callable[[MosquittoBroker, str], Collector]]:
    started: list[Collector] = []

    def start(broker: MosquittoBroker, root: str) -> Collector:
        collector = Collector(broker.port, root).start()
        started.append(collector)
        return collector

    yield start
    for collector in started:
        collector.stop()


@pytest.fixture
def make_config(tmp_path: Path, topic_root: str) -> Callable[..., DeviceConfig]:
    """``make_config(broker_url_or_urls, **overrides)``: a fast-reacting test configuration."""

    def build(urls: str | list[str], **overrides: Any) -> DeviceConfig:
        values: dict[str, Any] = {
            "device_id": "dev-1",
            "broker_urls": [urls] if isinstance(urls, str) else urls,
            "queue_path": tmp_path / f"queue-{overrides.get('device_id', 'dev-1')}",
            "topic_root": topic_root,
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 0.5,
            "connect_timeout_s": 2.0,
            "batch_linger_s": 0.01,
            "state_interval_s": 0,
        }
        values.update(overrides)
        return DeviceConfig(**values)

    return build


def dead_url() -> str:
    """A loopback URL nothing listens on."""
    from fleetcare.embedded.ports import free_tcp_port

    return f"mqtt://127.0.0.1:{free_tcp_port()}"
