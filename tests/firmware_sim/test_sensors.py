"""Sensor impairments: noise of the stated size, and every stuck / spike / gap recorded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from firmware_sim.config import SensorImpairments
from firmware_sim.machines import machine_spec
from firmware_sim.sensors import SensorImpairer, normal_table


def test_noise_has_the_catalogue_spread() -> None:
    spec = machine_spec("centrifugal_pump")
    settings = SensorImpairments(
        missing_rate=0.0,
        dropout_per_device_year=0.0,
        spike_rate=0.0,
        stuck_per_device_year=0.0,
        drift_share=0.0,
    )
    impairer = SensorImpairer.plan(
        np.random.default_rng(1), spec, settings, 50, 1, 1440, normal_table()
    )
    values = {
        m.name: np.full((50, 1440), (m.low + m.high) / 2, dtype=np.float32) for m in spec.metrics
    }
    impairer.apply(values, 0, np.random.default_rng(2))
    for metric in spec.metrics:
        if metric.noise_rel:
            continue
        spread = float(values[metric.name].std())
        expected = np.hypot(metric.noise, metric.resolution / np.sqrt(12))
        assert abs(spread - expected) < 0.05 * expected, metric.name


def test_normal_table_is_standard_normal() -> None:
    table = normal_table()
    assert abs(float(table.mean())) < 1e-6
    assert abs(float(table.std()) - 1.0) < 0.01


def test_recorded_faults_are_in_the_data(small_run: Path) -> None:
    faults = pq.read_table(small_run / "ground_truth" / "sensor_faults.parquet").to_pylist()
    kinds = {f["kind"] for f in faults}
    assert {"spike", "drift"} <= kinds
    table = ds.dataset(small_run / "telemetry").to_table()
    devices = pc.cast(table["device_id"], pa.string())
    spikes = [f for f in faults if f["kind"] == "spike"][:50]
    for fault in spikes:
        rows = table.filter(
            pc.and_(
                pc.equal(devices, fault["device_id"]),
                pc.equal(table["ts"], pa.scalar(fault["start_at"], pa.timestamp("ms", "UTC"))),
            )
        )
        assert rows.num_rows == 1
    stuck = [f for f in faults if f["kind"] == "stuck"]
    for fault in stuck:
        mask = pc.and_(
            pc.equal(devices, fault["device_id"]),
            pc.and_(
                pc.greater_equal(table["ts"], pa.scalar(fault["start_at"], table["ts"].type)),
                pc.less(table["ts"], pa.scalar(fault["end_at"], table["ts"].type)),
            ),
        )
        values = table.filter(mask)[fault["metric"]].to_numpy()
        finite = values[~np.isnan(values)]
        assert finite.size == 0 or np.unique(finite).size <= 2, fault
    dropouts = [f for f in faults if f["kind"] == "dropout"]
    for fault in dropouts:
        mask = pc.and_(
            pc.equal(devices, fault["device_id"]),
            pc.and_(
                pc.greater_equal(table["ts"], pa.scalar(fault["start_at"], table["ts"].type)),
                pc.less(table["ts"], pa.scalar(fault["end_at"], table["ts"].type)),
            ),
        )
        assert np.isnan(table.filter(mask)["ambient_temp_c"].to_numpy()).all(), fault
