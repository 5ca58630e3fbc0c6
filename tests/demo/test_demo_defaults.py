"""The demo's defaults that follow from the models and from its accelerated time."""

from __future__ import annotations

import pytest

from fleetcare.cli.demo import FLEET_WINDOW_DAYS
from fleetcare.demo.care_step import CareStep
from models.fleet.training import FleetConfig


def test_the_default_history_is_the_fleet_models_window() -> None:
    assert FleetConfig().window_days == FLEET_WINDOW_DAYS


def test_the_care_cooldown_is_read_in_simulated_hours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLEETCARE_CARE_COOLDOWN_HOURS", raising=False)
    # a simulated day every 5 s: the default 24 h cooldown lasts 5 wall seconds
    assert CareStep(time_scale=17_280)._settings().cooldown_hours * 3600 == pytest.approx(5.0)
    monkeypatch.setenv("FLEETCARE_CARE_COOLDOWN_HOURS", "48")
    assert CareStep(time_scale=17_280)._settings().cooldown_hours * 3600 == pytest.approx(10.0)
    assert CareStep()._settings().cooldown_hours == 48  # real time: as configured
