"""The history a live run leaves out: where the span starts, and the readings before it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from firmware_sim import SimConfig, generate
from firmware_sim.history import history_readings
from firmware_sim.live import LiveOptions, live_window


def _options(tmp_path: Path, **kwargs: object) -> LiveOptions:
    return LiveOptions(
        broker_urls=("mqtt://127.0.0.1:1",),
        queue_dir=tmp_path / "queues",
        truth_dir=tmp_path / "truth",
        **kwargs,  # type: ignore[arg-type]
    )


def test_history_days_start_the_physics_earlier_and_the_span_where_it_was(tmp_path: Path) -> None:
    config = SimConfig(devices=3, days=1, seed=5, interval_s=1800)
    origin = datetime(2026, 3, 10, 7, 45, tzinfo=UTC)
    span_s = 2 * 86_400.0
    plain, first, total = live_window(
        config, _options(tmp_path, speed=600.0, duration_s=span_s, origin=origin)
    )
    with_history, first_h, total_h = live_window(
        config,
        _options(tmp_path, speed=600.0, duration_s=span_s, origin=origin, history_days=28),
    )
    assert plain.start == date(2026, 3, 10) and first == 15  # 07:30, the step at or before
    assert with_history.start == date(2026, 2, 10)
    assert first_h == 28 * 48 + 15 and total_h == total == 96
    # The span's first reading is stamped the same with or without the history.
    assert (
        with_history.step_time(first_h) == plain.step_time(first) == origin - timedelta(minutes=15)
    )
    assert with_history.days == plain.days + 28


def test_without_an_origin_an_accelerated_span_ends_now(tmp_path: Path) -> None:
    config = SimConfig(devices=2, days=1, interval_s=3600)
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    conf, first, total = live_window(
        config, _options(tmp_path, speed=1000.0, duration_s=86_400.0, history_days=3), now=now
    )
    assert conf.step_time(first + total) == now
    assert conf.start == date(2026, 4, 27)


def test_history_is_exactly_what_generate_writes_for_those_steps(tmp_path: Path) -> None:
    origin = datetime(2026, 3, 10, 7, 45, tzinfo=UTC)
    config, first, _ = live_window(
        SimConfig(devices=4, days=1, seed=11, interval_s=1800),
        _options(tmp_path, speed=600.0, duration_s=86_400.0, origin=origin, history_days=2),
    )
    days = list(history_readings(config, first))
    readings = {(day.device_id, at): metrics for day in days for at, metrics in day.readings}
    assert len(readings) == 4 * first  # every step before the span, every device
    assert max(at for _, at in readings) == config.step_time(first - 1)
    assert min(at for _, at in readings) == config.start_at
    # The offline generator over the same start (and fewer days) agrees reading by reading.
    generate(config.model_copy(update={"days": 3}), tmp_path / "gen")
    table = ds.dataset(tmp_path / "gen" / "telemetry").to_table()
    devices = pc.cast(table["device_id"], pa.string()).to_pylist()
    times = table["ts"].to_numpy().astype("datetime64[ms]").astype(np.int64).tolist()
    compared = 0
    for name in ("motor_current_a", "vibration_rms_mm_s"):
        for device, t, value in zip(devices, times, table[name].to_pylist(), strict=True):
            at = datetime.fromtimestamp(t / 1000, UTC)
            if (device, at) not in readings:
                assert at >= config.step_time(first)
                continue
            sent = readings[(device, at)].get(name)
            if value is None or np.isnan(value):
                assert sent is None
            else:
                assert sent is not None and abs(sent - value) <= 1e-4
            compared += 1
    assert compared == 2 * len(readings)


def test_a_span_without_history_has_none(tmp_path: Path) -> None:
    config = SimConfig(devices=2, days=1, seed=1)
    assert list(history_readings(config, 0)) == []
