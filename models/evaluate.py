"""Evaluating a registered model as it is served: manifest + ONNX through onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from models.anomaly import window_summary
from models.datasets.cmapss import load_subset
from models.errors import ManifestError
from models.manifest import Manifest
from models.registry import ModelEntry
from models.rul.evaluation import phm08_score, rmse
from models.rul.normalise import normalise
from models.serving import DeviceHistory, OnnxModel, SequenceScorer
from models.settings import ModelsSettings


def _rank(values: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.argsort(np.argsort(values)).astype(np.float64)


def evaluate_registered(
    entry: ModelEntry, manifest: Manifest, data: Path | None, settings: ModelsSettings
) -> dict[str, float]:
    """Metrics of a registered version on its data set's test split.

    Raises:
        ManifestError: the manifest names no data set this command knows.
    """
    dataset = manifest.extra.get("dataset", {})
    if dataset.get("kind") == "cmapss":
        return _cmapss(entry, manifest, data or settings.data_sets / "cmapss", dataset["subset"])
    if dataset.get("kind") == "ai4i":
        return _ai4i(entry, data or settings.data_sets / "ai4i2020")
    raise ManifestError(f"{entry.name} {entry.version}: no known data set in its manifest")


def _cmapss(entry: ModelEntry, manifest: Manifest, data: Path, subset: str) -> dict[str, float]:
    cmapss = load_subset(data, subset)
    sensors = manifest.feature_names
    if manifest.kind == "rul_sequence":
        histories = [
            DeviceHistory(values=u.select(sensors), settings=u.settings, ages=u.cycles)
            for u in cmapss.test
        ]
        predicted = np.array([s.rul for s in SequenceScorer(entry.directory).score(histories)])
        return {
            "rmse": rmse(predicted, cmapss.test_rul),
            "phm08_score": phm08_score(predicted, cmapss.test_rul),
        }
    norm = manifest.normalisation
    if norm is None:
        raise ManifestError(f"{entry.name}: no normalisation in the manifest")
    model = OnnxModel(entry.directory)
    if manifest.kind == "anomaly_pca":
        window = int(manifest.extra["window"])
        summaries = np.stack(
            [
                window_summary(normalise(norm, u.settings, u.select(sensors))[-window:])
                for u in cmapss.test
            ]
        ).astype(np.float32)
        scores = model.run(summaries)["anomaly_score"].astype(np.float64)
        corr = np.corrcoef(_rank(scores), _rank(-cmapss.test_rul))[0, 1]
        return {"spearman_score_vs_rul": float(corr)}
    from models.features.extraction import extract_selected

    signals = tuple(manifest.extra["signals"])
    window = int(manifest.extra["feature_window"])
    windows = [normalise(norm, u.settings, u.select(signals))[-window:] for u in cmapss.test]
    features = extract_selected(windows, signals, manifest.feature_names)
    fill = np.asarray(manifest.extra["feature_fill"])
    features = np.where(np.isfinite(features), features, fill)
    predicted = np.clip(model.run(features.astype(np.float32))["output"], 0, None)
    return {
        "rmse": rmse(predicted, cmapss.test_rul),
        "phm08_score": phm08_score(predicted, cmapss.test_rul),
    }


def _ai4i(entry: ModelEntry, data: Path) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

    from models.datasets.ai4i import load_ai4i, physical_features

    ai4i = load_ai4i(data)
    probability = OnnxModel(entry.directory).run(physical_features(ai4i.raw).astype(np.float32))[
        "output"
    ]
    return {
        "in_sample_roc_auc": float(roc_auc_score(ai4i.failure, probability)),
        "in_sample_pr_auc": float(average_precision_score(ai4i.failure, probability)),
        "in_sample_f1": float(f1_score(ai4i.failure, probability >= 0.5)),
    }
