from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.datasets.cmapss import INFORMATIVE_SENSORS, load_subset, piecewise_rul
from models.errors import DataSetError
from tests.models.conftest import write_cmapss


def test_piecewise_rul_caps_and_counts_down() -> None:
    assert piecewise_rul(5, cap=3).tolist() == [3, 3, 2, 1, 0]
    assert piecewise_rul(3, cap=125, rul_at_end=10).tolist() == [12, 11, 10]


def test_synthetic_subset_loads_in_unit_order(cmapss_dir: Path) -> None:
    subset = load_subset(cmapss_dir, "FD001")
    assert [u.unit for u in subset.train] == list(range(1, 13))
    assert len(subset.test) == subset.test_rul.shape[0] == 12
    assert all(np.all(np.diff(u.cycles) == 1) for u in subset.train)
    assert subset.train[0].select(INFORMATIVE_SENSORS).shape[1] == 14
    assert len(subset.sha256) == 64


def test_unknown_subset_and_missing_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataSetError, match="unknown C-MAPSS subset"):
        load_subset(tmp_path, "FD009")
    with pytest.raises(DataSetError, match="file not found"):
        load_subset(tmp_path, "FD002")


def test_rul_count_must_match_test_units(tmp_path: Path) -> None:
    write_cmapss(tmp_path, "FD003", units=4)
    (tmp_path / "RUL_FD003.txt").write_text("10\n20\n")
    with pytest.raises(DataSetError, match="2 RUL values for 4 test units"):
        load_subset(tmp_path, "FD003")


def test_real_fd001_matches_its_source_notes(data_sets_dir: Path) -> None:
    folder = data_sets_dir / "cmapss"
    if not (folder / "train_FD001.txt").is_file():
        pytest.skip(f"C-MAPSS FD001 not found in {folder}")
    subset = load_subset(folder, "FD001")
    assert len(subset.train) == len(subset.test) == 100
    assert sum(len(u) for u in subset.train) == 20631
    assert sum(len(u) for u in subset.test) == 13096
    assert min(len(u) for u in subset.train) == 128
    assert min(len(u) for u in subset.test) == 31
    assert subset.test_rul.min() == 7 and subset.test_rul.max() == 145
