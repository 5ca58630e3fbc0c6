from __future__ import annotations

import numpy as np
import pytest

from models.datasets.cmapss import SETTING_NAMES
from models.manifest import WindowSpec
from models.rul.normalise import assign_conditions, fit_normalisation, normalise
from models.rul.windows import last_windows, n_channels, sliding_windows


def test_gaps_are_masked_not_read_as_zero_values() -> None:
    values = np.arange(12, dtype=float).reshape(6, 2)
    values[2, 0] = np.nan  # sensor 0 offline at step 2
    values[4, :] = np.nan  # the whole device offline at step 4
    window = last_windows([values], WindowSpec(length=6))[0]
    assert window.shape == (6, 4)
    assert window[2, 2] == 0 and window[2, 3] == 1  # mask channel of each sensor
    assert window[4, 2:].tolist() == [0, 0]
    assert np.isfinite(window).all()
    assert window[:, 2:][~np.isnan(values)].min() == 1


def test_short_history_is_padded_with_its_first_reading_and_marked() -> None:
    values = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
    window = last_windows([values], WindowSpec(length=5))[0]
    assert window[:, 0].tolist() == [1, 1, 1, 2, 3]
    assert window[:, 2].tolist() == [0, 0, 1, 1, 1]


def test_age_channel_is_scaled() -> None:
    spec = WindowSpec(length=2, age_scale=100.0)
    window = last_windows([np.ones((3, 1))], spec, [np.array([1.0, 2.0, 3.0])])[0]
    assert n_channels(1, spec) == 3
    assert window[:, 2].tolist() == pytest.approx([0.02, 0.03])


def test_sliding_windows_end_at_every_reading_with_min_history() -> None:
    values = np.arange(20, dtype=float).reshape(10, 2)
    spec = WindowSpec(length=4)
    plain = sliding_windows([values], spec)
    assert plain.end_index.tolist() == list(range(3, 10))
    early = sliding_windows([values], spec, min_history=2)
    assert early.end_index.tolist() == list(range(1, 10))
    first = early.inputs[0]
    assert first[:, 2].tolist() == [0, 0, 1, 1]  # two padded steps, masked
    assert first[-1, 0] == values[1, 0]


def test_six_operating_conditions_are_found_and_normalised_separately() -> None:
    rng = np.random.default_rng(1)
    points = np.array([[0, 0, 100], [10, 0.25, 100], [20, 0.7, 100], [25, 0.62, 60],
                       [35, 0.84, 100], [42, 0.84, 100]])  # fmt: skip
    which = rng.integers(0, 6, size=3000)
    settings = points[which] + rng.normal(0, 0.002, size=(3000, 3))
    features = (which * 50.0)[:, None] + rng.normal(0, 1, size=(3000, 2))
    spec = fit_normalisation([settings], [features], SETTING_NAMES)
    assert len(spec.centroids) == 6
    conditions = assign_conditions(spec, settings)
    assert len(set(zip(conditions.tolist(), which.tolist(), strict=True))) == 6
    z = normalise(spec, settings, features)
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05


def test_one_condition_when_settings_barely_move() -> None:
    rng = np.random.default_rng(2)
    settings = np.column_stack([rng.normal(0, 0.002, 500), rng.normal(0, 0.0003, 500),
                                np.full(500, 100.0)])  # fmt: skip
    spec = fit_normalisation([settings], [rng.normal(5, 2, size=(500, 3))], SETTING_NAMES)
    assert len(spec.centroids) == 1
