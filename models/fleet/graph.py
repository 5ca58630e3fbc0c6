"""The fleet model as one ONNX graph over a batch of feature rows.

Input ``features`` ``(batch, n)`` (NaN = missing). Outputs:

* ``mode_probabilities`` ``(batch, modes)``: one boosted classifier per wear mode (a
  mode without enough failures to learn from outputs 0);
* ``risk`` ``(batch,)``: probability that any wear mode fails within the horizon,
  ``1 - prod(1 - p_mode)``;
* ``rul`` ``(batch,)``: hours to the next wear failure, clipped to ``[0, cap]``;
* ``anomaly_score`` ``(batch,)``: PCA reconstruction error of the standardised features
  (missing ones at their training median), 1 = the 99th percentile of healthy windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

from models.fleet.hgb_onnx import HistGbm, raw_score_node

INPUT: Final = "features"
OUTPUTS: Final = ("rul", "risk", "mode_probabilities", "anomaly_score")
ONNX_OPSET: Final = 17
ML_OPSET: Final = 3


@dataclass(frozen=True)
class AnomalyParts:
    """Standardisation and PCA residual projector of the anomaly score."""

    fill: NDArray[np.float64]
    mean: NDArray[np.float64]
    scale: NDArray[np.float64]
    projector: NDArray[np.float64]


def fleet_graph(
    classifiers: list[HistGbm | None],
    regressor: HistGbm,
    rul_cap_hours: float,
    anomaly: AnomalyParts,
    n_features: int,
) -> onnx.ModelProto:
    nodes = []
    inits = [
        numpy_helper.from_array(np.array([1.0], dtype=np.float32), "one"),
        numpy_helper.from_array(np.array([-1], dtype=np.int64), "flat"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "zero_i"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "one_i"),
        numpy_helper.from_array(np.array([0.0], dtype=np.float32), "rul_low"),
        numpy_helper.from_array(np.array([rul_cap_hours], dtype=np.float32), "rul_high"),
    ]
    # (batch, 1) zeros for modes without a classifier
    nodes += [
        helper.make_node("Shape", [INPUT], ["input_shape"]),
        helper.make_node("Slice", ["input_shape", "zero_i", "one_i"], ["batch_dim"]),
        helper.make_node("Concat", ["batch_dim", "one_i"], ["column_shape"], axis=0),
        helper.make_node(
            "ConstantOfShape",
            ["column_shape"],
            ["zeros"],
            value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0]),
        ),
    ]
    columns = []
    for k, model in enumerate(classifiers):
        if model is None:
            columns.append("zeros")
            continue
        nodes.append(raw_score_node(model, INPUT, f"mode{k}_raw"))
        nodes.append(helper.make_node("Sigmoid", [f"mode{k}_raw"], [f"mode{k}_p"]))
        columns.append(f"mode{k}_p")
    nodes.append(helper.make_node("Concat", columns, ["mode_probabilities"], axis=1))
    nodes += [
        helper.make_node("Sub", ["one", "mode_probabilities"], ["survive"]),
        helper.make_node("ReduceProd", ["survive"], ["survive_all"], axes=[1], keepdims=0),
        helper.make_node("Sub", ["one", "survive_all"], ["risk"]),
        raw_score_node(regressor, INPUT, "rul_raw"),
        helper.make_node("Clip", ["rul_raw", "rul_low", "rul_high"], ["rul_clipped"]),
        helper.make_node("Reshape", ["rul_clipped", "flat"], ["rul"]),
    ]
    inits += [
        numpy_helper.from_array(anomaly.fill.astype(np.float32), "anomaly_fill"),
        numpy_helper.from_array(anomaly.mean.astype(np.float32), "anomaly_mean"),
        numpy_helper.from_array(anomaly.scale.astype(np.float32), "anomaly_scale"),
        numpy_helper.from_array(anomaly.projector.astype(np.float32), "anomaly_projector"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
    ]
    nodes += [
        helper.make_node("IsNaN", [INPUT], ["missing"]),
        helper.make_node("Where", ["missing", "anomaly_fill", INPUT], ["filled"]),
        helper.make_node("Sub", ["filled", "anomaly_mean"], ["centred"]),
        helper.make_node("Div", ["centred", "anomaly_scale"], ["standard"]),
        helper.make_node("MatMul", ["standard", "anomaly_projector"], ["residual"]),
        helper.make_node("Mul", ["residual", "residual"], ["squared"]),
        helper.make_node("ReduceSum", ["squared", "axis1"], ["anomaly_score"], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "fleet_failure",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", n_features])],
        [
            helper.make_tensor_value_info("rul", TensorProto.FLOAT, ["batch"]),
            helper.make_tensor_value_info("risk", TensorProto.FLOAT, ["batch"]),
            helper.make_tensor_value_info(
                "mode_probabilities", TensorProto.FLOAT, ["batch", len(classifiers)]
            ),
            helper.make_tensor_value_info("anomaly_score", TensorProto.FLOAT, ["batch"]),
        ],
        initializer=inits,
    )
    proto = helper.make_model(
        graph,
        opset_imports=[
            helper.make_opsetid("", ONNX_OPSET),
            helper.make_opsetid("ai.onnx.ml", ML_OPSET),
        ],
        producer_name="fleetcare.models",
    )
    onnx.checker.check_model(proto)
    return proto
