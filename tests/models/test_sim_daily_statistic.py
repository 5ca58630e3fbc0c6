"""The daily-statistic comparison used to size the filter-clog signal (benchmarks/models)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.models.sim_daily_statistic import relative_to_baseline, roc_auc


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
        }
    )
    out = relative_to_baseline(days)
    a, b = out[out["device_id"] == "a"], out[out["device_id"] == "b"]
    assert a["mean_rise"].iloc[:5].isna().all()  # fewer than 5 earlier days: no baseline
    assert np.isclose(a["mean_rise"].iloc[-1], 0.2) and np.isclose(a["p90_rise"].iloc[-1], 0.05)
    assert np.isclose(a["max_rise"].iloc[-1], 0.1)
    assert np.allclose(b["mean_rise"].dropna(), 0.0)  # another device's level does not leak
