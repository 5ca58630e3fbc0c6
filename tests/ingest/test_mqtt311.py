"""A broker without MQTT 5 (amqtt): ingest falls back to 3.1.1, says so, and still delivers."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.ingest.errors import BrokerProtocolError
from backend.ingest.loadgen import FleetPublisher
from backend.ingest.receiver import choose_protocol, require_single_worker
from backend.ingest.service import IngestWorker, WorkerTarget
from backend.ingest.settings import IngestSettings
from fleetcare.embedded.amqtt_broker import AmqttBroker, amqtt_version
from tests.ingest.conftest import FleetFactory
from tests.ingest.helpers import stored, wait_until

pytestmark = pytest.mark.services


@pytest.fixture
def amqtt(tmp_path: Path) -> Iterator[AmqttBroker]:
    if amqtt_version() is None:
        pytest.skip("amqtt is not installed")
    broker = AmqttBroker(tmp_path / "amqtt")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def test_mqtt_311_fallback(
    amqtt: AmqttBroker,
    ingest_db: str,
    root: str,
    fleet: FleetFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert choose_protocol(amqtt.url) == "3.1.1"
    with pytest.raises(BrokerProtocolError):
        require_single_worker("3.1.1", 2, "shared")
    require_single_worker("3.1.1", 2, "partitioned")  # plain filters work on 3.1.1
    caplog.set_level(logging.INFO, "fleetcare.ingest")
    spec = fleet(devices=2, readings_per_message=10, metrics=("a",))
    worker = IngestWorker(
        WorkerTarget(ingest_db, amqtt.url, root), IngestSettings(metrics_port=None)
    )
    worker.start()
    try:
        assert worker.receiver is not None
        assert worker.receiver.wait_connected(10)
        pub = FleetPublisher(amqtt.url, root, spec, protocol="3.1.1")
        pub.start()
        try:
            pub.publish(20)
            assert wait_until(lambda: stored(ingest_db, spec).readings >= 200, 30)
        finally:
            pub.stop()
    finally:
        worker.stop()
    assert stored(ingest_db, spec) == (200, 200, 200)
    assert "does not speak MQTT 5: using MQTT 3.1.1" in caplog.text


def test_two_partitioned_workers_on_mqtt_311(
    amqtt: AmqttBroker, ingest_db: str, root: str, fleet: FleetFactory
) -> None:
    """Without shared subscriptions, two workers split the devices between them."""
    spec = fleet(devices=6, readings_per_message=10, metrics=("a",))
    settings = IngestSettings(metrics_port=None, client_id_prefix=f"p311-{root[-8:]}")
    workers = [
        IngestWorker(WorkerTarget(ingest_db, amqtt.url, root, i, workers=2), settings)
        for i in range(2)
    ]
    for worker in workers:
        worker.start()
    try:
        for worker in workers:
            assert worker.subscription == "partitioned"
            assert worker.receiver is not None and worker.receiver.wait_connected(10)
        pub = FleetPublisher(amqtt.url, root, spec, protocol="3.1.1")
        pub.start()
        try:
            pub.publish(60)
            assert wait_until(lambda: stored(ingest_db, spec).readings >= 600, 30)

            def everyone_saw_all() -> bool:
                m = [w.metrics for w in workers]
                return all(x.messages_written.total() + x.messages_foreign.total() >= 60 for x in m)

            assert wait_until(everyone_saw_all, 10)
        finally:
            pub.stop()
    finally:
        for worker in workers:
            worker.stop()
    assert stored(ingest_db, spec) == (600, 600, 600)
    written = [w.metrics.messages_written.total() for w in workers]
    foreign = [w.metrics.messages_foreign.total() for w in workers]
    assert sum(written) == 60 and min(written) > 0, written
    assert [w + f for w, f in zip(written, foreign, strict=True)] == [60, 60]
