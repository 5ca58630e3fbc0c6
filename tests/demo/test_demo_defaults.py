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


def test_scoring_looks_back_over_the_whole_span() -> None:
    from fleetcare.demo.scoring_step import MIN_LOOKBACK_DAYS, lookback_days

    assert lookback_days(0.0) == lookback_days(20 * 86_400) == MIN_LOOKBACK_DAYS
    # a 10-minute demo at 5 s a simulated day spans 118 days: all of them are scored
    assert lookback_days((600 - 8) * 17_280) == 120


def test_the_fleet_is_scored_once_a_simulated_day_but_not_more_often_than_every_2_s() -> None:
    from fleetcare.demo.scoring_step import daily_interval_s

    assert daily_interval_s(17_280) == pytest.approx(5.0)  # the default: a day every 5 s
    assert daily_interval_s(86_400 / 3) == pytest.approx(3.0)
    assert daily_interval_s(86_400) == 2.0
