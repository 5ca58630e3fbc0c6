"""The RUL calibration: a monotone map fitted on held-out cuts, exported inside the graph."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from models.export import check_parity, export_sequence_onnx, parity_error  # noqa: E402
from models.manifest import WindowSpec  # noqa: E402
from models.rul.calibration import (  # noqa: E402
    CalibrationLayer,
    RulCalibration,
    cut_windows,
    fit_isotonic,
)
from models.rul.cmapss_protocol import PreparedSubset, evaluate_on_test  # noqa: E402
from models.rul.training import (  # noqa: E402
    TrainConfig,
    TrainedEnsemble,
    out_of_member_cuts,
    train_ensemble,
)
from tests.models.ensemble_checks import assert_merged_graph_matches_members  # noqa: E402

TINY = TrainConfig(
    window=20, epochs=2, ensemble=2, width=16, batch_size=128, threads=1, age_scale=100.0,
    min_history=5, calibrate=True, val_fraction=0.25,
)  # fmt: skip


@pytest.fixture(scope="module")
def calibrated(prepared: PreparedSubset) -> TrainedEnsemble:
    return train_ensemble(prepared.train, TINY)


def test_the_map_interpolates_and_is_flat_beyond_its_ends() -> None:
    calibration = RulCalibration(knots=(0.0, 100.0, 120.0), values=(2.0, 100.0, 140.0))
    got = calibration.apply([-5.0, 0.0, 50.0, 110.0, 120.0, 300.0])
    np.testing.assert_allclose(got, [2.0, 2.0, 51.0, 120.0, 140.0, 140.0])
    layer = CalibrationLayer(calibration)
    x = np.random.default_rng(0).uniform(-20, 200, size=500)
    with torch.inference_mode():
        torch_out = layer(torch.from_numpy(x).float()).numpy()
    np.testing.assert_allclose(torch_out, calibration.apply(x), atol=1e-3)
    constant = CalibrationLayer(RulCalibration(knots=(5.0,), values=(7.0,)))
    with torch.inference_mode():
        assert constant(torch.tensor([0.0, 9.0])).tolist() == [7.0, 7.0]


def test_a_map_that_decreases_is_refused() -> None:
    with pytest.raises(ValueError, match="must not decrease"):
        RulCalibration(knots=(0.0, 1.0), values=(5.0, 4.0))
    with pytest.raises(ValueError, match="increase strictly"):
        RulCalibration(knots=(1.0, 1.0), values=(4.0, 5.0))


def test_isotonic_fit_undoes_a_capped_prediction() -> None:
    """A predictor that saturates at the cap is mapped back toward the uncapped truth."""
    rng = np.random.default_rng(1)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        true = rng.uniform(1, 150, size=n)
        return np.minimum(true, 125.0) * 0.9 + rng.normal(0, 4, size=n), true

    calibration = fit_isotonic(*sample(4000), step=2.5)
    assert np.all(np.diff(calibration.values) >= 0)
    assert np.all(np.diff(calibration.knots) == pytest.approx(2.5))
    assert calibration.rows == 4000
    predicted, true = sample(4000)
    before = np.sqrt(np.mean((predicted - true) ** 2))
    after = np.sqrt(np.mean((calibration.apply(predicted) - true) ** 2))
    assert after < 0.6 * before
    # a saturated prediction maps above the cap: the expected truth there is uncapped
    assert float(calibration.apply([112.0])[0]) > 125.0


def test_cuts_are_the_histories_a_test_unit_could_be() -> None:
    spec = WindowSpec(length=10, age_scale=None)
    sequences = [np.arange(60, dtype=np.float64)[:, None], np.arange(20, dtype=np.float64)[:, None]]
    rul = [np.arange(59, -1, -1, dtype=np.float64), np.arange(19, -1, -1, dtype=np.float64)]
    cuts = cut_windows(sequences, rul, spec, None, min_history=31, max_rul=25.0)
    # unit 1: histories of 35..59 cycles (true RUL 25..1); unit 2 is too short to cut
    np.testing.assert_array_equal(cuts.rul, np.arange(25, 0, -1))
    assert cuts.inputs.shape == (25, 10, 2)
    # each window ends at the cut's last reading: value = cycles observed - 1
    np.testing.assert_array_equal(cuts.inputs[:, -1, 0], 59 - cuts.rul)


def test_calibration_is_fitted_on_units_the_member_did_not_train_on(
    calibrated: TrainedEnsemble, prepared: PreparedSubset
) -> None:
    assert calibrated.calibration is not None
    n_units = len(prepared.train.sequences)
    assert [len(units) for units in calibrated.held_out] == [3, 3]  # 25 % of 12 units
    expected_rows = 0
    for units in calibrated.held_out:
        for unit in units:
            length = len(prepared.train.sequences[unit])
            expected_rows += len(range(1, min(150, length - 31) + 1))
    assert 0 < expected_rows == calibrated.calibration.rows
    assert all(0 <= u < n_units for units in calibrated.held_out for u in units)
    predicted, true = out_of_member_cuts(calibrated, prepared.train)
    assert predicted.shape == true.shape == (expected_rows,)


def test_the_calibration_is_part_of_the_exported_graph(
    calibrated: TrainedEnsemble, prepared: PreparedSubset, tmp_path: Path
) -> None:
    assert calibrated.calibration is not None
    plain = replace(calibrated, calibration=None)
    raw = evaluate_on_test(plain, prepared)
    served = evaluate_on_test(calibrated, prepared)
    np.testing.assert_allclose(served, calibrated.calibration.apply(raw), atol=1e-3)
    assert_merged_graph_matches_members(calibrated, atol=1e-4)
    path = tmp_path / "model.onnx"
    export_sequence_onnx(calibrated, path)
    assert check_parity(calibrated, path) <= 1e-4
    assert parity_error(calibrated, path, batch=300) <= 1e-4
