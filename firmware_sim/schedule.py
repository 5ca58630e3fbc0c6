"""When machines run and how hard: shifts, weekends, seasons and the customer's engagement.

Each device follows its account's shift pattern in local time (``continuous``,
``one_shift``, ``two_shift`` or ``seasonal``). Whether it runs on a working day, and how
long, follows the account's engagement: a customer that cools down moves work elsewhere.
Load within a run is an hourly AR(1) process around the device's base load, shaped by the
season, linearly interpolated between hours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from firmware_sim.arraytypes import F32, F64, I64, Bool

_PATTERN_HOURS = {
    "continuous": (0.0, 24.0),
    "one_shift": (6.5, 8.5),
    "two_shift": (5.5, 16.5),
    "seasonal": (6.0, 11.0),
}
PATTERNS: tuple[str, ...] = tuple(_PATTERN_HOURS)


@dataclass
class Schedule:
    """Operating plan of one machine type's devices (arrays over devices).

    Attributes:
        pattern: index into :data:`PATTERNS`.
        account: account index (for engagement).
        start_h, length_h: shift start (UTC hour of day) and nominal length.
        workdays: ``[devices, 7]`` which weekdays (Monday = 0) are worked.
        base_load, volatility, season_amp: load process parameters.
        knot: the load process's last hourly value (state between days).
        carry_end: steps of yesterday's run that spill into today (state between days).
    """

    pattern: I64
    account: I64
    start_h: F64
    length_h: F64
    workdays: Bool
    base_load: F64
    volatility: F64
    season_amp: F64
    southern: Bool
    knot: F64
    carry_end: I64

    def block(
        self,
        weekday: int,
        day_of_year: int,
        steps: int,
        engagement: F32,
        g: np.random.Generator,
    ) -> tuple[Bool, F32]:
        """Planned ``running`` and ``load`` (``[devices, steps]``) of one day.

        ``engagement`` is the engagement of every account that day.
        """
        n = self.pattern.shape[0]
        e = engagement[self.account].astype(np.float64)
        step_h = 24.0 / steps
        continuous = self.pattern == 0
        seasonal = self.pattern == 3
        season = -math.cos(2 * math.pi * (day_of_year - 15) / 365.25)
        season_dev = np.where(self.southern, -season, season)
        p_run = np.where(continuous, 0.985, 0.72 + 0.26 * e)
        p_run = np.where(seasonal, p_run * np.clip(0.55 + 0.6 * season_dev, 0.05, 1.0), p_run)
        works = self.workdays[:, weekday] & (g.random(n) < p_run)
        jitter_h = g.normal(0.0, 0.2, n)
        length = self.length_h * (0.82 + 0.18 * e) + g.normal(0.0, 0.3, n)
        stop_h = np.where(g.random(n) < 0.08, g.uniform(0.5, 6.0, n), 0.0)
        start = np.where(continuous, stop_h, self.start_h + jitter_h)
        length = np.where(continuous, 24.0 - stop_h, np.clip(length, 1.0, 23.5))
        start_step = np.floor(start / step_h).astype(np.int64)
        end_step = start_step + np.round(length / step_h).astype(np.int64)
        start_step = np.where(works, start_step, 0)
        end_step = np.where(works, end_step, 0)
        t = np.arange(steps, dtype=np.int64)[None, :]
        running = (t >= start_step[:, None]) & (t < end_step[:, None])
        running |= t < self.carry_end[:, None]
        self.carry_end = np.maximum(end_step - steps, 0)

        level = self.base_load * (1.0 + self.season_amp * season_dev) * (0.85 + 0.15 * e)
        knots = np.empty((n, 25))
        knots[:, 0] = self.knot
        shocks = g.normal(0.0, 1.0, (n, 24)) * self.volatility[:, None]
        for h in range(24):
            knots[:, h + 1] = level + 0.8 * (knots[:, h] - level) + shocks[:, h]
        self.knot = knots[:, 24].copy()
        hours = (np.arange(steps) + 0.5) * step_h
        idx = np.minimum(hours.astype(np.int64), 23)
        frac = (hours - idx).astype(np.float32)
        k32 = knots.astype(np.float32)
        load = k32[:, idx] * (np.float32(1.0) - frac) + k32[:, idx + 1] * frac
        np.clip(load, np.float32(0.1), np.float32(1.0), out=load)
        return running, load


def build_schedule(
    g: np.random.Generator,
    pattern: list[str],
    account: list[int],
    utc_offset_h: list[int],
    southern: list[bool],
) -> Schedule:
    """Draw the per-device schedule parameters."""
    n = len(pattern)
    idx = np.array([PATTERNS.index(p) for p in pattern], dtype=np.int64)
    local_start = np.array([_PATTERN_HOURS[p][0] for p in pattern]) + g.normal(0.0, 0.5, n)
    length = np.array([_PATTERN_HOURS[p][1] for p in pattern]) * g.uniform(0.9, 1.1, n)
    start_utc = np.mod(local_start - np.array(utc_offset_h, dtype=np.float64), 24.0)
    six_day = g.random(n) < 0.25
    workdays = np.zeros((n, 7), dtype=bool)
    workdays[:, :5] = True
    workdays[:, 5] = six_day | (idx == 0) | (idx == 3)
    workdays[:, 6] = (idx == 0) | (idx == 3)
    base = g.uniform(0.45, 0.9, n)
    season_amp = np.where(idx == 3, 0.25, g.uniform(-0.05, 0.12, n))
    return Schedule(
        pattern=idx,
        account=np.array(account, dtype=np.int64),
        start_h=np.where(idx == 0, 0.0, start_utc),
        length_h=length,
        workdays=workdays,
        base_load=base,
        volatility=g.uniform(0.02, 0.08, n),
        season_amp=season_amp,
        southern=np.array(southern, dtype=bool),
        knot=base.copy(),
        carry_end=np.zeros(n, dtype=np.int64),
    )
