"""Training and evaluation samples: one per device-day, features of the window ending then.

A sample's window is the ``window_days`` days ending with that day (padded with missing
days at the front for a young history). Targets per wear mode: 1 if the mode fails within
the horizon, 0 if it does not, and unknown (left out) when a maintenance visit that
removed advanced wear of the mode, or the end of the history, comes first. Days on which
the device is down (failed, awaiting repair) are not samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.fleet.daily import DailyMeans
from models.fleet.features import window_features
from models.fleet.labels import Outcomes


@dataclass(frozen=True)
class Samples:
    """Rows of device-days.

    Attributes:
        features: ``(rows, features)`` float32, NaN where missing.
        device: device index of each row; ``day``: its day index.
        mode_target: ``(rows, modes)``: 1, 0, or -1 (unknown).
        rul_days: days to the next wear failure, capped; NaN when unknown.
    """

    features: NDArray[np.float32]
    device: NDArray[np.int64]
    day: NDArray[np.int64]
    mode_target: NDArray[np.int8]
    rul_days: NDArray[np.float64]


def windows_ending(
    means: NDArray[np.float32], device: int, days: NDArray[np.int64], length: int
) -> NDArray[np.float32]:
    """Windows ``(len(days), length, metrics)`` of one device ending on each of ``days``."""
    padded = np.concatenate(
        [np.full((length - 1, means.shape[2]), np.nan, dtype=np.float32), means[device]]
    )
    index = days[:, None] + np.arange(length)[None, :]
    out: NDArray[np.float32] = padded[index]
    return out


def _blank_runs(windows: NDArray[np.float32], rng: np.random.Generator, share: float) -> None:
    length = windows.shape[1]
    for row in np.flatnonzero(rng.random(windows.shape[0]) < share):
        run = int(rng.integers(2, 8))
        start = int(rng.integers(0, max(1, length - run + 1)))
        windows[row, start : start + run] = np.nan


def build_samples(
    daily: DailyMeans,
    outcomes: Outcomes,
    window_days: int,
    horizon_days: float,
    rul_cap_days: float,
    first_day: int = 7,
    gap_share: float = 0.0,
    seed: int = 0,
) -> Samples:
    """Samples of every device-day from ``first_day`` on.

    ``gap_share`` of the windows get a run of 2-7 missing days at a random place (the
    device offline), so that a model learns to read gaps as missing data.
    """
    rng = np.random.default_rng(seed)
    feats, devs, days_out, targets, ruls = [], [], [], [], []
    for i in range(len(daily.device_ids)):
        days = np.arange(first_day, daily.days, dtype=np.int64)
        days = days[~outcomes.down[i, days]]
        if days.size == 0:
            continue
        windows = windows_ending(daily.means, i, days, window_days)
        if gap_share > 0:
            _blank_runs(windows, rng, gap_share)
        feats.append(window_features(windows, daily.metrics))
        to_fail = outcomes.to_failure[i, days]
        to_repair = outcomes.to_repair[i, days]
        remaining = outcomes.remaining[i, days]
        positive = to_fail <= horizon_days
        unknown = ~positive & ((to_repair <= horizon_days) | (remaining[:, None] < horizon_days))
        target = np.where(positive, 1, np.where(unknown, -1, 0)).astype(np.int8)
        first_fail = to_fail.min(axis=1)
        first_repair = to_repair.min(axis=1)
        rul = np.minimum(first_fail, rul_cap_days)
        rul_unknown = (first_repair < np.minimum(first_fail, rul_cap_days)) | (
            (first_fail > rul_cap_days) & (remaining < rul_cap_days)
        )
        ruls.append(np.where(rul_unknown, np.nan, rul))
        targets.append(target)
        devs.append(np.full(days.size, i, dtype=np.int64))
        days_out.append(days)
    return Samples(
        np.concatenate(feats),
        np.concatenate(devs),
        np.concatenate(days_out),
        np.concatenate(targets),
        np.concatenate(ruls),
    )
