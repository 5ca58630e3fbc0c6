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
* ``slope``: the least-squares slope of the last 7 days, relative to the baseline;
* ``vs_load``: the mean of the last 3 observed days minus what the day's load (power per
  unit of speed) predicts, from a straight line fitted against the load over the
  window's first half, relative to the baseline. Demand moves most signals from day to
  day (a compressor that loads longer shows a higher mean filter pressure drop); this
  is what is left once the operating point is accounted for, so a clogging filter
  shows days earlier than in ``change``;
* ``vs_load_growth``: ``log`` of that excess now against 4 days earlier (each at least
  2 % of the baseline): how fast it grows, which tells a fault weeks from failure from
  one days from it.

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
STATISTICS: Final = ("level", "change", "change7", "slope", "vs_load", "vs_load_growth")
RECIPE_VERSION: Final = 2
_EPS: Final = 1e-6
_MIN_FIT_DAYS: Final = 4
_GROWTH_DAYS: Final = 4
_GROWTH_FLOOR: Final = 0.02
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


def _load(window: NDArray[np.float32], metrics: Sequence[str]) -> NDArray[np.float64]:
    """Each day's operating point ``(batch, days)``: power per unit of speed (NaN at a
    standstill, and everywhere for a machine type without power or speed)."""
    x = window.astype(np.float64)
    if "power_kw" not in metrics or "speed_rpm" not in metrics:
        return np.full(x.shape[:2], np.nan)
    speed = x[:, :, metrics.index("speed_rpm")]
    power = x[:, :, metrics.index("power_kw")]
    with np.errstate(divide="ignore", invalid="ignore"):
        out: NDArray[np.float64] = np.where(speed > RUNNING_RPM, 1000.0 * power / speed, np.nan)
    return out


def _excess_over_load(
    s: NDArray[np.float64], load: NDArray[np.float64], half: int
) -> NDArray[np.float64]:
    """Each day's signal minus what the load predicts ``(batch, days, signals)``.

    The prediction is a least-squares line of the signal against the load over the
    window's first half (the baseline); with fewer than ``_MIN_FIT_DAYS`` days to fit
    on, NaN.
    """
    x = np.broadcast_to(load[:, :, None], s.shape)
    both = np.isfinite(s) & np.isfinite(x)
    fit = both[:, :half]
    n = fit.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        x_mean = np.where(fit, x[:, :half], 0.0).sum(axis=1) / n
        s_mean = np.where(fit, s[:, :half], 0.0).sum(axis=1) / n
        dx = np.where(fit, x[:, :half] - x_mean[:, None], 0.0)
        ds = np.where(fit, s[:, :half] - s_mean[:, None], 0.0)
        variance = (dx * dx).sum(axis=1)
        gain = np.where(variance > 1e-12, (dx * ds).sum(axis=1) / variance, 0.0)
        expected = s_mean[:, None] + gain[:, None] * (x - x_mean[:, None])
    enough = (n >= _MIN_FIT_DAYS)[:, None]
    out: NDArray[np.float64] = np.where(both & enough, s - expected, np.nan)
    return out


def _growth(
    excess_now: NDArray[np.float64], excess_before: NDArray[np.float64]
) -> NDArray[np.float64]:
    """``log`` of how much the excess over the load grew in ``_GROWTH_DAYS`` days (each
    side at least ``_GROWTH_FLOOR`` of the baseline, so noise around 0 stays near 0)."""
    now = np.maximum(np.abs(excess_now), _GROWTH_FLOOR)
    before = np.maximum(np.abs(excess_before), _GROWTH_FLOOR)
    with np.errstate(invalid="ignore"):
        out: NDArray[np.float64] = np.log(now / before)
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
    excess = _excess_over_load(s, _load(window, metrics), half) / scale[:, None]
    vs_load = _last_observed_mean(excess, 3)
    before = _last_observed_mean(excess[:, :-_GROWTH_DAYS], 3)
    stats = np.stack(
        [
            level,
            (level - baseline) / scale,
            (level7 - baseline) / scale,
            _slope(s, 7) / scale,
            vs_load,
            _growth(vs_load, before),
        ],
        axis=2,
    )
    out: NDArray[np.float32] = stats.reshape(s.shape[0], -1).astype(np.float32)
    return out
