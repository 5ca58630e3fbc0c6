"""Hyper-parameters are chosen on held-out training units, never on the official test set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.datasets.cmapss import load_subset
from models.rul.selection import holdout_subset
from tests.models.conftest import write_cmapss


def test_holdout_cuts_come_from_training_units_left_out_of_training(tmp_path: Path) -> None:
    subset = load_subset(write_cmapss(tmp_path, units=10), "FD001")
    stand_in = holdout_subset(subset, holdout_fraction=0.2, cuts_per_unit=4)
    kept = {u.unit for u in stand_in.train}
    held = {u.unit for u in subset.train} - kept
    assert len(kept) == 8 and len(held) == 2
    assert len(stand_in.test) == 8 and stand_in.test_rul.shape == (8,)
    by_unit = {u.unit: u for u in subset.train}
    for cut, rul in zip(stand_in.test, stand_in.test_rul, strict=True):
        assert cut.unit in held
        source = by_unit[cut.unit]
        assert len(cut) >= 31 and len(cut) + rul == len(source)
        np.testing.assert_array_equal(cut.sensors, source.sensors[: len(cut)])
    # the official test files play no part
    assert all(
        not np.array_equal(t.sensors[:5], c.sensors[:5]) for t in subset.test for c in stand_in.test
    )


def test_the_split_is_fixed(tmp_path: Path) -> None:
    subset = load_subset(write_cmapss(tmp_path, units=10), "FD001")
    first, second = holdout_subset(subset), holdout_subset(subset)
    assert [u.unit for u in first.train] == [u.unit for u in second.train]
    np.testing.assert_array_equal(first.test_rul, second.test_rul)


def test_too_few_units_is_refused(tmp_path: Path) -> None:
    subset = load_subset(write_cmapss(tmp_path, units=1), "FD001")
    with pytest.raises(ValueError, match="at least two"):
        holdout_subset(subset)
