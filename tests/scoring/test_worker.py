"""The scoring worker on a real database with simulated telemetry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pyarrow.parquet as pq
import pytest

from backend.scoring.windows import DueDevice, metric_columns, read_windows
from backend.scoring.worker import ScoringWorker
from backend.storage.catalogue import MetricSpec, ensure_device, ensure_device_model
from backend.storage.migrator import apply_migrations, dialect_of
from backend.storage.telemetry import Reading, insert_readings
from models.registry import FileRegistry, ModelEntry
from tests.scoring.tiny_fleet import CONFIG, MACHINE_TYPE, TinyFleet

pytestmark = pytest.mark.services


def _readings(history: Path, source: str, start: datetime, end: datetime) -> pd.DataFrame:
    """The simulated readings of ``source`` in ``[start, end)``."""
    frames = [
        pq.read_table(file, filters=[("device_id", "=", source)]).to_pandas()
        for file in sorted((history / "telemetry" / MACHINE_TYPE).glob("*.parquet"))
    ]
    frame = pd.concat(frames)
    return frame[(frame["ts"] >= start) & (frame["ts"] < end)]


class Fleet:
    """Simulated devices copied into the database, one database device per source device."""

    def __init__(self, url: str, fleet: TinyFleet) -> None:
        self.url = url
        self.fleet = fleet
        self.metrics = fleet.daily.metrics
        with psycopg.connect(url, autocommit=True) as conn:
            specs = [MetricSpec(name=m) for m in self.metrics]
            # A product name, as in a manufacturer's catalogue; the machine type is the kind.
            self.model_id = ensure_device_model(conn, "CP-80", MACHINE_TYPE, specs)
        self.seq: dict[int, int] = {}

    def write(self, name: str, source: str, start: datetime, end: datetime,
              skip: tuple[datetime, datetime] | None = None) -> int:  # fmt: skip
        frame = _readings(self.fleet.history, source, start, end)
        with psycopg.connect(self.url, autocommit=True) as conn:
            device = ensure_device(conn, name, self.model_id)
            readings = []
            for row in frame.itertuples(index=False):
                ts = row.ts.to_pydatetime()
                if skip is not None and skip[0] <= ts < skip[1]:
                    continue
                seq = self.seq.get(device, 0)
                self.seq[device] = seq + 1
                vals = [None if np.isnan(v) else float(v) for v in row[2:]]
                readings.append(Reading(ts, device, seq, vals))
            dialect = dialect_of(conn)
            with psycopg.connect(self.url) as tx:
                insert_readings(tx, dialect, readings)
            dialect.refresh_rollups(conn, start - timedelta(days=1), end + timedelta(days=1))
        return device


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

    report = worker.run_once(now=end)
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
    assert worker.run_once(now=end).scored == 0
    assert len(_predictions(fresh_database_url)) == 3

    # One new reading for one device: only that device is scored again.
    fleet.write("healthy", healthy_src, end, end + timedelta(hours=2))
    again = worker.run_once(now=end + timedelta(hours=3))
    assert again.scored == 1
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
