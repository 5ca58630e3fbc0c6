"""An unsupervised anomaly score for device types without failure labels.

PCA of recent-reading summaries fitted on healthy history; the score is the squared
reconstruction error divided by its 99th percentile on the training data, so about 1 is
the edge of normal. Exported as a small ONNX graph (Sub, MatMul, ReduceSum).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

ONNX_OPSET = 17
INPUT_NAME = "features"
OUTPUT_NAME = "anomaly_score"


@dataclass(frozen=True)
class PcaAnomaly:
    mean: NDArray[np.float64]
    components: NDArray[np.float64]  # (k, features)
    scale: float

    def score(self, features: NDArray[np.float64]) -> NDArray[np.float64]:
        centred = features - self.mean
        residual = centred - centred @ self.components.T @ self.components
        out: NDArray[np.float64] = (residual**2).sum(axis=1) / self.scale
        return out


def window_summary(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Mean of each signal over a window's observed readings (0, the training mean, if none)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out: NDArray[np.float64] = np.nan_to_num(np.nanmean(values, axis=0), nan=0.0)
    return out


def fit_pca_anomaly(healthy: NDArray[np.float64], variance: float = 0.9) -> PcaAnomaly:
    """Keep the components explaining ``variance`` of the healthy summaries."""
    mean = healthy.mean(axis=0)
    _, singular, vt = np.linalg.svd(healthy - mean, full_matrices=False)
    explained = np.cumsum(singular**2) / np.sum(singular**2)
    k = int(np.searchsorted(explained, variance) + 1)
    model = PcaAnomaly(mean=mean, components=vt[:k], scale=1.0)
    scale = float(np.quantile(model.score(healthy), 0.99)) or 1.0
    return PcaAnomaly(mean=mean, components=vt[:k], scale=scale)


def anomaly_to_onnx(model: PcaAnomaly) -> onnx.ModelProto:
    n = model.mean.shape[0]
    projector = (np.eye(n) - model.components.T @ model.components) / np.sqrt(model.scale)
    graph = helper.make_graph(
        [
            helper.make_node("Sub", [INPUT_NAME, "mean"], ["centred"]),
            helper.make_node("MatMul", ["centred", "projector"], ["residual"]),
            helper.make_node("Mul", ["residual", "residual"], ["squared"]),
            helper.make_node("ReduceSum", ["squared", "axis"], [OUTPUT_NAME], keepdims=0),
        ],
        "pca_anomaly",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", n])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch"])],
        initializer=[
            numpy_helper.from_array(model.mean.astype(np.float32), "mean"),
            numpy_helper.from_array(projector.astype(np.float32), "projector"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axis"),
        ],
    )
    proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)], producer_name="fleetcare.models"
    )
    onnx.checker.check_model(proto)
    return proto
