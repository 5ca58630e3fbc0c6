"""Physical sanity: each failure mode moves the readings it should, in the right direction."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from firmware_sim.machine import BlockInputs
from firmware_sim.machines import MACHINE_TYPES, machine_model, machine_spec

STEPS = 240


def _values(machine_type: str, mode: str, level: float, load: float = 0.7) -> dict[str, float]:
    """Mean true values of one unit running for 4 h with ``mode`` at ``level``."""
    model = machine_model(machine_type)
    spec = model.spec
    units = model.sample_units(np.random.default_rng(0), 1, np.zeros(1, dtype=bool))
    degradation = np.zeros((len(spec.wear_modes), 1, STEPS), dtype=np.float32)
    degradation[spec.wear_mode_names.index(mode)] = level
    inputs = BlockInputs(
        running=np.ones((1, STEPS), dtype=bool),
        load=np.full((1, STEPS), load, dtype=np.float32),
        ambient=np.full((1, STEPS), 20.0, dtype=np.float32),
        degradation=degradation,
        step_index=np.arange(STEPS, dtype=np.int64),
        step_h=1 / 60,
    )
    thermal = {k: np.full(1, 0.3, dtype=np.float32) for k in ("bearing", "winding", "discharge")}
    values = model.true_values(inputs, units, thermal)
    return {k: float(v[0, -60:].mean()) for k, v in values.items()}


@pytest.mark.parametrize("machine_type", MACHINE_TYPES)
def test_every_wear_mode_moves_its_signature(machine_type: str) -> None:
    spec = machine_spec(machine_type)
    for mode in spec.wear_modes:
        healthy = _values(machine_type, mode.name, 0.0)
        worn = _values(machine_type, mode.name, 0.95)
        for metric in mode.signature:
            if metric in mode.falls:
                assert worn[metric] < healthy[metric], (mode.name, metric)
            else:
                assert worn[metric] > healthy[metric], (mode.name, metric)


@pytest.mark.parametrize("machine_type", MACHINE_TYPES)
def test_bearing_friction_raises_current_temperature_and_vibration(machine_type: str) -> None:
    levels = [0.0, 0.25, 0.5, 0.75, 1.0]
    rows = [_values(machine_type, "bearing_wear", d) for d in levels]
    for metric in ("motor_current_a", "bearing_temp_c", "vibration_rms_mm_s", "vibration_peak_g"):
        series = [r[metric] for r in rows]
        assert all(b > a for a, b in itertools.pairwise(series)), (metric, series)


def test_pump_follows_affinity_laws_when_healthy() -> None:
    low = _values("centrifugal_pump", "bearing_wear", 0.0, load=0.2)
    high = _values("centrifugal_pump", "bearing_wear", 0.0, load=1.0)
    speed_ratio = high["speed_rpm"] / low["speed_rpm"]
    assert high["flow_m3h"] / low["flow_m3h"] == pytest.approx(speed_ratio, rel=1e-3)
    assert high["power_kw"] > low["power_kw"] * speed_ratio**2


def test_readings_stay_in_sensor_range_and_resolution(small_run: Path) -> None:
    for machine_type in MACHINE_TYPES:
        spec = machine_spec(machine_type)
        table = ds.dataset(small_run / "telemetry" / machine_type).to_table()
        for metric in spec.metrics:
            values = table[metric.name].to_numpy()
            finite = values[~np.isnan(values)]
            assert finite.size > 0.9 * values.size
            assert finite.min() >= metric.low - 1e-6 and finite.max() <= metric.high + 1e-6
            steps = finite / metric.resolution
            assert np.allclose(steps, np.rint(steps), atol=1e-3), metric.name


def test_hidden_bearing_wear_correlates_with_readings(wear_run: Path) -> None:
    """Within a device, days of worse bearings are days of more vibration and heat."""
    table = ds.dataset(wear_run / "telemetry" / "centrifugal_pump").to_table()
    running = pc.greater(table["speed_rpm"], 0)
    table = table.filter(running)
    daily = (
        pa.table(
            {
                "device_id": pc.cast(table["device_id"], pa.string()),
                "date": pc.cast(table["ts"], pa.date32()),
                "rise": pc.subtract(table["bearing_temp_c"], table["ambient_temp_c"]),
                "vib": table["vibration_rms_mm_s"],
            }
        )
        .group_by(["device_id", "date"])
        .aggregate([("rise", "mean"), ("vib", "mean")])
    )
    truth = pq.read_table(wear_run / "ground_truth" / "degradation_daily.parquet")
    truth = truth.filter(pc.equal(truth["mode"], "bearing_wear"))
    joined = daily.join(truth, ["device_id", "date"]).to_pydict()
    devices = np.array(joined["device_id"])
    level = np.array(joined["degradation"], dtype=float)
    assert level.max() > 0.5, "the run should contain badly worn bearings"
    for name in ("rise_mean", "vib_mean"):
        values = np.array(joined[name], dtype=float)
        x, y = level.copy(), values.copy()
        for device in np.unique(devices):
            rows = devices == device
            x[rows] -= x[rows].mean()
            y[rows] -= np.nanmean(y[rows])
        ok = ~np.isnan(y)
        assert np.corrcoef(x[ok], y[ok])[0, 1] > 0.3, name
