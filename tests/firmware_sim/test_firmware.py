"""The simulated firmware's downlink side: alarm limits from the desired config, self-test."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from firmware_sim.firmware import SimulatedFirmware

METRICS = frozenset({"bearing_temp_c", "flow_lpm"})


def desired(config: dict[str, Any]) -> Any:
    return SimpleNamespace(config=config, version=1)


def test_limits_are_applied_and_reported_as_applied() -> None:
    firmware = SimulatedFirmware("pump-1", METRICS)
    applied = firmware.apply_config(
        desired({"alarm_limits": {"bearing_temp_c": {"max": 85}, "flow_lpm": {"min": 40.5}}})
    )
    assert applied == {"alarm_limits": {"bearing_temp_c": {"max": 85.0}, "flow_lpm": {"min": 40.5}}}
    assert firmware.apply_config(desired({"alarm_limits": {}})) == {"alarm_limits": {}}
    assert firmware.limits == {}


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({"sample_hz": 2}, "unknown setting(s) sample_hz"),
        ({"alarm_limits": {"rpm": {"max": 1}}}, "'rpm' is not a metric"),
        ({"alarm_limits": {"flow_lpm": {"max": "high"}}}, "must be a number"),
        ({"alarm_limits": {"flow_lpm": {"max": float("inf")}}}, "must be finite"),
        ({"alarm_limits": {"flow_lpm": {"max": True}}}, "must be a number"),
        ({"alarm_limits": {"flow_lpm": {"min": 9, "max": 3}}}, "min is above max"),
        ({"alarm_limits": {"flow_lpm": {}}}, "min and/or max"),
        ({"alarm_limits": [1]}, "must be an object"),
    ],
)
def test_a_bad_config_is_rejected_and_the_limits_in_force_stay(
    config: dict[str, Any], reason: str
) -> None:
    firmware = SimulatedFirmware("pump-1", METRICS)
    firmware.apply_config(desired({"alarm_limits": {"flow_lpm": {"min": 40}}}))
    before = dict(firmware.limits)
    with pytest.raises(ValueError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        firmware.apply_config(desired(config))
    assert firmware.limits == before


def test_an_alarm_fires_once_per_excursion_beyond_a_limit() -> None:
    firmware = SimulatedFirmware("pump-1", METRICS)
    firmware.apply_config(desired({"alarm_limits": {"bearing_temp_c": {"max": 80}}}))
    temps = [70.0, 81.0, 83.0, None, 79.0, 82.5]
    fired = [firmware.crossings({"bearing_temp_c": t, "flow_lpm": 50.0}) for t in temps]
    assert [len(f) for f in fired] == [0, 1, 0, 0, 0, 1]
    assert fired[1][0].message == "bearing_temp_c 81 above its limit 80"
    assert fired[5][0].value == 82.5


def test_self_test_reports_the_last_reading_and_the_limits_it_breaks() -> None:
    firmware = SimulatedFirmware("pump-1", METRICS)
    assert firmware.self_test(None) == {"passed": False, "reason": "no reading yet"}
    healthy = firmware.self_test((7, 1_000, {"bearing_temp_c": 60.0, "flow_lpm": 50.0}))
    assert healthy["passed"] is True and healthy["reading_seq"] == 7
    firmware.apply_config(desired({"alarm_limits": {"bearing_temp_c": {"max": 55}}}))
    hot = firmware.self_test((8, 2_000, {"bearing_temp_c": 60.0, "flow_lpm": None}))
    assert hot["passed"] is False
    assert hot["beyond_limits"] == {"bearing_temp_c": "max"}
    assert hot["missing"] == ["flow_lpm"]
