"""The readings a live run leaves out: the devices' history before its span.

A live run with ``LiveOptions.history_days`` starts the devices' physics that many days
before its span and publishes from the span's first step on (:func:`firmware_sim.live.
live_window`). :func:`history_readings` replays the steps before it with the same engine,
so that another path (``fleetcare demo`` loads them through ingest's writer) can give the
devices the history a fleet in the field has: the span then continues exactly where the
history ends, wear included.

The history is clean telemetry: no faults, no clock skew, no usage records or events.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from firmware_sim.config import SimConfig
from firmware_sim.engagement import simulate_engagement
from firmware_sim.engine import Simulation
from firmware_sim.fleet import build_fleet

Metrics = dict[str, float | None]


@dataclass(frozen=True)
class DeviceDay:
    """One device's readings of one simulated day (or of the part of it before the span)."""

    device_id: str
    readings: list[tuple[datetime, Metrics]]


def history_readings(
    config: SimConfig, first_step: int, devices: frozenset[str] | None = None
) -> Iterator[DeviceDay]:
    """Every reading of steps ``[0, first_step)`` of ``config``, day by day, device by device.

    ``config`` and ``first_step`` are what :func:`firmware_sim.live.live_window` returns for
    the live run; ``devices`` keeps only those (``None``: the whole fleet). A missing value
    is ``None``, as the device SDK sends it.
    """
    if first_step <= 0:
        return
    fleet = build_fleet(config)
    engagement = simulate_engagement(config.seed, config.n_accounts, config.days)
    sim = Simulation(config, fleet, engagement)
    spd = config.steps_per_day
    for day, blocks in enumerate(sim.days()):
        lo, hi = day * spd, min(first_step, (day + 1) * spd)
        if lo >= hi:
            return
        times = [config.start_at + timedelta(seconds=k * config.interval_s) for k in range(lo, hi)]
        for block in blocks:
            names = list(block.values)
            t0 = block.first_step
            arrays = [block.values[n][:, lo - t0 : hi - t0] for n in names]
            for i, device_id in enumerate(block.device_ids):
                if devices is not None and device_id not in devices:
                    continue
                columns = zip(*(a[i].tolist() for a in arrays), strict=True)
                steps = zip(times, columns, strict=True)
                yield DeviceDay(device_id, [(at, _metrics(names, row)) for at, row in steps])


def _metrics(names: list[str], values: tuple[float, ...]) -> Metrics:
    return {n: None if math.isnan(v) else v for n, v in zip(names, values, strict=True)}
