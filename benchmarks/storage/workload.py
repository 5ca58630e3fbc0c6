"""Synthetic fleet telemetry for the storage-layout benchmark.

Heterogeneous device models share one global metric catalogue; each model
reports ``metrics_per_model`` of its metrics per reading. Readings arrive in
time order, all devices interleaved (what an ingest sees), one per device per
``interval_s``. Values are per-(device, metric) random walks rounded to a
sensor-like resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

#: Global metric catalogue (metric_id = index + 1). Realistic names matter for
#: jsonb, which stores every key in every row.
METRIC_NAMES: tuple[str, ...] = (
    "vibration_rms",
    "vibration_peak",
    "bearing_temp_c",
    "motor_temp_c",
    "current_a",
    "voltage_v",
    "power_kw",
    "pressure_bar",
    "flow_lpm",
    "rpm",
    "humidity_pct",
    "ambient_temp_c",
    "oil_level_pct",
    "duty_cycle_pct",
    "noise_db",
    "torque_nm",
    "coolant_temp_c",
    "belt_tension_n",
    "filter_dp_bar",
    "cycle_time_s",
)

#: First timestamp of every data set (a Monday, UTC midnight).
START = datetime(2026, 1, 5, tzinfo=UTC)


@dataclass(frozen=True)
class Model:
    """A device model: which catalogue metrics it reports, in catalogue-position order."""

    model_id: int
    metric_ids: tuple[int, ...]  # global ids, position i of a reading = metric_ids[i]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(METRIC_NAMES[m - 1] for m in self.metric_ids)


@dataclass(frozen=True)
class Workload:
    """A generated data set, held in memory so that generation is not timed."""

    devices: int
    readings_per_device: int
    interval_s: int
    models: tuple[Model, ...]
    times: list[datetime]  # one per time step
    values: list[list[list[float]]]  # [step][device index][position]

    @property
    def metrics_per_reading(self) -> int:
        return len(self.models[0].metric_ids)

    @property
    def readings(self) -> int:
        return self.devices * self.readings_per_device

    @property
    def metric_values(self) -> int:
        return self.readings * self.metrics_per_reading

    @property
    def end(self) -> datetime:
        return self.times[-1]

    def device_id(self, index: int) -> int:
        return index + 1

    def model_of(self, device_id: int) -> Model:
        return self.models[(device_id - 1) % len(self.models)]


def make_models(n_models: int, metrics_per_model: int) -> tuple[Model, ...]:
    """Overlapping metric sets: model k uses catalogue ids k*4+1 .. (wrapping)."""
    if not 1 <= metrics_per_model <= len(METRIC_NAMES):
        raise ValueError(f"metrics_per_model must be 1..{len(METRIC_NAMES)}")
    models = []
    for k in range(n_models):
        ids = sorted({(k * 4 + j) % len(METRIC_NAMES) + 1 for j in range(metrics_per_model)})
        models.append(Model(model_id=k + 1, metric_ids=tuple(ids)))
    return tuple(models)


def generate(
    devices: int,
    readings_per_device: int,
    metrics_per_model: int = 8,
    interval_s: int = 60,
    n_models: int = 4,
    decimals: int = 3,
    seed: int = 42,
) -> Workload:
    """Build the whole data set in memory (random walks, rounded to ``decimals``)."""
    rng = np.random.default_rng(seed)
    shape = (readings_per_device, devices, metrics_per_model)
    base = rng.uniform(5.0, 200.0, size=(devices, metrics_per_model))
    steps = rng.normal(0.0, 0.05, size=shape) * base / 20.0
    walk = np.round(base + np.cumsum(steps, axis=0), decimals)
    times = [START + timedelta(seconds=interval_s * t) for t in range(readings_per_device)]
    return Workload(
        devices=devices,
        readings_per_device=readings_per_device,
        interval_s=interval_s,
        models=make_models(n_models, metrics_per_model),
        times=times,
        values=walk.tolist(),
    )
