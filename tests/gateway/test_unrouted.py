"""Forwarded batches nobody subscribes to (MQTT 5 ``PUBACK`` 0x10) are held, not lost.

Mosquitto answers a QoS 1 publication that matched no subscription with reason 0x10 ("No
matching subscribers"): a success code, so a gateway that acknowledged its queue on it lost
the batch. It happens when the backend is not listening, e.g. after a broker restart that
forgot the ingest's shared subscriptions until the workers subscribe again. Also here: a
publication the broker refuses (reason >= 0x80) is kept, and the uplink's protocol choice
(MQTT 5, falling back to 3.1.1 for a broker without it).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from device_sdk import DeviceClient, DeviceConfig
from fleetcare.embedded.mosquitto import MosquittoBroker
from gateway.config import GatewayConfig
from gateway.service import BackgroundGateway, Gateway
from tests.fixtures.fix_mqtt import MosquittoFactory
from tests.gateway.conftest import Collector, broker_config

pytestmark = [pytest.mark.services]

CollectorFactory = Callable[[MosquittoBroker, str], Collector]
DEVICES = ("dev-a", "dev-b", "dev-c")
READINGS = 200  # per device


def _send_through_local(local: MosquittoBroker, root: str, tmp: Path) -> dict[str, set[int]]:
    """Three SDK devices record READINGS each to the local broker; returns their seqs."""
    accepted: dict[str, set[int]] = {}
    for device in DEVICES:
        config = DeviceConfig(
            device_id=device,
            broker_urls=[local.url],
            queue_path=tmp / f"queue-{device}",
            topic_root=root,
            reconnect_min_s=0.1,
            reconnect_max_s=0.5,
            batch_linger_s=0.01,
            state_interval_s=0,
        )
        with DeviceClient(config) as client:
            client.wait_connected(10)
            readings = [(None, {"temp_c": 20.0 + i / 10}) for i in range(READINGS)]
            accepted[device] = set(client.record_many(readings))
            client.flush(10)
    return accepted


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _started(gateway: Gateway) -> None:
    assert gateway.uplink is not None and gateway.uplink.connected.wait(10)
    assert gateway.intake is None or gateway.intake.connected.wait(10)


def test_batches_nobody_subscribes_to_are_held_until_a_subscriber_appears(
    brokers: tuple[MosquittoBroker, MosquittoBroker],
    collector_factory: CollectorFactory,
    gateway_config: Callable[..., GatewayConfig],
    topic_root: str,
    tmp_path: Path,
) -> None:
    local, central = brokers
    config = gateway_config(central.url, local.url, uplink={"batch_max_entries": 50})
    total = len(DEVICES) * READINGS
    with BackgroundGateway(config) as running:
        gateway = running.gateway
        _started(gateway)
        forwarder = gateway.forwarder
        assert forwarder is not None
        accepted = _send_through_local(local, topic_root, tmp_path)
        _wait(lambda: gateway.metrics.snapshot()["received_entries"] == total, 10, "intake")
        time.sleep(1.5)  # several hold rounds (backoff 0.1 s doubling to 0.5 s)
        held = forwarder.health()
        held_metrics = gateway.metrics.snapshot()
        collector = collector_factory(central, topic_root)
        collector.wait_for(
            lambda: all(collector.seqs(d) == seqs for d, seqs in accepted.items()), timeout=15
        )
        _wait(lambda: forwarder.health().queued == 0, 5, "queue acknowledged")
        after = forwarder.health()
        metrics = gateway.metrics.snapshot()
    assert held.protocol == "MQTTv5"
    assert held.connected
    assert held.sent == 0 and held_metrics["forwarded_entries"] == 0, "nothing may count as sent"
    assert held.queued == total, "every entry is still in the gateway's queue"
    assert held.unrouted >= 2, "held, then sent again at least once"
    assert held_metrics["unrouted_batches"] == held.unrouted
    assert held.last_error is not None and "no subscriber" in held.last_error
    # after the subscriber appeared: everything, exactly once after dedup on (device, seq)
    for device, seqs in accepted.items():
        assert collector.seqs(device) == seqs, device
    assert collector.duplicates() == 0, "nothing is read again while batches are in flight"
    assert not collector.errors
    assert after.sent == total and metrics["forwarded_entries"] == total
    assert metrics["refused_batches"] == 0


def test_hold_unrouted_off_the_brokers_acknowledgement_is_final(
    brokers: tuple[MosquittoBroker, MosquittoBroker],
    collector_factory: CollectorFactory,
    gateway_config: Callable[..., GatewayConfig],
    topic_root: str,
    tmp_path: Path,
) -> None:
    local, central = brokers
    config = gateway_config(central.url, local.url, uplink={"hold_unrouted": False})
    total = len(DEVICES) * READINGS
    with BackgroundGateway(config) as running:
        gateway = running.gateway
        _started(gateway)
        assert gateway.forwarder is not None
        accepted = _send_through_local(local, topic_root, tmp_path)
        _wait(lambda: gateway.metrics.snapshot()["forwarded_entries"] == total, 10, "forwarding")
        health = gateway.forwarder.health()
        collector = collector_factory(central, topic_root)
        time.sleep(1.0)  # nothing is sent again: it was acknowledged to nobody
    assert health.protocol == "MQTTv5"
    assert health.queued == 0 and health.sent == total
    assert health.unrouted == 0
    assert all(not collector.seqs(device) for device in accepted)


def test_a_refused_publication_is_kept_and_sent_again(
    mosquitto_factory: MosquittoFactory,
    collector_factory: CollectorFactory,
    gateway_config: Callable[..., GatewayConfig],
    topic_root: str,
    tmp_path: Path,
) -> None:
    """MQTT 5 brokers refuse in the PUBACK (here 0x87, not authorised): not an acknowledgement."""
    acl = tmp_path / "central.acl"
    acl.write_text(f"topic readwrite {topic_root}/v1/gw-test/#\ntopic read {topic_root}/#\n")
    local = mosquitto_factory(broker_config())
    central = mosquitto_factory(broker_config(acl_file=acl))
    collector = collector_factory(central, topic_root)
    total = len(DEVICES) * READINGS
    with BackgroundGateway(gateway_config(central.url, local.url)) as running:
        gateway = running.gateway
        _started(gateway)
        assert gateway.forwarder is not None
        accepted = _send_through_local(local, topic_root, tmp_path)
        _wait(lambda: gateway.metrics.snapshot()["refused_batches"] >= 2, 10, "refusals")
        refused = gateway.forwarder.health()
        forwarded_while_refused = gateway.metrics.snapshot()["forwarded_entries"]
        acl.write_text(f"topic readwrite {topic_root}/#\n")
        assert central.pid is not None
        os.kill(central.pid, signal.SIGHUP)  # mosquitto reloads its ACL
        collector.wait_for(
            lambda: all(collector.seqs(d) == seqs for d, seqs in accepted.items()), timeout=15
        )
        metrics = gateway.metrics.snapshot()
    assert forwarded_while_refused == 0 and refused.queued == total
    assert refused.last_error is not None and "0x87" in refused.last_error
    assert metrics["unrouted_batches"] == 0
    assert not collector.errors


@pytest.mark.slow
def test_falls_back_to_mqtt_311_for_a_broker_without_mqtt_5(
    mosquitto_factory: MosquittoFactory,
    gateway_config: Callable[..., GatewayConfig],
    topic_root: str,
    tmp_path: Path,
) -> None:
    amqtt = pytest.importorskip("fleetcare.embedded.amqtt_broker")
    if amqtt.amqtt_version() is None:
        pytest.skip("amqtt is not installed")
    central = amqtt.AmqttBroker(tmp_path / "amqtt")
    (tmp_path / "amqtt").mkdir()
    central.start()
    local = mosquitto_factory(broker_config())
    try:
        collector = Collector(central.port, topic_root).start()
        try:
            # amqtt never answers an MQTT 5 CONNECT with a will: give up on it after 1 s
            config = gateway_config(central.url, local.url, uplink={"connect_timeout_s": 1})
            started = time.monotonic()
            with BackgroundGateway(config) as running:
                gateway = running.gateway
                _started(gateway)
                took = time.monotonic() - started
                assert gateway.forwarder is not None
                accepted = _send_through_local(local, topic_root, tmp_path)
                collector.wait_for(
                    lambda: all(collector.seqs(d) == s for d, s in accepted.items()), timeout=30
                )
                health = gateway.forwarder.health()
                metrics = gateway.metrics.snapshot()
        finally:
            collector.stop()
    finally:
        central.stop()
    assert health.protocol == "MQTTv311"
    assert metrics["connect_failures"] >= 1  # the MQTT 5 CONNECT, not answered
    print(f"fallback took {took:.1f} s")
    assert took < 4.8, f"the fallback took {took:.1f} s"
    assert health.unrouted == 0
    assert not collector.errors


class _FakeBroker:
    """Reads each CONNECT and records its protocol level (5, or 4 for 3.1.1), then:

    * ``silent``: closes without a CONNACK (like some 3.1.1-only brokers given MQTT 5);
    * ``refuse5``: refuses MQTT 5 with reason 0x84 (unsupported protocol version) and
      accepts 3.1.1 (then ignores everything until the client goes).
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.levels: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _address = self.server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(0.2)
                level = self._connect_level(conn)
                if level is None:
                    continue
                self.levels.append(level)
                if self.mode == "silent":
                    continue
                if level == 5:
                    conn.sendall(bytes([0x20, 3, 0, 0x84, 0]))  # CONNACK, refused
                    continue
                conn.sendall(bytes([0x20, 2, 0, 0]))  # CONNACK, accepted
                while not self._stop.is_set():
                    try:
                        if not conn.recv(4096):
                            break
                    except TimeoutError:
                        continue
                    except OSError:
                        break

    def _connect_level(self, conn: socket.socket) -> int | None:
        data = b""
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            at = data.find(b"\x00\x04MQTT")
            if at >= 0 and len(data) > at + 6:
                return data[at + 6]
            try:
                chunk = conn.recv(1024)
            except TimeoutError:
                continue
            if not chunk:
                return None
            data += chunk
        return None

    def __enter__(self) -> _FakeBroker:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.server.close()


@pytest.fixture
def fake_broker(request: pytest.FixtureRequest) -> Iterator[_FakeBroker]:
    with _FakeBroker(request.param) as broker:
        yield broker


@pytest.mark.parametrize(
    ("fake_broker", "protocol", "expected"),
    [("silent", "auto", [5, 4, 5, 4]), ("silent", "5", [5, 5, 5, 5])],
    indirect=["fake_broker"],
)
def test_a_broker_that_never_answers_gets_both_protocols_only_with_auto(
    fake_broker: _FakeBroker,
    protocol: str,
    expected: list[int],
    gateway_config: Callable[..., GatewayConfig],
) -> None:
    config = gateway_config(
        f"mqtt://127.0.0.1:{fake_broker.port}",
        uplink={"protocol": protocol, "reconnect_max_s": 0.2},
    )
    with BackgroundGateway(config) as running:
        _wait(lambda: len(fake_broker.levels) >= 4, 15, "four connection attempts")
        uplink = running.gateway.uplink
        assert uplink is not None and not uplink.connected.is_set()
        assert uplink.last_error is not None and "before CONNACK" in uplink.last_error
    assert fake_broker.levels[:4] == expected


@pytest.mark.parametrize(
    ("fake_broker", "protocol", "expected"),
    [("refuse5", "auto", [5, 4]), ("refuse5", "3.1.1", [4])],
    indirect=["fake_broker"],
)
def test_a_broker_that_refuses_mqtt_5_gets_3_1_1(
    fake_broker: _FakeBroker,
    protocol: str,
    expected: list[int],
    gateway_config: Callable[..., GatewayConfig],
) -> None:
    config = gateway_config(f"mqtt://127.0.0.1:{fake_broker.port}", uplink={"protocol": protocol})
    with BackgroundGateway(config) as running:
        uplink = running.gateway.uplink
        forwarder = running.gateway.forwarder
        assert uplink is not None and forwarder is not None
        assert uplink.connected.wait(10)
        health = forwarder.health()
    assert fake_broker.levels == expected
    assert health.protocol == "MQTTv311"


def test_mqtt_5_only_does_not_fall_back(gateway_config: Callable[..., GatewayConfig]) -> None:
    with _FakeBroker("refuse5") as broker:
        config = gateway_config(f"mqtt://127.0.0.1:{broker.port}", uplink={"protocol": "5"})
        with BackgroundGateway(config) as running:
            _wait(lambda: len(broker.levels) >= 3, 10, "three connection attempts")
            uplink = running.gateway.uplink
            assert uplink is not None and not uplink.connected.is_set()
            assert uplink.last_error is not None and "refused" in uplink.last_error
            failures = running.gateway.metrics.snapshot()["connect_failures"]
    assert set(broker.levels) == {5}
    assert failures >= 3
