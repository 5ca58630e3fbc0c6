"""The demo's default history covers the fleet models' window."""

from __future__ import annotations

from fleetcare.cli.demo import FLEET_WINDOW_DAYS
from models.fleet.training import FleetConfig


def test_the_default_history_is_the_fleet_models_window() -> None:
    assert FleetConfig().window_days == FLEET_WINDOW_DAYS
