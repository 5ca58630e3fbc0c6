"""tsfresh selection + gradient boosting on small synthetic C-MAPSS data, served via ONNX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tsfresh")

from models.evaluate import evaluate_registered
from models.features.rul_gbm import FeatureConfig
from models.registry import FileRegistry
from models.settings import ModelsSettings
from models.train import train_rul_features


@pytest.mark.slow
def test_feature_model_trains_exports_and_evaluates(cmapss_dir: Path, tmp_path: Path) -> None:
    registry = FileRegistry(tmp_path / "reg")
    config = FeatureConfig(window=15, stride=10, n_estimators=40)
    entry = train_rul_features(cmapss_dir, "FD001", registry, config)
    manifest = registry.manifest(entry.name, entry.version)
    assert manifest.kind == "tabular_gbm"
    assert all("__" in name for name in manifest.feature_names)  # tsfresh's naming contract
    assert entry.metrics["onnx_parity_max_abs"] < 1e-3
    metrics = evaluate_registered(entry, manifest, cmapss_dir, ModelsSettings())
    assert metrics["rmse"] == pytest.approx(entry.metrics["test_rmse"], rel=1e-3, abs=1e-2)
    assert np.isfinite(metrics["phm08_score"])
