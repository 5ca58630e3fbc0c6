"""A blocking MQTT 5 client for broker tests: connect with a login, collect what arrives."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion


class MqttProbe:
    """One client: ``connect()`` returns the CONNACK reason code (0 = accepted)."""

    def __init__(self, port: int, username: str, password: str | None) -> None:
        self.port = port
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=username,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        if password is not None:
            self.client.username_pw_set(username, password)
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._connack: queue.Queue[int] = queue.Queue()
        self._suback: queue.Queue[list[int]] = queue.Queue()
        self._puback: dict[int, threading.Event] = {}
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_connect_fail = lambda *_: self._connack.put(-1)

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._connack.put(int(reason.value))

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        self.messages.put((message.topic, bytes(message.payload)))

    def _on_subscribe(self, _c: Any, _u: Any, _m: Any, reasons: Any, _p: Any) -> None:
        self._suback.put([int(r.value) for r in reasons])

    def connect(self, timeout_s: float = 5.0) -> int:
        self.client.connect("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        try:
            return self._connack.get(timeout=timeout_s)
        except queue.Empty:
            return -1

    def subscribe(self, *topics: str) -> list[int]:
        self.client.subscribe([(topic, 1) for topic in topics])
        return self._suback.get(timeout=5)

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout=5)

    def wait_for(
        self, topic: str, payload: bytes, timeout_s: float = 5.0
    ) -> list[tuple[str, bytes]]:
        """Everything received up to and including ``(topic, payload)``; fail on timeout."""
        seen: list[tuple[str, bytes]] = []
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{topic} {payload!r} not received; got {seen}")
            try:
                item = self.messages.get(timeout=remaining)
            except queue.Empty:
                continue
            seen.append(item)
            if item == (topic, payload):
                return seen

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
