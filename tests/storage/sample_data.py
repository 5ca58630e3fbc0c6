"""Deterministic telemetry used by the storage tests of both dialects."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

from backend.storage.catalogue import MetricSpec, ensure_device, ensure_device_model
from backend.storage.dialect import Connection
from backend.storage.rollup_queries import Bucket
from backend.storage.telemetry import Reading

START = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
PUMP_METRICS = [
    MetricSpec("vibration_rms", "mm/s", min_value=0, max_value=50),
    MetricSpec("bearing_temp", "degC", min_value=-20, max_value=150),
    MetricSpec("motor_current", "A", min_value=0, max_value=200),
]


def register_fleet(conn: Connection, devices: int = 4) -> tuple[list[int], dict[str, int]]:
    """Register a pump model and ``devices`` devices; return device ids and metric ids."""
    with conn.transaction():
        model_id = ensure_device_model(conn, "pump-cp200", "centrifugal_pump", PUMP_METRICS)
        device_ids = [ensure_device(conn, f"pump-{i:04d}", model_id) for i in range(devices)]
        metric_rows = conn.execute("SELECT name, id FROM metrics").fetchall()
    return device_ids, {str(name): int(str(mid)) for name, mid in metric_rows}


def readings(
    device_ids: list[int],
    metric_ids: dict[str, int],
    *,
    hours: int = 50,
    step_min: int = 5,
    start: datetime = START,
    seed: int = 7,
) -> list[Reading]:
    """A few pumps' readings: smooth signals, some missing values, shared timestamps.

    Values are in catalogue order of ``PUMP_METRICS`` (positions 1..3).
    """
    del metric_ids  # positions follow PUMP_METRICS
    rng = random.Random(seed)
    base = [3.0, 60.0, 40.0]
    rows: list[Reading] = []
    for device_id in device_ids:
        seq = 0
        for step in range(hours * 60 // step_min):
            at = start + timedelta(minutes=step * step_min, seconds=device_id % 7)
            repeats = 2 if step % 37 == 0 else 1  # two readings that share one timestamp
            for _ in range(repeats):
                seq += 1
                vals: list[float | None] = []
                for level in base:
                    value: float | None = level * (
                        1 + 0.1 * math.sin(step / 20 + device_id)
                    ) + rng.gauss(0, 0.05)
                    if rng.random() < 0.02:
                        value = None  # a missing sample stays missing
                    vals.append(value)
                rows.append(Reading(at, device_id, seq, vals))
    return rows


def assert_same_buckets(left: list[Bucket], right: list[Bucket], rel: float = 1e-9) -> None:
    """Equal bucket lists: same keys and counts, aggregates equal to ``rel`` (float sums)."""
    assert len(left) == len(right), (len(left), len(right))
    for a, b in zip(left, right, strict=True):
        assert (a.bucket, a.device_id, a.metric_id, a.n) == (
            b.bucket,
            b.device_id,
            b.metric_id,
            b.n,
        )
        for x, y in ((a.avg, b.avg), (a.min, b.min), (a.max, b.max)):
            assert (x is None) == (y is None), (a, b)
            if x is not None and y is not None:
                assert math.isclose(x, y, rel_tol=rel, abs_tol=1e-12), (a, b)
