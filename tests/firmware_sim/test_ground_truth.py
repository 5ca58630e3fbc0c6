"""Ground truth agrees with the telemetry: wear-out failures are announced, random ones are not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from firmware_sim import SimConfig, generate
from firmware_sim.catalogue import FailureModeSpec
from firmware_sim.machines import MACHINE_TYPES, machine_spec
from tests.firmware_sim.conftest import QUIET_SENSORS

HOUR_MS = 3_600_000


class Telemetry:
    """One run's telemetry, indexed by device."""

    def __init__(self, out: Path) -> None:
        self.tables: dict[str, pa.Table] = {}
        for machine_type in MACHINE_TYPES:
            table = ds.dataset(out / "telemetry" / machine_type).to_table()
            self.tables[machine_type] = table.append_column(
                "dev", pc.cast(table["device_id"], pa.string())
            )

    def device(self, machine_type: str, device_id: str) -> pa.Table:
        table = self.tables[machine_type]
        return table.filter(pc.equal(table["dev"], device_id))


def _ms(value: object) -> int:
    return int(value.timestamp() * 1000)  # type: ignore[attr-defined]


def _signature(dev: pa.Table, mode: FailureModeSpec, rows: np.ndarray, idle: float) -> float:
    """Mean of the mode's main signature over ``rows``; pressure is load-normalised."""
    metric = mode.signature[0]
    values = dev[metric].to_numpy()[rows]
    if metric == "discharge_pressure_bar" and "flow_m3h" in dev.column_names:
        speed = dev["speed_rpm"].to_numpy()[rows]
        values = (values - idle) / (speed / 1000.0) ** 2
    return float(np.nanmean(values))


def _windows(dev: pa.Table, end_ms: int, base_end_ms: int) -> tuple[np.ndarray, np.ndarray]:
    ts = dev["ts"].to_numpy().astype("datetime64[ms]").astype(np.int64)
    running = dev["speed_rpm"].to_numpy() > 50
    last = running & (ts < end_ms) & (ts >= end_ms - 24 * HOUR_MS)
    base = running & (ts < base_end_ms) & (ts >= base_end_ms - 72 * HOUR_MS)
    return last, base


def _idle_pressure(dev: pa.Table) -> float:
    stopped = dev["speed_rpm"].to_numpy() == 0
    return float(np.nanmedian(dev["discharge_pressure_bar"].to_numpy()[stopped]))


def test_every_wear_failure_is_preceded_by_its_signature(wear_run: Path) -> None:
    failures = pq.read_table(wear_run / "ground_truth" / "failures.parquet").to_pylist()
    onsets = pq.read_table(wear_run / "ground_truth" / "degradation_onsets.parquet").to_pylist()
    telemetry = Telemetry(wear_run)
    start_ms = min(_ms(o["onset_at"]) for o in onsets)
    checked: dict[str, int] = {}
    wear = [f for f in failures if f["cause"] == "wear"]
    assert len(wear) >= 40
    for failure in wear:
        assert failure["degradation"] == 1.0
        spec = machine_spec(failure["machine_type"])
        mode = spec.wear_modes[spec.wear_mode_names.index(failure["mode"])]
        earlier = [
            o
            for o in onsets
            if o["device_id"] == failure["device_id"]
            and o["mode"] == failure["mode"]
            and o["onset_at"] <= failure["failed_at"]
        ]
        assert earlier, f"no degradation onset before {failure}"
        onset = max(earlier, key=lambda o: o["onset_at"])
        fail_ms = _ms(failure["failed_at"])
        base_end = _ms(onset["onset_at"])
        margin = 0.05
        if onset["before_start"]:
            margin = 0.02
            if fail_ms - start_ms < 4 * 24 * HOUR_MS:
                continue
            base_end = start_ms + 72 * HOUR_MS
        dev = telemetry.device(failure["machine_type"], failure["device_id"])
        last, base = _windows(dev, fail_ms, base_end)
        if last.sum() < 60 or base.sum() < 60:
            continue
        idle = _idle_pressure(dev)
        before, after = _signature(dev, mode, base, idle), _signature(dev, mode, last, idle)
        if mode.signature[0] in mode.falls:
            assert after < (1 - margin) * before, (failure, before, after)
        else:
            assert after > (1 + margin) * before, (failure, before, after)
        checked[mode.name] = checked.get(mode.name, 0) + 1
    assert sum(checked.values()) >= 30, checked
    assert len(checked) >= 5, checked


def test_random_failures_come_without_warning(tmp_path: Path) -> None:
    config = SimConfig(
        devices=60,
        days=20,
        seed=9,
        wear_acceleration=0.001,
        random_failure_scale=400.0,
        sensors=QUIET_SENSORS,
    )
    generate(config, tmp_path, overwrite=True)
    failures = pq.read_table(tmp_path / "ground_truth" / "failures.parquet").to_pylist()
    telemetry = Telemetry(tmp_path)
    ratios = []
    assert len(failures) >= 15
    for failure in failures:
        assert failure["cause"] == "random"
        assert failure["degradation"] < 1.0
        spec = machine_spec(failure["machine_type"])
        assert failure["mode"] in {m.name for m in spec.random_modes}
        dev = telemetry.device(failure["machine_type"], failure["device_id"])
        fail_ms = _ms(failure["failed_at"])
        last, base = _windows(dev, fail_ms, fail_ms - 24 * HOUR_MS)
        if last.sum() < 60 or base.sum() < 60:
            continue
        idle = _idle_pressure(dev)
        for mode in spec.wear_modes:
            ratio = _signature(dev, mode, last, idle) / _signature(dev, mode, base, idle)
            assert 0.6 < ratio < 1.6, (failure, mode.name, ratio)
            ratios.append(ratio)
    assert len(ratios) >= 20
    assert float(np.median(ratios)) == pytest.approx(1.0, abs=0.1)


def test_failed_machines_stop_until_repaired(small_run: Path) -> None:
    failures = pq.read_table(small_run / "ground_truth" / "failures.parquet").to_pylist()
    telemetry = Telemetry(small_run)
    assert failures
    for failure in failures:
        dev = telemetry.device(failure["machine_type"], failure["device_id"])
        ts = dev["ts"].to_numpy().astype("datetime64[ms]").astype(np.int64)
        down = (ts >= _ms(failure["failed_at"])) & (ts < _ms(failure["resolved_at"]))
        speed = dev["speed_rpm"].to_numpy()[down]
        assert np.nansum(speed > 50) <= 0.01 * max(1, down.sum()), failure
        assert failure["downtime_h"] > 0


def test_ground_truth_tables_reference_each_other(small_run: Path) -> None:
    truth = small_run / "ground_truth"
    devices = set(pq.read_table(truth / "devices.parquet")["device_id"].to_pylist())
    failures = pq.read_table(truth / "failures.parquet").to_pylist()
    tickets = {t["ticket_id"]: t for t in pq.read_table(truth / "tickets.parquet").to_pylist()}
    maintenance = pq.read_table(truth / "maintenance.parquet").to_pylist()
    for failure in failures:
        assert failure["device_id"] in devices
        ticket = tickets[failure["ticket_id"]]
        assert ticket["category"] == "breakdown"
        assert ticket["device_id"] == failure["device_id"]
        assert ticket["failure_mode"] == failure["mode"]
        assert ticket["opened_at"] > failure["failed_at"]
        assert ticket["resolved_at"] == failure["resolved_at"]
    corrective = [m for m in maintenance if m["kind"] == "corrective"]
    assert len(corrective) == len(failures)
    assert {m["quality"] for m in maintenance} <= {"good", "poor", "bad"}
    degradation = pq.read_table(truth / "degradation_daily.parquet")
    types = pq.read_table(truth / "devices.parquet")["machine_type"].to_pylist()
    per_day = sum(len(machine_spec(t).wear_modes) for t in types)
    assert degradation.num_rows == per_day * 10
    assert float(pc.max(degradation["degradation"]).as_py()) < 1.0
