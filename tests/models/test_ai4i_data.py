from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.datasets.ai4i import (
    MODE_COLUMNS,
    PHYSICAL_FEATURES,
    RAW_FEATURES,
    load_ai4i,
    physical_features,
)
from models.errors import DataSetError


def test_physical_features() -> None:
    raw = np.array([[0, 300.0, 310.0, 1500.0, 40.0, 100.0]])
    x = physical_features(raw)[0]
    assert len(x) == len(PHYSICAL_FEATURES)
    assert x[6] == pytest.approx(40 * 1500 * 2 * np.pi / 60)
    assert x[7] == pytest.approx(10.0)
    assert x[8] == pytest.approx(4000.0)


def test_failure_mode_columns_are_never_inputs() -> None:
    assert not set(MODE_COLUMNS) & set(PHYSICAL_FEATURES)
    assert "machine_failure" not in RAW_FEATURES


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataSetError, match="file not found"):
        load_ai4i(tmp_path)


def test_real_file_matches_its_source_notes(data_sets_dir: Path) -> None:
    folder = data_sets_dir / "ai4i2020"
    if not (folder / "ai4i2020.csv").is_file():
        pytest.skip(f"AI4I 2020 not found in {folder}")
    data = load_ai4i(folder)
    assert data.raw.shape == (10000, 6)
    assert int(data.failure.sum()) == 339
    assert data.modes.sum(axis=0).tolist() == [46, 115, 95, 98, 19]
    assert np.bincount(data.raw[:, 0].astype(int)).tolist() == [6000, 2997, 1003]
    labels = data.mode_labels()
    assert int((labels > 0).sum()) == 339 - 9  # failures without a flagged mode
