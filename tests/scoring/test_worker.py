"""The scoring worker on a real database with simulated telemetry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from backend.scoring.windows import DueDevice, metric_columns, read_windows
from backend.scoring.worker import ScoringWorker
from backend.storage.migrator import apply_migrations
from models.registry import FileRegistry, ModelEntry
from tests.scoring.tiny_fleet import CONFIG, Fleet, TinyFleet

pytestmark = pytest.mark.services


#: Past the worker's default grace (15 minutes): the day before is scored.
AFTER_GRACE = timedelta(minutes=20)


def _day(fleet: TinyFleet, day: float) -> datetime:
    start = datetime(fleet.daily.start.year, fleet.daily.start.month, fleet.daily.start.day,
                     tzinfo=UTC)  # fmt: skip
    return start + timedelta(days=day)


def _predictions(url: str) -> list[tuple[int, float, float, str, list[dict[str, object]]]]:
    with psycopg.connect(url) as conn:
        return [
            (int(r[0]), float(r[1]), float(r[2]), str(r[3]), r[4])
            for r in conn.execute(
                "SELECT device_id, failure_risk, rul_hours, failure_mode, contributions "
                "FROM predictions ORDER BY id"
            )
        ]


def _failing_and_healthy(fleet: TinyFleet) -> tuple[str, float, str, float]:
    """A device that fails (wear) with a long history before, and a device that does not
    fail or degrade in the month after the chosen day."""
    days = fleet.daily.days
    for device, at, mode in fleet.outcomes.failures:
        if (
            mode in fleet.model.thresholds
            and at > 40
            and not any(d == device and at - 30 < a < at for d, a, _ in fleet.outcomes.failures)
        ):
            end = float(int(at) - 3)
            for other in range(len(fleet.daily.device_ids)):
                t = int(end)
                if (
                    np.isinf(fleet.outcomes.to_failure[other, t - 25 : t + 1]).all()
                    or fleet.outcomes.to_failure[other, t - 25 : t + 1].min() > 45
                ) and days - end > 45:
                    return fleet.daily.device_ids[device], end, fleet.daily.device_ids[other], end
    raise AssertionError("the tiny fleet has no suitable failure")


def test_worker_scores_new_data_only_and_flags_the_failing_device(
    fresh_database_url: str,
    tiny_fleet: TinyFleet,
    fleet_registry: tuple[FileRegistry, ModelEntry],
) -> None:
    apply_migrations(fresh_database_url, dialect="postgres")
    registry, champion = fleet_registry
    fleet = Fleet(fresh_database_url, tiny_fleet)
    failing_src, end_day, healthy_src, _ = _failing_and_healthy(tiny_fleet)
    start, end = _day(tiny_fleet, end_day - 27), _day(tiny_fleet, end_day)
    failing = fleet.write("failing", failing_src, start, end)
    healthy = fleet.write("healthy", healthy_src, start, end)
    gap = (end - timedelta(days=12), end - timedelta(days=7))
    gapped = fleet.write("gapped", healthy_src, start, end, skip=gap)
    silent = fleet.write(
        "silent", healthy_src, start - timedelta(days=90), start - timedelta(days=60)
    )
    worker = ScoringWorker(fresh_database_url, registry, lookback_days=35)

    report = worker.run_once(now=end + AFTER_GRACE)
    rows = {r[0]: r for r in _predictions(fresh_database_url)}
    assert set(rows) == {failing, healthy, gapped}
    assert silent not in rows  # nothing new within the look-back
    assert report.scored == 3
    assert rows[failing][1] >= 0.5, rows[failing]
    assert rows[healthy][1] < 0.2, rows[healthy]
    assert rows[failing][1] > rows[healthy][1] + 0.3
    assert rows[failing][2] < rows[healthy][2]  # RUL (hours)
    assert rows[failing][4] and all("signal" in c for c in rows[failing][4])
    assert {c["signal"] for c in rows[failing][4]} <= set(tiny_fleet.daily.metrics)
    # The gap is read as missing days, and the device still reads as healthy.
    assert rows[gapped][1] < 0.2, rows[gapped]
    with psycopg.connect(fresh_database_url) as conn:
        columns = metric_columns(conn, fleet.model_id, tiny_fleet.daily.metrics)
        due = [DueDevice(gapped, end - timedelta(hours=1))]
        windows = read_windows(conn, due, CONFIG.window_days, columns, len(columns))
    missing_days = np.isnan(windows[0]).all(axis=1)
    assert missing_days.sum() == 5
    assert not (windows[0][~missing_days] == 0).all(axis=1).any()

    # Nothing new: a second pass writes nothing.
    assert worker.run_once(now=end + AFTER_GRACE).scored == 0
    assert len(_predictions(fresh_database_url)) == 3

    # New readings for one device: they wait for their day to end, then only that device
    # is scored again, once.
    fleet.write("healthy", healthy_src, end, end + timedelta(hours=2))
    assert worker.run_once(now=end + timedelta(hours=3)).scored == 0
    assert worker.run_once(now=end + timedelta(days=1, minutes=5)).scored == 0  # grace
    again = worker.run_once(now=end + timedelta(days=1) + AFTER_GRACE)
    assert again.scored == 1
    assert worker.run_once(now=end + timedelta(days=1, hours=1)).scored == 0
    latest = _predictions(fresh_database_url)[-1]
    assert latest[0] == healthy

    with psycopg.connect(fresh_database_url) as conn:
        version = conn.execute(
            "SELECT DISTINCT m.name, m.version, m.status FROM predictions p "
            "JOIN model_versions m ON m.id = p.model_version_id"
        ).fetchall()
    assert version == [(champion.name, champion.version, "champion")]
    text = worker.metrics.render()
    assert 'fleetcare_scoring_devices_scored_total{model="fleet-centrifugal_pump"} 4' in text
    assert "fleetcare_scoring_batch_seconds_count" in text
