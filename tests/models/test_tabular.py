from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

from models.tabular.ai4i_benchmark import cross_validate
from models.tabular.gbm import GbmConfig, best_f1_threshold

SMALL = GbmConfig(n_estimators=30, max_depth=2)


def _data(n: int = 600) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3))
    return x, ((x[:, 0] > 1.2) | (x[:, 1] < -1.5)).astype(np.int64)


def test_cross_validation_reports_each_fold_and_the_spread() -> None:
    x, y = _data()
    result = cross_validate(x, y, "synthetic", SMALL, n_splits=3)
    assert len(result.folds) == 3
    summary = result.summary()
    assert summary["roc_auc_mean"] > 0.95 and summary["f1_std"] >= 0
    assert result.alert.dtype == bool and result.probability.shape == y.shape


def test_threshold_from_inner_folds_is_not_fixed() -> None:
    x, y = _data()
    result = cross_validate(x, y, "synthetic", SMALL, n_splits=3, threshold=None)
    assert all(0 < f.threshold < 1 for f in result.folds)


def test_best_f1_threshold() -> None:
    y = np.array([0, 0, 1, 1])
    assert best_f1_threshold(y, np.array([0.1, 0.3, 0.35, 0.9])) == pytest.approx(0.35)


@pytest.mark.slow
def test_ai4i_model_registers_and_serves_through_onnx(data_sets_dir: Path, tmp_path: Path) -> None:
    from models.evaluate import evaluate_registered
    from models.registry import FileRegistry
    from models.settings import ModelsSettings
    from models.train import train_ai4i

    folder = data_sets_dir / "ai4i2020"
    if not (folder / "ai4i2020.csv").is_file():
        pytest.skip(f"AI4I 2020 not found in {folder}")
    registry = FileRegistry(tmp_path / "reg")
    entry = train_ai4i(folder, registry, GbmConfig(n_estimators=100))
    assert entry.metrics["onnx_parity_max_abs"] < 1e-4
    manifest = registry.manifest(entry.name, entry.version)
    assert "TWF" not in manifest.feature_names
    metrics = evaluate_registered(entry, manifest, folder, ModelsSettings())
    assert metrics["in_sample_roc_auc"] > 0.95
