"""FD002-FD004 layouts on synthetic files: six operating conditions, short test units."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.datasets.cmapss import load_subset
from models.manifest import WindowSpec
from models.rul.cmapss_protocol import prepare
from models.rul.normalise import assign_conditions
from models.rul.windows import last_windows
from tests.models.conftest import write_cmapss


def test_six_operating_conditions_are_found_and_normalised_each(tmp_path: Path) -> None:
    subset = load_subset(
        write_cmapss(tmp_path, "FD004", units=8, conditions=6, fault_modes=2, shortest_test=19),
        "FD004",
    )
    prepared = prepare(subset)
    assert len(prepared.normalisation.centroids) == 6
    train = subset.train[0]
    condition = assign_conditions(prepared.normalisation, train.settings)
    values = prepared.train.sequences[0]
    # the raw levels differ by 10 per condition; normalised, every condition is centred
    raw_gap = np.ptp([train.sensors[condition == c, 1].mean() for c in np.unique(condition)])
    gap = np.ptp([values[condition == c, 0].mean() for c in np.unique(condition)])
    assert raw_gap > 40 and gap < 1.5


def test_a_19_cycle_test_unit_gets_a_padded_masked_window(tmp_path: Path) -> None:
    subset = load_subset(
        write_cmapss(tmp_path, "FD002", units=6, conditions=6, shortest_test=19), "FD002"
    )
    assert len(subset.test[0]) == 19
    prepared = prepare(subset)
    spec = WindowSpec(length=120, age_scale=200.0)
    window = last_windows(prepared.test_sequences[:1], spec, prepared.test_ages[:1])[0]
    n = len(prepared.sensors)
    assert window.shape == (120, 2 * n + 1)
    assert window[:101, n : 2 * n].sum() == 0 and window[101:, n : 2 * n].min() == 1
    assert window[-1, -1] == np.float32(19 / 200)


def test_two_fault_modes_wear_different_sensors(tmp_path: Path) -> None:
    subset = load_subset(write_cmapss(tmp_path, "FD003", units=4, fault_modes=2), "FD003")
    drift = [u.sensors[-5:].mean(axis=0) - u.sensors[:5].mean(axis=0) for u in subset.train[:2]]
    assert np.argmax(drift[0]) != np.argmax(drift[1])
