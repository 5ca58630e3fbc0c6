"""The downlink store's writes, one statement each, against PostgreSQL: which report wins,
what a rejection keeps, and devices looked up a batch at a time."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from backend.downlink.store import device_ids_of, record_report
from device_sdk.wire import ReportedConfig, ReportStatus
from tests.downlink.conftest import device_id

pytestmark = pytest.mark.services


def _report(version: int, status: str, t: int, config: dict[str, Any] | None = None) -> Any:
    return ReportedConfig(
        v=1,
        device="pump-1",
        version=version,
        status=ReportStatus(status),
        config=config,
        error=None if status == "applied" else "no such setting",
        t=t,
    )


def _twin(conn: psycopg.Connection[Any], dev: int) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT reported_version, reported_status, reported, reported_error FROM device_twins"
        " WHERE device_id = %s",
        (dev,),
    ).fetchone()
    assert row is not None
    return tuple(row)


def test_the_newest_report_wins_and_a_rejection_keeps_what_runs(db: str) -> None:
    dev = device_id(db, "pump-1")
    with psycopg.connect(db) as conn:
        # A device without a twin row yet (its first report creates it).
        assert record_report(conn, dev, _report(2, "applied", 2_000, {"limit": 80}))
        assert _twin(conn, dev) == (2, "applied", {"limit": 80}, None)
        # A retained report of an older version, replayed by the broker: ignored.
        assert not record_report(conn, dev, _report(1, "applied", 3_000, {"limit": 70}))
        assert _twin(conn, dev) == (2, "applied", {"limit": 80}, None)
        # The same version reported again later (a reboot): taken, same content.
        assert record_report(conn, dev, _report(2, "applied", 4_000, {"limit": 80}))
        # A newer version the device refused: status and error move, what runs stays.
        assert record_report(conn, dev, _report(3, "rejected", 5_000))
        assert _twin(conn, dev) == (3, "rejected", {"limit": 80}, "no such setting")
        # An older copy of version 3 (by the device's clock) does not overwrite it.
        assert not record_report(conn, dev, _report(3, "applied", 4_500, {"limit": 1}))
        assert _twin(conn, dev) == (3, "rejected", {"limit": 80}, "no such setting")


def test_a_first_report_that_is_a_rejection_keeps_an_empty_configuration(db: str) -> None:
    dev = device_id(db, "pump-2")
    with psycopg.connect(db) as conn:
        assert record_report(conn, dev, _report(1, "rejected", 1_000))
        assert _twin(conn, dev) == (1, "rejected", {}, "no such setting")


def test_devices_are_looked_up_a_batch_at_a_time(db: str) -> None:
    with psycopg.connect(db) as conn:
        found = device_ids_of(conn, {"pump-1", "pump-3", "nobody", "pump-1'; --"})
        assert found == {"pump-1": device_id(db, "pump-1"), "pump-3": device_id(db, "pump-3")}
        assert device_ids_of(conn, set()) == {}
