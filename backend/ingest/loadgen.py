"""A synthetic fleet publishing wire-format telemetry batches: for tests and benchmarks.

Every device publishes on ``{root}/v1/{device}/telemetry`` batches of ``readings_per_message``
readings with ``len(metrics)`` metrics each, with consecutive sequence numbers from
``first_seq``, at QoS 1. Entry times are the time the batch is built (the device "flushes"
at once), so the ingest's end-to-end lag is broker plus ingest time.

The publisher caps what it has in flight (paho reuses packet ids past 65,535 outstanding
messages, a paho-mqtt limit) and keeps a persistent session, so a broker restart makes
paho resend what was not acknowledged. ``acked_readings`` counts readings the broker took.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from backend.storage.catalogue import MetricSpec, ensure_device, ensure_device_model
from backend.storage.connect import connect
from device_sdk.wire import BatchKind, Channel, build_topic, encode_batch
from fleetcare.cli.mqtt_probe import BrokerEndpoint

DEFAULT_METRICS = (
    "flow_lpm",
    "pressure_bar",
    "motor_temp_c",
    "vibration_mm_s",
    "current_a",
    "voltage_v",
    "speed_rpm",
    "power_kw",
)


@dataclass(frozen=True)
class FleetSpec:
    """What the simulated fleet looks like."""

    prefix: str = "sim"
    devices: int = 20
    metrics: tuple[str, ...] = DEFAULT_METRICS
    readings_per_message: int = 50
    model: str = "sim-pump"

    def device_id(self, index: int) -> str:
        return f"{self.prefix}-{index:05d}"

    @property
    def device_ids(self) -> list[str]:
        return [self.device_id(i) for i in range(self.devices)]

    @property
    def rows_per_message(self) -> int:
        return self.readings_per_message * len(self.metrics)


def register_fleet(database_url: str, spec: FleetSpec) -> dict[str, int]:
    """Register the model (with its metric catalogue) and every device; external id → id."""
    with connect(database_url) as conn:
        model_id = ensure_device_model(
            conn, spec.model, "pump", [MetricSpec(name) for name in spec.metrics]
        )
        ids = {ext: ensure_device(conn, ext, model_id) for ext in spec.device_ids}
        conn.commit()
    return ids


_BODIES = 240


def _value(device: int, seq: int, metric: int) -> float:
    return round(50 + 40 * math.sin(seq / 30 + device) + metric, 3)


@dataclass
class PublishStats:
    """What a publisher sent so far."""

    published: int = 0
    acked_messages: int = 0
    acked_readings: int = 0
    started_at: float = field(default_factory=time.monotonic)


class FleetPublisher:
    """Publishes the fleet's telemetry through one MQTT connection.

    Args:
        broker_url: where to publish.
        root: topic root.
        spec: the fleet.
        first_seq: sequence number of each device's first reading.
        max_in_flight: most messages published and not acknowledged by the broker.
        protocol: ``"5"`` or ``"3.1.1"``.
    """

    def __init__(
        self,
        broker_url: str,
        root: str,
        spec: FleetSpec,
        *,
        first_seq: int = 0,
        max_in_flight: int = 1000,
        protocol: str = "5",
        client_id: str | None = None,
    ) -> None:
        self.spec = spec
        self.root = root
        self.endpoint = BrokerEndpoint.from_url(broker_url)
        self.next_seq = [first_seq] * spec.devices
        self.stats = PublishStats()
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._readings_by_mid: dict[int, int] = {}
        self._early: set[int] = set()
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._topics = [build_topic(d, Channel.TELEMETRY, root) for d in spec.device_ids]
        self.first_seq = first_seq
        self._bodies = [
            orjson.dumps({name: _value(0, k, i) for i, name in enumerate(spec.metrics)})
            for k in range(_BODIES)
        ]
        v5 = protocol == "5"
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"fleet-sim-{secrets.token_hex(4)}",
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if v5 else False,
        )
        self._v5 = v5
        self._client.max_inflight_messages_set(100)
        self._client.max_queued_messages_set(0)
        self._client.reconnect_delay_set(1, 2)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object
    ) -> None:
        self._connected.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object
    ) -> None:
        self._connected.clear()

    def _on_publish(
        self, client: mqtt.Client, userdata: object, mid: int, reason: object, props: object
    ) -> None:
        with self._lock:
            readings = self._readings_by_mid.pop(mid, None)
            if readings is None:  # acknowledged before publish_raw recorded it
                self._early.add(mid)
                return
            self._acked(readings)

    def _acked(self, readings: int) -> None:
        self.stats.acked_messages += 1
        self.stats.acked_readings += readings
        self._slots.release()

    def start(self, timeout_s: float = 10.0) -> None:
        if self._v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 3600
            self._client.connect(
                self.endpoint.host, self.endpoint.port, 30, clean_start=False, properties=props
            )
        else:
            self._client.connect(self.endpoint.host, self.endpoint.port, 30)
        self._client.loop_start()
        if not self._connected.wait(timeout_s):
            raise TimeoutError("fleet publisher: no connection to the broker")

    def message(self, device: int, now_ms: int | None = None) -> tuple[str, bytes, int]:
        """The next batch of ``device``: ``(topic, payload, readings)``; advances its seq."""
        now_ms = now_ms if now_ms is not None else time.time_ns() // 1_000_000
        n = self.spec.readings_per_message
        first = self.next_seq[device]
        self.next_seq[device] = first + n
        bodies = self._bodies
        entries = [
            (seq, b'{"t":%d,"m":%b}' % (now_ms, bodies[(seq + device) % len(bodies)]))
            for seq in range(first, first + n)
        ]
        payload = encode_batch(
            device=self.spec.device_id(device),
            kind=BatchKind.TELEMETRY,
            boot="sim",
            sent=now_ms,
            up=None,
            dropped=0,
            entries=entries,
        )
        return self._topics[device], payload, n

    def publish_raw(self, topic: str, payload: bytes, readings: int = 0, qos: int = 1) -> None:
        """Publish any payload (counted in ``readings`` when the broker acknowledges it)."""
        self._slots.acquire()
        # Not under self._lock: paho holds its own lock while it calls on_publish.
        info = self._client.publish(topic, payload, qos=qos)
        with self._lock:
            self.stats.published += 1
            if qos == 0:
                self._slots.release()
            elif info.mid in self._early:
                self._early.discard(info.mid)
                self._acked(readings)
            else:
                self._readings_by_mid[info.mid] = readings

    def publish(
        self,
        messages: int,
        *,
        rate: float | None = None,
        stop: threading.Event | None = None,
        devices: Sequence[int] | None = None,
    ) -> int:
        """Publish ``messages`` batches round-robin over ``devices`` (all by default).

        Args:
            rate: messages per second (``None``: as fast as the broker takes them).
            stop: ends early when set.

        Returns:
            the number of messages published.
        """
        order = list(devices) if devices is not None else list(range(self.spec.devices))
        started = time.monotonic()
        for count in range(messages):
            if stop is not None and stop.is_set():
                return count
            if rate:
                due = started + count / rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            topic, payload, readings = self.message(order[count % len(order)])
            self.publish_raw(topic, payload, readings)
        return messages

    def wait_acked(self, timeout_s: float) -> bool:
        """Wait until the broker acknowledged everything published."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if not self._readings_by_mid:
                    return True
            time.sleep(0.05)
        return False

    @property
    def readings_sent(self) -> int:
        """Distinct readings published so far (acknowledged or not)."""
        return sum(self.next_seq) - self.first_seq * self.spec.devices

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
