"""Features of a window of daily means (numpy only: used in training and in serving).

Each metric becomes one or more *signals*: temperatures as their rise over ambient, the
other metrics (except speed and ambient) per unit of speed, so that how long a machine
ran that day cancels out; every metric but power also per unit of power (how hard it
worked), and pressure drops per squared flow (a clogging filter's law); speed and
ambient stay as they are. Of each signal's daily series:

* ``level``: the mean of its last 3 observed days;
* ``change``: that level against the signal's baseline (the median of the window's first
  half), relative to the baseline's size;
* ``change7``: the same for the mean of the last 7 observed days;
* ``slope``: the least-squares slope of the last 7 days, relative to the baseline.

Feature names follow ``{metric}__{transform}__{statistic}``, so the signal a feature
belongs to is the part before the first ``__`` (``models.explain.signal_of``). A day
without readings is NaN and is skipped, never read as 0; a feature that has no observed
day to work from is NaN, which the tree models route as missing.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Final

import numpy as np
from numpy.typing import NDArray

#: Below this daily mean speed (rpm) a day counts as a standstill for the ratios.
RUNNING_RPM: Final = 20.0
STATISTICS: Final = ("level", "change", "change7", "slope")
RECIPE_VERSION: Final = 1
_EPS: Final = 1e-6
_MIN_POWER_KW: Final = 0.05
_MIN_FLOW: Final = 0.01


def signal_transforms(metrics: Sequence[str]) -> list[tuple[str, str]]:
    """``(metric, transform)`` of every signal, in feature order."""
    flow = next((m for m in metrics if m.startswith("flow_")), None)
    out = []
    for metric in metrics:
        if metric in ("speed_rpm", "ambient_temp_c"):
            out.append((metric, "raw"))
            continue
        if metric.endswith("_temp_c") and "ambient_temp_c" in metrics:
            out.append((metric, "rise"))
        elif "speed_rpm" in metrics:
            out.append((metric, "per_speed"))
        else:
            out.append((metric, "raw"))
        if metric != "power_kw" and "power_kw" in metrics:
            out.append((metric, "per_power"))
        if "_dp_" in metric and flow is not None:
            out.append((metric, "per_flow2"))
    return out


def feature_names(metrics: Sequence[str]) -> tuple[str, ...]:
    return tuple(
        f"{metric}__{transform}__{stat}"
        for metric, transform in signal_transforms(metrics)
        for stat in STATISTICS
    )


def _signals(window: NDArray[np.float32], metrics: Sequence[str]) -> NDArray[np.float64]:
    """``(batch, days, signals)``."""
    x = window.astype(np.float64)
    columns = []
    speed = x[:, :, metrics.index("speed_rpm")] if "speed_rpm" in metrics else None
    running = speed > RUNNING_RPM if speed is not None else None
    power = x[:, :, metrics.index("power_kw")] if "power_kw" in metrics else None
    flow_name = next((m for m in metrics if m.startswith("flow_")), None)
    flow = x[:, :, metrics.index(flow_name)] if flow_name is not None else None
    for metric, transform in signal_transforms(metrics):
        v = x[:, :, metrics.index(metric)]
        if transform == "rise":
            v = v - x[:, :, metrics.index("ambient_temp_c")]
        elif transform == "per_speed":
            assert speed is not None
            assert running is not None
            with np.errstate(divide="ignore", invalid="ignore"):
                v = np.where(running, 1000.0 * v / speed, np.nan)
        elif transform == "per_power":
            assert power is not None
            if metric.endswith("_temp_c") and "ambient_temp_c" in metrics:
                v = v - x[:, :, metrics.index("ambient_temp_c")]
            with np.errstate(divide="ignore", invalid="ignore"):
                v = np.where(power > _MIN_POWER_KW, v / power, np.nan)
        elif transform == "per_flow2":
            assert flow is not None
            with np.errstate(divide="ignore", invalid="ignore"):
                v = np.where(flow > _MIN_FLOW, v / (flow * flow), np.nan)
        columns.append(v)
    return np.stack(columns, axis=2)


def _last_observed_mean(s: NDArray[np.float64], k: int) -> NDArray[np.float64]:
    """Mean of the last ``k`` observed values along axis 1 (NaN if none)."""
    observed = np.isfinite(s)
    from_end = np.cumsum(observed[:, ::-1], axis=1)[:, ::-1]
    take = observed & (from_end <= k)
    total = np.where(take, s, 0.0).sum(axis=1)
    count = take.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out: NDArray[np.float64] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return out


def _slope(s: NDArray[np.float64], days: int) -> NDArray[np.float64]:
    tail = s[:, -days:]
    t = np.broadcast_to(np.arange(tail.shape[1], dtype=np.float64)[None, :, None], tail.shape)
    observed = np.isfinite(tail)
    n = observed.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        tm = np.where(observed, t, 0.0).sum(axis=1) / n
        vm = np.where(observed, tail, 0.0).sum(axis=1) / n
        dt = np.where(observed, t - tm[:, None], 0.0)
        dv = np.where(observed, tail - vm[:, None], 0.0)
        out: NDArray[np.float64] = np.where(
            n >= 3, (dt * dv).sum(axis=1) / (dt * dt).sum(axis=1), np.nan
        )
    return out


def window_features(window: NDArray[np.float32], metrics: Sequence[str]) -> NDArray[np.float32]:
    """Features ``(batch, len(feature_names(metrics)))`` of windows ``(batch, days, metrics)``.

    Raises:
        ValueError: the window's last axis does not match ``metrics``.
    """
    if window.ndim != 3 or window.shape[2] != len(metrics):
        raise ValueError(f"windows must be (batch, days, {len(metrics)}), not {window.shape}")
    s = _signals(window, list(metrics))
    half = max(1, s.shape[1] // 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        baseline = np.nanmedian(s[:, :half], axis=1)
    scale = np.abs(baseline) + _EPS
    level = _last_observed_mean(s, 3)
    level7 = _last_observed_mean(s, 7)
    stats = np.stack(
        [level, (level - baseline) / scale, (level7 - baseline) / scale, _slope(s, 7) / scale],
        axis=2,
    )
    out: NDArray[np.float32] = stats.reshape(s.shape[0], -1).astype(np.float32)
    return out
