"""The INSERT path for servers without COPY FROM STDIN: packed rows read back, same dedup."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from backend.ingest.metrics import IngestMetrics
from backend.ingest.row_insert import ROWS_PER_STATEMENT, unpack_rows
from backend.ingest.service import build_writer, database_dialect
from backend.ingest.settings import IngestSettings
from backend.ingest.writer import BatchWriter
from backend.storage.copy_writer import PG_EPOCH_MS, pack_reading, pack_readings
from tests.ingest.conftest import FleetFactory
from tests.ingest.helpers import dead_letters, inbound, now_ms, stored, telemetry_payload


def test_packed_rows_read_back_exactly() -> None:
    t0 = 1_764_000_000_000
    block = pack_readings(
        [t0, t0 + 1000], 7, [1, 2], np.array([[1.5, -2.0, 1e300], [0.0, 3.25, -1e-300]])
    )
    single = pack_reading(t0 + 2000, 8, 3, [None, 4.5, None])
    rows = list(unpack_rows([block, single]))
    times = [int(r[0].timestamp() * 1000) for r in rows]
    assert times == [t0, t0 + 1000, t0 + 2000]
    assert [(r[1], r[2]) for r in rows] == [(7, 1), (7, 2), (8, 3)]
    assert [r[3] for r in rows] == [[1.5, -2.0, 1e300], [0.0, 3.25, -1e-300], [None, 4.5, None]]
    # The epoch conversion is the COPY path's: 2000-01-01 is time 0 in the binary format.
    assert next(unpack_rows([pack_reading(PG_EPOCH_MS, 1, 1, [0.0])]))[0].year == 2000


@pytest.fixture
def insert_writer(ingest_db: str, root: str) -> Iterator[BatchWriter]:
    settings = IngestSettings(
        telemetry_write="insert", unknown_retry_s=0, liveness_interval_s=0, metrics_port=None
    )
    writer = build_writer(ingest_db, root, settings, database_dialect(ingest_db), IngestMetrics())
    assert writer.telemetry_write == "insert"
    yield writer
    writer.close()


@pytest.mark.services
def test_configured_insert_path_on_postgresql_stores_and_deduplicates(
    insert_writer: BatchWriter, fleet: FleetFactory, root: str, ingest_db: str
) -> None:
    spec = fleet(devices=2, metrics=("a", "b"))
    metrics = {"a": 1.0, "b": None}
    big = range(ROWS_PER_STATEMENT + 20)  # more than one statement
    first = [
        inbound(root, spec.device_id(0), "telemetry", telemetry_payload(spec.device_id(0), big, metrics)),
        inbound(root, spec.device_id(1), "telemetry", telemetry_payload(spec.device_id(1), range(5), {"a": 2.0, "b": 3.0})),
        inbound(root, "nobody", "telemetry", telemetry_payload("nobody", range(2), metrics)),
    ]  # fmt: skip
    result = insert_writer.write(first)
    assert (result.rows_inserted, result.rows_duplicate) == (len(big) + 5, 0)
    again = insert_writer.write(
        [
            first[1],
            inbound(
                root,
                spec.device_id(1),
                "telemetry",
                telemetry_payload(spec.device_id(1), range(5, 8), {"a": 1.0, "b": 1.0}, t=now_ms()),
            ),
        ]
    )
    assert (again.rows_inserted, again.rows_duplicate) == (3, 5)
    total = len(big) + 8
    assert stored(ingest_db, spec) == (total, total, total)
    assert [reason for reason, _, _ in dead_letters(ingest_db, root)] == ["unknown_device"]
