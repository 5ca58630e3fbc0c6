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

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

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


def history_readings(config: SimConfig, first_step: int) -> Iterator[DeviceDay]:
    """Every reading of steps ``[0, first_step)`` of ``config``, day by day, device by device.

    ``config`` and ``first_step`` are what :func:`firmware_sim.live.live_window` returns for
    the live run. A missing value is ``None``, as the device SDK sends it.
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
        times = [config.step_time(k) for k in range(lo, hi)]
        for block in blocks:
            for i, device_id in enumerate(block.device_ids):
                readings = block.device_readings(i, lo, hi)
                yield DeviceDay(device_id, list(zip(times, readings, strict=True)))
