"""The daily-statistic comparison used to size the filter-clog signal (benchmarks/models)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.models.sim_daily_statistic import daily_statistics, relative_to_baseline, roc_auc


def test_roc_auc_orders_and_ties() -> None:
    assert roc_auc(np.array([0.0, 1.0]), np.array([2.0, 3.0])) == 1.0
    assert roc_auc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 0.0
    assert roc_auc(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == 0.5


def test_rise_is_against_the_devices_own_previous_days() -> None:
    dates = pd.date_range("2025-01-01", periods=20, freq="D")
    days = pd.DataFrame(
        {
            "device_id": ["a"] * 20 + ["b"] * 20,
            "date": list(dates) * 2,
            "mean": [10.0] * 19 + [12.0] + [50.0] * 20,
            "p90": [20.0] * 19 + [21.0] + [80.0] * 20,
            "max": [30.0] * 19 + [33.0] + [90.0] * 20,
            "p90_all": [20.0] * 19 + [22.0] + [80.0] * 20,
        }
    )
    out = relative_to_baseline(days)
    a, b = out[out["device_id"] == "a"], out[out["device_id"] == "b"]
    assert a["mean_rise"].iloc[:5].isna().all()  # fewer than 5 earlier days: no baseline
    assert np.isclose(a["mean_rise"].iloc[-1], 0.2) and np.isclose(a["p90_rise"].iloc[-1], 0.05)
    assert np.isclose(a["max_rise"].iloc[-1], 0.1) and np.isclose(a["p90_all_rise"].iloc[-1], 0.1)
    assert np.allclose(b["mean_rise"].dropna(), 0.0)  # another device's level does not leak


def test_running_statistics_skip_standstill_but_p90_all_does_not(tmp_path: Path) -> None:
    """30 running readings of 10..39 and 70 standstill readings of 0 on one day."""
    folder = tmp_path / "telemetry" / "air_compressor"
    folder.mkdir(parents=True)
    ts = pd.date_range("2025-03-01", periods=100, freq="10min", tz="UTC")
    running = np.arange(100) < 30
    table = pa.table(
        {
            "ts": ts,
            "device_id": ["ac-1"] * 100,
            "speed_rpm": np.where(running, 3000.0, 0.0),
            "inlet_filter_dp_mbar": np.where(running, 10.0 + np.arange(100), 0.0),
        }
    )
    pq.write_table(table, folder / "part-0.parquet")
    days = daily_statistics(tmp_path, "air_compressor", "inlet_filter_dp_mbar", min_readings=24)
    (day,) = days.to_dict("records")
    assert day["readings"] == 30
    assert day["mean"] == 24.5 and day["max"] == 39.0
    assert np.isclose(day["p90"], np.quantile(np.arange(10.0, 40.0), 0.9))
    assert np.isclose(day["p90_all"], np.quantile(np.r_[np.arange(10.0, 40.0), np.zeros(70)], 0.9))
    assert day["p90_all"] < day["p90"]
