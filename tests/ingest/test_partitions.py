"""Partitioned workers: who writes what, the sessions of a layout, and changes of layout."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from backend.ingest.device_partition import DevicePartition, topic_device
from backend.ingest.loadgen import FleetPublisher, FleetSpec
from backend.ingest.receiver import SubscriptionMode, prepare_partition_sessions
from backend.ingest.service import IngestWorker, WorkerTarget, retire_sessions
from backend.ingest.settings import IngestSettings
from fleetcare.embedded.mosquitto import MosquittoBroker
from tests.ingest.conftest import FleetFactory
from tests.ingest.helpers import stored, wait_until


def test_every_device_has_exactly_one_owner() -> None:
    devices = [f"dev-{i:04d}" for i in range(500)]
    for count in (1, 2, 3, 7):
        partitions = [DevicePartition(i, count) for i in range(count)]
        owners = [[p.index for p in partitions if p.owns_device(d)] for d in devices]
        assert all(len(o) == 1 for o in owners)
        if count > 1:
            sizes = [sum(o == [i] for o in owners) for i in range(count)]
            assert min(sizes) > 500 / count / 2, sizes  # roughly even
    assert topic_device("root/a/v1/dev-1/telemetry") == "dev-1"
    assert DevicePartition(0, 2).owns("junk") and not DevicePartition(1, 2).owns("junk")
    with pytest.raises(ValueError):
        DevicePartition(2, 2)


def publish(broker: MosquittoBroker, root: str, spec: FleetSpec, messages: int) -> None:
    pub = FleetPublisher(broker.url, root, spec, first_seq=1)
    pub.start()
    try:
        pub.publish(messages)
        assert pub.wait_acked(20)
    finally:
        pub.stop()


@contextmanager
def workers(
    ingest_db: str, broker: MosquittoBroker, root: str, prefix: str, mode: SubscriptionMode
) -> Iterator[list[IngestWorker]]:
    config = IngestSettings(metrics_port=None, client_id_prefix=prefix, batch_max_wait_ms=10)
    started = [
        IngestWorker(
            WorkerTarget(ingest_db, broker.url, root, i, workers=2), config, subscription=mode
        )
        for i in range(2)
    ]
    for worker in started:
        worker.start()
    try:
        for worker in started:
            assert worker.receiver is not None and worker.receiver.wait_connected(10)
        yield started
    finally:
        threads = [threading.Thread(target=w.stop) for w in started]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


@pytest.mark.services
def test_prepared_sessions_queue_every_message_before_the_workers_start(
    ingest_db: str, mosquitto: MosquittoBroker, root: str, fleet: FleetFactory
) -> None:
    spec = fleet(devices=8, readings_per_message=5, metrics=("a",))
    prefix = f"prep-{secrets.token_hex(3)}"
    prepare_partition_sessions(
        mosquitto.url, root, [f"{prefix}-0", f"{prefix}-1"], protocol="5", session_expiry_s=600
    )
    publish(mosquitto, root, spec, 80)  # no worker runs yet: the sessions hold them
    with workers(ingest_db, mosquitto, root, prefix, "partitioned") as running:
        assert wait_until(lambda: stored(ingest_db, spec).readings >= 400, 20)
        written = [w.metrics.messages_written.total() for w in running]
    assert stored(ingest_db, spec) == (400, 400, 400)
    assert sum(written) == 80 and min(written) > 0, written


@pytest.mark.services
def test_messages_queued_under_a_shared_layout_are_not_lost_when_it_becomes_partitioned(
    ingest_db: str, mosquitto: MosquittoBroker, root: str, fleet: FleetFactory
) -> None:
    """Each shared member's session holds a share of every device's messages; the
    partitioned workers must write those whatever their partition (they carry no layout)."""
    spec = fleet(devices=8, readings_per_message=5, metrics=("a",))
    prefix = f"move-{secrets.token_hex(3)}"
    with workers(ingest_db, mosquitto, root, prefix, "shared"):
        pass  # the shared sessions exist, then their workers stop
    publish(mosquitto, root, spec, 80)  # queued in the two shared sessions, 40 each
    with workers(ingest_db, mosquitto, root, prefix, "partitioned") as running:
        assert wait_until(lambda: stored(ingest_db, spec).readings >= 400, 20)
        foreign = [w.metrics.messages_foreign.total() for w in running]
    assert stored(ingest_db, spec) == (400, 400, 400)
    assert foreign == [0, 0], "queued messages of another layout are written, not skipped"


@pytest.mark.services
def test_sessions_left_by_a_larger_layout_are_emptied_and_ended(
    ingest_db: str, mosquitto: MosquittoBroker, root: str, fleet: FleetFactory
) -> None:
    spec = fleet(devices=8, readings_per_message=5, metrics=("a",))
    prefix = f"shrink-{secrets.token_hex(3)}"
    ids = [f"{prefix}-{i}" for i in range(3)]
    prepare_partition_sessions(mosquitto.url, root, ids, protocol="5", session_expiry_s=600)
    publish(mosquitto, root, spec, 40)  # every session of the 3-worker layout queues all 40
    config = IngestSettings(metrics_port=None, client_id_prefix=prefix)
    base = WorkerTarget(ingest_db, mosquitto.url, root)
    # Down to one worker: sessions 1 and 2 are written out (whatever the partition) and ended.
    assert retire_sessions(base, config, first_index=1) == ids[1:]
    assert stored(ingest_db, spec) == (200, 200, 200)  # the copies were absorbed
    assert retire_sessions(base, config, first_index=1) == []  # gone, and queue nothing more
