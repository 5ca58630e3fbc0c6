"""Readings that nobody subscribes to (MQTT 5 ``PUBACK`` 0x10) are held, not lost.

Mosquitto answers a QoS 1 publication that matched no subscription with reason 0x10 ("No
matching subscribers"): a success code, so a client that stops there has lost the message.
It happens when the backend is not listening, e.g. after a broker restart that forgot the
ingest's shared subscription until the workers subscribe again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from device_sdk import DeviceClient, DeviceConfig
from fleetcare.embedded.mosquitto import MosquittoBroker
from tests.device_sdk.conftest import Collector

pytestmark = [pytest.mark.services]

CollectorFactory = Callable[[MosquittoBroker, str], Collector]


def _record(client: DeviceClient, count: int) -> list[int]:
    return [client.record({"temp_c": 20.0 + i / 10}) for i in range(count)]


def test_readings_without_a_subscriber_are_held_until_one_subscribes(
    broker: MosquittoBroker,
    collector_factory: CollectorFactory,
    make_config: Callable[..., DeviceConfig],
    topic_root: str,
) -> None:
    config = make_config(broker.url, protocol="5", batch_max_entries=50)
    with DeviceClient(config) as client:
        client.wait_connected(5)
        seqs = _record(client, 300)
        time.sleep(1.5)  # several hold rounds (backoff 0.1 s doubling to 0.5 s)
        held = client.health()
        assert held.sent == 0, "no subscriber: nothing may count as delivered"
        assert held.queued == 300
        assert held.unrouted >= 2, "held, then tried again at least once"
        assert held.last_error is not None and "no subscriber" in held.last_error
        collector = collector_factory(broker, topic_root)
        collector.wait_for(lambda: collector.seqs("dev-1") == set(seqs), timeout=10)
        deadline = time.monotonic() + 5
        while client.health().sent < 300 and time.monotonic() < deadline:
            time.sleep(0.05)
        after = client.health()
    assert after.sent == 300
    assert after.queued == 0
    assert collector.duplicates() == 0
    assert not collector.errors


def test_hold_can_be_switched_off(
    broker: MosquittoBroker, make_config: Callable[..., DeviceConfig]
) -> None:
    config = make_config(broker.url, protocol="5", hold_unrouted=False)
    with DeviceClient(config) as client:
        client.wait_connected(5)
        _record(client, 100)
        deadline = time.monotonic() + 5
        while client.health().sent < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.health().sent == 100  # the broker's word is final: delivered to nobody
