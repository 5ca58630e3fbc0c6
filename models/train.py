"""Training entry points: train one model family, export it with its manifest, register it.

Each returns the registry entry of the new candidate version.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import onnx
import sklearn
import torch

from models.anomaly import INPUT_NAME as ANOMALY_INPUT
from models.anomaly import anomaly_to_onnx, fit_pca_anomaly, window_summary
from models.datasets.ai4i import PHYSICAL_FEATURES, load_ai4i, physical_features
from models.datasets.cmapss import FAULT_MODES, load_subset
from models.export import (
    OPSET,
    check_parity,
    export_sequence_onnx,
    finalise,
    onnx_vs_reference,
    sequence_tensors,
    write_onnx,
)
from models.features.rul_gbm import FeatureConfig, last_window, train_feature_model
from models.features.trees_onnx import INPUT_NAME as TREES_INPUT
from models.features.trees_onnx import gradient_boosting_to_onnx
from models.manifest import Manifest, TensorSpec
from models.registry import FileRegistry, ModelEntry
from models.rul.cmapss_protocol import prepare, run_seed
from models.rul.evaluation import phm08_score, rmse
from models.rul.training import TrainConfig
from models.tabular.gbm import GbmConfig, make_classifier


def _frameworks() -> dict[str, str]:
    return {
        "torch": torch.__version__,
        "scikit-learn": sklearn.__version__,
        "onnx": onnx.__version__,
    }


def _cmapss_modes(subset: str) -> tuple[str, ...]:
    return ("hpc_degradation",) if FAULT_MODES[subset] == 1 else ("unlabelled",)


def train_rul_sequence(
    data_dir: Path,
    subset: str,
    registry: FileRegistry,
    config: TrainConfig,
    name: str | None = None,
) -> ModelEntry:
    """Train the sequence network on a C-MAPSS subset; metrics on its official test set."""
    name = name or f"cmapss-{subset.lower()}-rul"
    data = load_subset(data_dir, subset)
    prepared = prepare(data)
    result = run_seed(prepared, config)
    version = registry.next_version(name)
    inputs, outputs = sequence_tensors(result.ensemble)
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        export_sequence_onnx(result.ensemble, directory / "model.onnx")
        parity = check_parity(result.ensemble, directory / "model.onnx")
        manifest = Manifest(
            name=name,
            version=version,
            kind="rul_sequence",
            feature_names=prepared.sensors,
            window=config.window_spec,
            normalisation=prepared.normalisation,
            inputs=inputs,
            outputs=outputs,
            time_unit="cycles",
            rul_cap=config.rul_cap,
            horizon=config.horizon,
            failure_modes=_cmapss_modes(subset),
            training_data=f"NASA C-MAPSS {subset}: train_, test_ and RUL_{subset}.txt",
            training_data_sha256=data.sha256,
            metrics={
                "test_rmse": result.rmse,
                "test_phm08_score": result.score,
                "onnx_parity_max_abs": parity,
                "ensemble": float(config.ensemble),
            },
            opset=OPSET,
            framework=_frameworks(),
            extra={
                "dataset": {"kind": "cmapss", "subset": subset},
                "train_config": asdict(config),
            },
        )
        manifest = finalise(manifest, directory)
        return registry.register(directory)


def train_rul_features(
    data_dir: Path,
    subset: str,
    registry: FileRegistry,
    config: FeatureConfig,
    name: str | None = None,
) -> ModelEntry:
    """tsfresh selection + gradient boosting on a C-MAPSS subset, exported to ONNX."""
    name = name or f"cmapss-{subset.lower()}-features"
    data = load_subset(data_dir, subset)
    prepared = prepare(data)
    model = train_feature_model(
        prepared.train.sequences, prepared.train.rul, prepared.sensors, config
    )
    test_windows = [last_window(s, config.window) for s in prepared.test_sequences]
    features = model.features(test_windows)
    predicted = np.clip(model.model.predict(features), 0, None)
    version = registry.next_version(name)
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        path = write_onnx(gradient_boosting_to_onnx(model.model, len(model.columns)), directory)
        parity = onnx_vs_reference(
            path,
            TREES_INPUT,
            features.astype(np.float32),
            model.model.predict(features.astype(np.float32).astype(np.float64)),
        )
        manifest = Manifest(
            name=name,
            version=version,
            kind="tabular_gbm",
            feature_names=model.columns,
            window=None,
            normalisation=prepared.normalisation,
            inputs=(TensorSpec(name=TREES_INPUT, shape=("batch", len(model.columns))),),
            outputs=(TensorSpec(name="output", shape=("batch",)),),
            time_unit="cycles",
            rul_cap=config.rul_cap,
            training_data=f"NASA C-MAPSS {subset}",
            training_data_sha256=data.sha256,
            metrics={
                "test_rmse": rmse(predicted, prepared.test_rul),
                "test_phm08_score": phm08_score(predicted, prepared.test_rul),
                "onnx_parity_max_abs": parity,
                "n_features": float(len(model.columns)),
            },
            opset=OPSET,
            framework=_frameworks(),
            extra={
                "dataset": {"kind": "cmapss", "subset": subset},
                "signals": list(model.signals),
                "feature_window": config.window,
                "feature_fill": [float(v) for v in model.fill],
                "output": "rul",
                "train_config": asdict(config),
            },
        )
        finalise(manifest, directory)
        return registry.register(directory)


def train_anomaly(
    data_dir: Path,
    subset: str,
    registry: FileRegistry,
    window: int = 30,
    healthy_cycles: int = 60,
    name: str | None = None,
) -> ModelEntry:
    """PCA anomaly score fitted on the first ``healthy_cycles`` of each training unit.

    No failure label is used to fit it; the labels only measure it (rank correlation of
    the score with the test units' true RUL).
    """
    name = name or f"cmapss-{subset.lower()}-anomaly"
    data = load_subset(data_dir, subset)
    prepared = prepare(data)
    healthy = np.stack(
        [
            window_summary(s[start : start + window])
            for s in prepared.train.sequences
            for start in range(0, max(1, min(healthy_cycles, len(s)) - window + 1), 5)
        ]
    )
    model = fit_pca_anomaly(healthy)
    test = np.stack([window_summary(s[-window:]) for s in prepared.test_sequences])
    scores = model.score(test)
    rank_corr = float(
        np.corrcoef(np.argsort(np.argsort(scores)), np.argsort(np.argsort(-prepared.test_rul)))[
            0, 1
        ]
    )
    version = registry.next_version(name)
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        path = write_onnx(anomaly_to_onnx(model), directory)
        parity = onnx_vs_reference(path, ANOMALY_INPUT, test.astype(np.float32), scores)
        manifest = Manifest(
            name=name,
            version=version,
            kind="anomaly_pca",
            feature_names=prepared.sensors,
            normalisation=prepared.normalisation,
            inputs=(TensorSpec(name=ANOMALY_INPUT, shape=("batch", len(prepared.sensors))),),
            outputs=(TensorSpec(name="anomaly_score", shape=("batch",)),),
            training_data=f"C-MAPSS {subset}, first {healthy_cycles} cycles of each train unit",
            training_data_sha256=data.sha256,
            metrics={
                "test_spearman_score_vs_rul": rank_corr,
                "onnx_parity_max_abs": parity,
                "components": float(model.components.shape[0]),
            },
            opset=OPSET,
            framework=_frameworks(),
            extra={
                "dataset": {"kind": "cmapss", "subset": subset},
                "summary": "mean of each normalised signal over the last `window` readings",
                "window": window,
            },
        )
        finalise(manifest, directory)
        return registry.register(directory)


def train_ai4i(
    data_dir: Path, registry: FileRegistry, config: GbmConfig, name: str = "ai4i-failure"
) -> ModelEntry:
    """Gradient boosting on AI4I with physical features, fitted on all rows.

    Its cross-validated figures come from ``fleetcare models benchmark ai4i``.
    """
    data = load_ai4i(data_dir)
    x = physical_features(data.raw)
    model = make_classifier(config).fit(x, data.failure)
    version = registry.next_version(name)
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        path = write_onnx(gradient_boosting_to_onnx(model, x.shape[1]), directory)
        x32 = x.astype(np.float32)
        parity = onnx_vs_reference(
            path, TREES_INPUT, x32, model.predict_proba(x32.astype(np.float64))[:, 1]
        )
        manifest = Manifest(
            name=name,
            version=version,
            kind="tabular_gbm",
            feature_names=PHYSICAL_FEATURES,
            inputs=(TensorSpec(name=TREES_INPUT, shape=("batch", x.shape[1])),),
            outputs=(TensorSpec(name="output", shape=("batch",)),),
            time_unit="rows",
            failure_modes=("TWF", "HDF", "PWF", "OSF", "RNF"),
            training_data="AI4I 2020 (UCI 601), all 10,000 rows",
            training_data_sha256=data.sha256,
            metrics={"onnx_parity_max_abs": parity, "threshold": 0.5},
            opset=OPSET,
            framework=_frameworks(),
            extra={
                "dataset": {"kind": "ai4i"},
                "output": "failure_probability",
                "type_encoding": {"L": 0, "M": 1, "H": 2},
                "feature_reference": [float(v) for v in np.median(x, axis=0)],
                "train_config": asdict(config),
            },
        )
        finalise(manifest, directory)
        return registry.register(directory)
