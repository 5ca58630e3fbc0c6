"""A trained fleet model to ONNX with its manifest, checked against scikit-learn, registered."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from models.datasets.hashing import files_sha256
from models.errors import ExportError
from models.export import finalise, write_onnx
from models.fleet.daily import DailyMeans
from models.fleet.features import RECIPE_VERSION
from models.fleet.graph import INPUT, fleet_graph
from models.fleet.labels import Outcomes
from models.fleet.scorer import FAMILY, model_name
from models.fleet.training import FleetConfig, TrainedFleetModel, config_dict, samples_of
from models.manifest import Manifest, TensorSpec, WindowSpec
from models.registry import FileRegistry, ModelEntry

PARITY_TOLERANCE = 1e-4


def history_sha256(history: Path, machine_type: str) -> str:
    """Digest of the generated history a model was trained on (its manifest, telemetry
    of the machine type and the failure and maintenance ground truth)."""
    files = [history / "manifest.json"]
    files += sorted((history / "telemetry" / machine_type).glob("*.parquet"))
    files += [history / "ground_truth" / n for n in ("failures.parquet", "maintenance.parquet")]
    return files_sha256(files)


def parity_inputs(
    daily: DailyMeans, outcomes: Outcomes, config: FleetConfig, rows: int = 500
) -> NDArray[np.float32]:
    """About ``rows`` feature rows spread over a training history, to check parity on."""
    samples = samples_of(daily, outcomes, config)
    features: NDArray[np.float32] = samples.features[:: max(1, samples.features.shape[0] // rows)]
    return features


def parity_error(model: TrainedFleetModel, path: Path, features: NDArray[np.float32]) -> float:
    """Largest absolute difference onnxruntime vs scikit-learn (probabilities, risk, RUL/cap)."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rul, risk, modes, _ = session.run(None, {INPUT: features})
    expected = model.predict(features)
    cap = model.config.rul_cap_days * 24.0
    return max(
        float(np.max(np.abs(modes - expected["mode_probabilities"]))),
        float(np.max(np.abs(risk - expected["risk"]))),
        float(np.max(np.abs(rul - expected["rul"]))) / cap,
    )


def _frameworks() -> dict[str, str]:
    import onnx
    import sklearn

    return {
        "scikit-learn": sklearn.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
    }


def export_and_register(
    model: TrainedFleetModel,
    registry: FileRegistry,
    training_data: str,
    training_sha256: str,
    parity_inputs: NDArray[np.float32],
    metrics: dict[str, float] | None = None,
    name: str | None = None,
) -> ModelEntry:
    """Write ``model.onnx`` and ``manifest.json``, check parity, register as a candidate.

    Raises:
        ExportError: onnxruntime and scikit-learn differ by more than 1e-4.
    """
    name = name or model_name(model.machine_type)
    config = model.config
    figures = {
        f"holdout_{q.mode}_{k}": float(v)
        for q in model.holdout
        for k, v in (("precision", q.precision), ("recall", q.recall))
        if v is not None and q.mode in model.thresholds
    }
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        proto = fleet_graph(
            model.classifiers,
            model.regressor,
            config.rul_cap_days * 24.0,
            model.anomaly,
            len(model.feature_names),
        )
        path = write_onnx(proto, directory)
        parity = parity_error(model, path, parity_inputs)
        if parity > PARITY_TOLERANCE:
            raise ExportError(f"onnxruntime differs from scikit-learn by {parity:.2e}")
        n = len(model.feature_names)
        manifest = Manifest(
            name=name,
            version=registry.next_version(name),
            kind="tabular_gbm",
            feature_names=model.feature_names,
            window=WindowSpec(length=config.window_days),
            inputs=(TensorSpec(name=INPUT, shape=("batch", n)),),
            outputs=(
                TensorSpec(name="rul", shape=("batch",)),
                TensorSpec(name="risk", shape=("batch",)),
                TensorSpec(name="mode_probabilities", shape=("batch", len(model.modes))),
                TensorSpec(name="anomaly_score", shape=("batch",)),
            ),
            time_unit="hours",
            rul_cap=config.rul_cap_days * 24.0,
            horizon=config.horizon_days * 24.0,
            failure_modes=model.modes,
            training_data=training_data,
            training_data_sha256=training_sha256,
            metrics={**figures, **(metrics or {}), "onnx_parity_max_abs": parity},
            opset=17,
            framework=_frameworks(),
            extra={
                "family": FAMILY,
                "device_model": model.machine_type,
                "metrics": list(model.metrics),
                "window_source": "telemetry_daily",
                "day_aggregate": "mean of observed values (total / n); no value: missing",
                "recipe_version": RECIPE_VERSION,
                "alert_thresholds": model.thresholds,
                "reference": [float(v) for v in model.reference],
                "failures_in_training": model.failures,
                "training_rows": model.training_rows,
                "train_config": config_dict(config),
            },
        )
        finalise(manifest, directory)
        return registry.register(directory)
