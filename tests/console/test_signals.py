"""Signal names and contributions as the console words them."""

from __future__ import annotations

import pytest

from backend.console.signals import describe_contribution, signal_label, signal_name
from firmware_sim.compressor import SPEC as AIR_COMPRESSOR
from firmware_sim.pump import SPEC as CENTRIFUGAL_PUMP
from models.explain import Contribution


@pytest.mark.parametrize(
    ("metric", "unit", "label"),
    [
        ("vibration_rms_mm_s", "mm/s", "vibration rms (mm/s)"),
        ("flow_m3h", "m³/h", "flow (m³/h)"),
        ("flow_m3min", "m³/min", "flow (m³/min)"),
        ("bearing_temp_c", "°C", "bearing temp (°C)"),
        ("power_kw", "kW", "power (kW)"),
        ("humidity_pct", "%", "humidity (%)"),
        ("inlet_filter_dp_mbar__p90__mean_7d", "mbar", "inlet filter dp (mbar)"),
        ("pressure", "bar", "pressure (bar)"),  # no suffix to take off
        ("bar", "bar", "bar (bar)"),  # the name is not only its unit
        ("run_state", "", "run state"),
    ],
)
def test_a_metric_reads_as_words_and_its_unit_once(metric: str, unit: str, label: str) -> None:
    assert signal_label(metric, unit) == label


def test_every_simulated_metric_loses_its_unit_suffix() -> None:
    for machine in (CENTRIFUGAL_PUMP, AIR_COMPRESSOR):
        for metric in machine.metrics:
            name = signal_name(metric.name, metric.unit)
            assert name != metric.name.replace("_", " "), metric.name


def test_what_the_scorer_stores_is_said_in_percentage_points() -> None:
    units = {"inlet_filter_dp_mbar": "mbar"}
    stored = [
        Contribution(signal="inlet_filter_dp_mbar", effect=0.314).model_dump(),
        Contribution(signal="ambient_temp_c", effect=-0.12).model_dump(),
        Contribution(signal="speed_rpm", effect=0.001).model_dump(),
        Contribution(signal="speed_rpm", effect=0.012).model_dump(),
    ]
    assert [describe_contribution(item, units) for item in stored] == [
        "inlet filter dp (mbar): raises the failure risk by 31 percentage points",
        "ambient temp c: lowers the failure risk by 12 percentage points",
        "speed rpm: barely moves the failure risk",
        "speed rpm: raises the failure risk by 1 percentage point",
    ]


def test_other_shapes_are_shown_as_stored() -> None:
    assert describe_contribution({"feature": "age", "shap": 0.5}, {}) == "age, shap +0.5"
    assert describe_contribution({"weight": 2}, {}) == "?, weight +2"
    assert describe_contribution("vibration", {}) == "vibration"
