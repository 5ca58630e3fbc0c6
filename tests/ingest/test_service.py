"""The service end to end with a private Mosquitto and a real PostgreSQL (in-process worker)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import orjson
import pytest

from backend.ingest.loadgen import FleetPublisher, FleetSpec
from backend.ingest.service import IngestWorker, WorkerTarget
from backend.ingest.settings import IngestSettings
from backend.ingest.writer import BatchWriter
from device_sdk.wire import Channel, build_topic
from fleetcare.embedded.mosquitto import MosquittoBroker
from tests.ingest.conftest import FleetFactory
from tests.ingest.helpers import dead_letters, now_ms, scrape, stored, wait_until

pytestmark = pytest.mark.services


def settings(**overrides: object) -> IngestSettings:
    values: dict[str, object] = {
        "metrics_port": None,
        "client_id_prefix": f"test-{time.monotonic_ns()}",
        "unknown_retry_s": 0,
    }
    values.update(overrides)
    return IngestSettings(**values)  # type: ignore[arg-type]


@contextmanager
def running(
    ingest_db: str, broker: MosquittoBroker, root: str, config: IngestSettings
) -> Iterator[IngestWorker]:
    worker = IngestWorker(WorkerTarget(ingest_db, broker.url, root), config)
    worker.start()
    assert worker.receiver is not None
    assert worker.receiver.wait_connected(10)
    try:
        yield worker
    finally:
        worker.stop()


@contextmanager
def publisher(broker: MosquittoBroker, root: str, spec: FleetSpec) -> Iterator[FleetPublisher]:
    pub = FleetPublisher(broker.url, root, spec, first_seq=1000)
    pub.start()
    try:
        yield pub
    finally:
        pub.stop()


def test_everything_sent_is_stored_or_dead_lettered(
    ingest_db: str, mosquitto: MosquittoBroker, root: str, fleet: FleetFactory
) -> None:
    spec = fleet(devices=3, readings_per_message=20, metrics=("a", "b"))
    config = settings(metrics_port=0)
    with (
        running(ingest_db, mosquitto, root, config) as worker,
        publisher(mosquitto, root, spec) as pub,
    ):
        pub.publish(60)
        device = spec.device_id(0)
        topic = build_topic(device, Channel.TELEMETRY, root)
        pub.publish_raw(topic, b"not json")
        pub.publish_raw(build_topic("stranger-1", Channel.TELEMETRY, root), b"{}")
        state = orjson.dumps(
            {"v": 1, "device": device, "boot": "b", "sent": now_ms(), "online": True}
        )
        pub.publish_raw(build_topic(device, Channel.STATE, root), state)
        assert pub.wait_acked(10)
        expected = 60 * 20
        assert wait_until(lambda: stored(ingest_db, spec).readings >= expected, 20)
        assert wait_until(lambda: len(dead_letters(ingest_db, root)) >= 2, 10)
        assert wait_until(lambda: worker.metrics.acks.total() >= 63, 10)
        assert worker.metrics_endpoint is not None
        values = scrape(worker.metrics_endpoint.port)
    assert stored(ingest_db, spec) == (expected, expected, expected)
    assert sorted(r for r, _, _ in dead_letters(ingest_db, root)) == ["malformed", "schema"]
    assert values['fleetcare_ingest_readings_written_total{channel="telemetry"}'] == expected
    assert values['fleetcare_ingest_messages_rejected_total{reason="malformed"}'] == 1
    assert values['fleetcare_ingest_messages_written_total{channel="state"}'] == 1
    assert values["fleetcare_ingest_acks_total"] == 63
    assert values["fleetcare_ingest_end_to_end_lag_seconds_count"] == 61


def test_nothing_is_redelivered_after_a_clean_stop(
    ingest_db: str, mosquitto: MosquittoBroker, root: str, fleet: FleetFactory
) -> None:
    """Every message was acknowledged after its commit: a restarted worker gets nothing old."""
    spec = fleet(devices=2, readings_per_message=10, metrics=("a",))
    config = settings()
    with running(ingest_db, mosquitto, root, config), publisher(mosquitto, root, spec) as pub:
        pub.publish(40)
        assert wait_until(lambda: stored(ingest_db, spec).readings >= 400, 20)
    with running(ingest_db, mosquitto, root, config) as again:
        time.sleep(1.0)
        assert again.metrics.messages_received.total() == 0
        assert again.receiver is not None
    # And the session is persistent: what is published while ingest is down arrives later.
    with publisher(mosquitto, root, spec) as pub:
        pub.next_seq = [5000, 5000]
        pub.publish(10)
        assert pub.wait_acked(10)
    with running(ingest_db, mosquitto, root, config):
        assert wait_until(lambda: stored(ingest_db, spec).readings >= 500, 20)
    assert stored(ingest_db, spec) == (500, 500, 500)


def test_backpressure_bounds_what_is_held(
    ingest_db: str,
    mosquitto: MosquittoBroker,
    root: str,
    fleet: FleetFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A slow database: the window never holds more than its bound, and nothing is lost."""
    original: Callable[..., object] = BatchWriter.commit

    def slow_commit(self: BatchWriter, prepared: object) -> object:
        time.sleep(0.05)
        return original(self, prepared)

    monkeypatch.setattr(BatchWriter, "commit", slow_commit)
    spec = fleet(devices=4, readings_per_message=5, metrics=("a",))
    config = settings(max_pending_messages=30, batch_max_messages=10, batch_max_wait_ms=0)
    with (
        running(ingest_db, mosquitto, root, config) as worker,
        publisher(mosquitto, root, spec) as pub,
    ):
        pub.publish(400)
        assert wait_until(lambda: stored(ingest_db, spec).readings >= 2000, 40)
        assert worker.window.peak_held <= 30
        assert worker.window.peak_held >= 20, "the window should have filled"
    assert stored(ingest_db, spec) == (2000, 2000, 2000)


def test_database_errors_are_retried_without_acknowledging(
    ingest_db: str,
    mosquitto: MosquittoBroker,
    root: str,
    fleet: FleetFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import psycopg

    failures = {"left": 3}
    original: Callable[..., object] = BatchWriter.commit

    def flaky_commit(self: BatchWriter, prepared: object) -> object:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return original(self, prepared)

    monkeypatch.setattr(BatchWriter, "commit", flaky_commit)
    spec = fleet(devices=2, readings_per_message=10, metrics=("a",))
    caplog.set_level(logging.WARNING, "fleetcare.ingest")
    with (
        running(ingest_db, mosquitto, root, settings()) as worker,
        publisher(mosquitto, root, spec) as pub,
    ):
        pub.publish(20)
        assert wait_until(lambda: stored(ingest_db, spec).readings >= 200, 20)
        assert worker.metrics.db_errors.value("connection") == 3
    assert "retrying, nothing acknowledged" in caplog.text
    assert stored(ingest_db, spec) == (200, 200, 200)


def test_two_workers_share_the_subscription(
    ingest_db: str, mosquitto: MosquittoBroker, root: str, fleet: FleetFactory
) -> None:
    spec = fleet(devices=4, readings_per_message=10, metrics=("a",))
    config = settings()
    first = IngestWorker(
        WorkerTarget(ingest_db, mosquitto.url, root, 0), config, subscription="shared"
    )
    second = IngestWorker(
        WorkerTarget(ingest_db, mosquitto.url, root, 1), config, subscription="shared"
    )
    first.start()
    second.start()
    try:
        assert first.receiver is not None
        assert second.receiver is not None
        assert first.receiver.wait_connected(10)
        assert second.receiver.wait_connected(10)
        with publisher(mosquitto, root, spec) as pub:
            pub.publish(100)
            assert wait_until(lambda: stored(ingest_db, spec).readings >= 1000, 20)
    finally:
        threads = [threading.Thread(target=w.stop) for w in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    got = [w.metrics.messages_received.total() for w in (first, second)]
    assert sum(got) == 100
    assert min(got) > 0, got
    assert stored(ingest_db, spec) == (1000, 1000, 1000)


def test_acknowledgements_keep_arrival_order_with_concurrent_commits(
    ingest_db: str,
    mosquitto: MosquittoBroker,
    root: str,
    fleet: FleetFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two batches commit at once; PUBACKs still go out in the order messages arrived."""
    from backend.ingest.receiver import Receiver

    original_commit: Callable[..., object] = BatchWriter.commit
    original_ack: Callable[..., None] = Receiver.ack
    calls = {"n": 0}
    acked: list[float] = []

    def uneven_commit(self: BatchWriter, prepared: object) -> object:
        calls["n"] += 1
        time.sleep(0.08 if calls["n"] % 2 else 0.0)  # odd batches finish after even ones
        return original_commit(self, prepared)

    def recording_ack(self: Receiver, messages: list) -> None:  # type: ignore[type-arg]
        acked.extend(m.received_at for m in messages)
        original_ack(self, messages)

    monkeypatch.setattr(BatchWriter, "commit", uneven_commit)
    monkeypatch.setattr(Receiver, "ack", recording_ack)
    spec = fleet(devices=2, readings_per_message=5, metrics=("a",))
    config = settings(commit_concurrency=2, batch_max_messages=5, batch_max_wait_ms=0)
    with running(ingest_db, mosquitto, root, config), publisher(mosquitto, root, spec) as pub:
        pub.publish(200)
        assert wait_until(lambda: stored(ingest_db, spec).readings >= 1000, 30)
        assert wait_until(lambda: len(acked) >= 200, 10)
    assert acked == sorted(acked)
