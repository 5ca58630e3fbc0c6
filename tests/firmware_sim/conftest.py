"""Small simulated data sets shared by the simulator tests (generated once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_sim import SensorImpairments, SimConfig, generate

QUIET_SENSORS = SensorImpairments(
    missing_rate=0.0,
    dropout_per_device_year=0.0,
    spike_rate=0.0,
    stuck_per_device_year=0.0,
    drift_share=0.0,
)


@pytest.fixture(scope="session")
def small_config() -> SimConfig:
    return SimConfig(devices=40, days=10, seed=11, wear_acceleration=3.0)


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory, small_config: SimConfig) -> Path:
    """40 devices × 10 days with every sensor impairment on."""
    out = tmp_path_factory.mktemp("sim-small")
    generate(small_config, out, overwrite=True)
    return out


@pytest.fixture(scope="session")
def wear_config() -> SimConfig:
    return SimConfig(devices=120, days=40, seed=5, wear_acceleration=6.0, sensors=QUIET_SENSORS)


@pytest.fixture(scope="session")
def wear_run(tmp_path_factory: pytest.TempPathFactory, wear_config: SimConfig) -> Path:
    """Fast wear, noisy but otherwise healthy sensors: many wear-out failures to check."""
    out = tmp_path_factory.mktemp("sim-wear")
    generate(wear_config, out, overwrite=True)
    return out
