"""The device SDK and the ingest agree on the wire: readings, usage, events and liveness."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from backend.ingest.service import IngestWorker, WorkerTarget
from backend.ingest.settings import IngestSettings
from fleetcare.embedded.mosquitto import MosquittoBroker
from tests.ingest.conftest import FleetFactory
from tests.ingest.helpers import dead_letters, stored, wait_until

pytestmark = pytest.mark.services
device_sdk = pytest.importorskip("device_sdk")


def test_a_device_sdk_client_end_to_end(
    ingest_db: str, mosquitto: MosquittoBroker, root: str, fleet: FleetFactory, tmp_path: Path
) -> None:
    spec = fleet(devices=1, metrics=("flow_lpm", "pressure_bar"))
    device = spec.device_id(0)
    settings = IngestSettings(metrics_port=None, client_id_prefix=f"sdk-{time.monotonic_ns()}")
    worker = IngestWorker(WorkerTarget(ingest_db, mosquitto.url, root), settings)
    worker.start()
    try:
        config = device_sdk.DeviceConfig(
            device_id=device,
            broker_urls=(mosquitto.url,),
            queue_path=tmp_path / "queue",
            topic_root=root,
        )
        client = device_sdk.DeviceClient(config)
        client.start()
        try:
            client.wait_connected(10)
            for i in range(300):
                client.record({"flow_lpm": float(i), "pressure_bar": None if i % 7 else 2.5})
            client.usage("wash_cycle", duration_s=3420.0, attrs={"program": "eco"})
            client.event("fault", severity="error", code="E42", message="pump dry")
            client.flush(20)
        finally:
            client.stop(5)  # a clean stop says goodbye on the state topic
        assert wait_until(lambda: stored(ingest_db, spec).readings >= 300, 20)

        def events() -> list[str]:
            with psycopg.connect(ingest_db) as conn:
                rows = conn.execute(
                    "SELECT e.kind FROM device_events e JOIN devices d ON d.id = e.device_id "
                    "WHERE d.external_id = %s ORDER BY e.time, e.kind",
                    (device,),
                ).fetchall()
            return [str(r[0]) for r in rows]

        assert wait_until(lambda: "offline" in events(), 20), events()
    finally:
        worker.stop()
    assert stored(ingest_db, spec) == (300, 300, 300)
    assert dead_letters(ingest_db, root) == []
    assert "fault" in events()
    with psycopg.connect(ingest_db) as conn:
        usage = conn.execute(
            "SELECT name, duration_s FROM usage_records u JOIN devices d ON d.id = u.device_id "
            "WHERE d.external_id = %s",
            (device,),
        ).fetchall()
    assert usage == [("wash_cycle", 3420.0)]
