"""The ingest against a real TimescaleDB (the WebAssembly build: no COPY FROM STDIN).

The writer finds out by itself that the server has no COPY and takes the INSERT path; the
service runs end to end through a broker on the server's single connection.
"""

from __future__ import annotations

import time

import psycopg
import pytest

from backend.ingest.loadgen import FleetPublisher, FleetSpec
from backend.ingest.metrics import IngestMetrics
from backend.ingest.server_traits import probe_server
from backend.ingest.service import IngestWorker, WorkerTarget, build_writer, database_dialect
from backend.ingest.settings import IngestSettings
from backend.storage.catalogue import MetricSpec, ensure_device, ensure_device_model
from backend.storage.connect import connect
from backend.storage.migrator import apply_migrations
from fleetcare.embedded.mosquitto import MosquittoBroker
from tests.fixtures.fix_timescale import disable_prepared_statements
from tests.ingest.helpers import inbound, telemetry_payload, wait_until

pytestmark = [pytest.mark.timescale, pytest.mark.services, pytest.mark.slow]

Conn = psycopg.Connection[tuple[object, ...]]


@pytest.fixture(scope="module")
def timescale_url(timescale_server_url: str) -> str:
    run = apply_migrations(timescale_server_url)
    assert run.dialect == "timescaledb"
    return timescale_server_url


def query(url: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with connect(url, 10, autocommit=True) as conn:
        disable_prepared_statements(conn)
        return conn.execute(sql, params).fetchall()


def register(url: str, spec: FleetSpec) -> None:
    with connect(url, 10) as conn:
        disable_prepared_statements(conn)
        model = ensure_device_model(conn, spec.model, "pump", [MetricSpec(m) for m in spec.metrics])
        for device in spec.device_ids:
            ensure_device(conn, device, model)
        conn.commit()


def counts(url: str, spec: FleetSpec) -> tuple[int, int]:
    rows = query(
        url,
        "SELECT count(*), count(DISTINCT (t.device_id, t.seq)) FROM telemetry t "
        "JOIN devices d ON d.id = t.device_id WHERE d.external_id LIKE %s",
        (spec.prefix + "-%",),
    )
    return int(rows[0][0]), int(rows[0][1])  # type: ignore[call-overload]


def reasons(url: str, root: str) -> list[str]:
    rows = query(
        url, "SELECT reason FROM dead_letters WHERE topic LIKE %s ORDER BY id", (root + "/%",)
    )
    return [str(r[0]) for r in rows]


def test_writer_falls_back_to_insert_and_deduplicates(timescale_url: str) -> None:
    root = "tsw"
    spec = FleetSpec(prefix="tsw", devices=2, metrics=("a", "b"), model="tsw-pump")
    register(timescale_url, spec)
    server = probe_server(timescale_url)
    assert (server.telemetry_write, server.webassembly) == ("insert", True)
    settings = IngestSettings(unknown_retry_s=0, liveness_interval_s=0, metrics_port=None)
    dialect = database_dialect(timescale_url)
    assert dialect.name == "timescaledb"
    writer = build_writer(timescale_url, root, settings, dialect, IngestMetrics(), server=server)
    try:
        first = [
            inbound(root, d, "telemetry", telemetry_payload(d, range(30), {"a": 1.0, "b": 2.0}))
            for d in spec.device_ids
        ]
        bad = [
            inbound(root, "ghost", "telemetry", telemetry_payload("ghost", range(3), {"a": 1.0})),
            inbound(root, spec.device_id(0), "telemetry", b"{not json"),
            inbound(root, spec.device_id(1), "telemetry", telemetry_payload(spec.device_id(1), range(99, 100), {"zz": 1.0})),
        ]  # fmt: skip
        result = writer.write(first + bad)
        assert (result.rows_inserted, result.rows_duplicate) == (60, 0)
        # A redelivery (the broker's DUP flag) of everything, plus new readings.
        redelivered = [
            inbound(root, m.topic.split("/")[-2], "telemetry", m.payload, dup=True) for m in first
        ]
        more = inbound(
            root,
            spec.device_id(0),
            "telemetry",
            telemetry_payload(spec.device_id(0), range(30, 40), {"a": 3.0, "b": 4.0}),
        )
        result = writer.write([*redelivered, more])  # fmt: skip
        assert (result.rows_inserted, result.rows_duplicate) == (10, 60)
    finally:
        writer.close()
    assert counts(timescale_url, spec) == (70, 70)
    assert sorted(reasons(timescale_url, root)) == ["malformed", "unknown_device", "unknown_metric"]


def test_service_end_to_end_through_a_broker(
    timescale_url: str, mosquitto: MosquittoBroker
) -> None:
    root = "tse2e"
    spec = FleetSpec(
        prefix="tse2e", devices=3, metrics=("a", "b"), readings_per_message=10, model="tse2e-pump"
    )
    register(timescale_url, spec)
    settings = IngestSettings(metrics_port=None, batch_max_wait_ms=20)
    worker = IngestWorker(WorkerTarget(timescale_url, mosquitto.url, root), settings)
    worker.start()
    try:
        assert worker.receiver is not None and worker.receiver.wait_connected(10)
        assert len(worker._committers) == 1 and worker._committers[0].telemetry_write == "insert"
        publisher = FleetPublisher(mosquitto.url, root, spec, first_seq=1)
        publisher.start()
        try:
            batches = [publisher.message(i % spec.devices) for i in range(30)]
            for topic, payload, readings in batches:
                publisher.publish_raw(topic, payload, readings)
            publisher.publish_raw(f"{root}/v1/{spec.device_id(0)}/telemetry", b"\xff\xfe")
            # The same batches again, as a device that did not see its PUBACKs resends them.
            for topic, payload, readings in batches:
                publisher.publish_raw(topic, payload, readings)
            assert publisher.wait_acked(20)
        finally:
            publisher.stop()
        written = worker.metrics.readings_written
        assert wait_until(lambda: written.total() >= 600, 60), written.total()
        assert wait_until(lambda: worker.metrics.messages_rejected.total() >= 1, 10)
        time.sleep(0.5)
    finally:
        worker.stop()
    m = worker.metrics
    assert (m.rows_written.total(), m.rows_duplicate.total()) == (300, 300)
    assert counts(timescale_url, spec) == (300, 300)
    assert reasons(timescale_url, root) == ["malformed"]
