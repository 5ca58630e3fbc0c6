"""scikit-learn gradient boosting to ONNX (``ai.onnx.ml.TreeEnsembleRegressor``), no extra package.

Supports ``GradientBoostingRegressor`` and binary ``GradientBoostingClassifier``; the
classifier's graph ends in a sigmoid, so both output one float per row.
"""

from __future__ import annotations

from typing import Any, Final, cast

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor

from models.errors import ExportError

ONNX_OPSET: Final = 17
ML_OPSET: Final = 3
INPUT_NAME: Final = "features"
OUTPUT_NAME: Final = "output"


def _float32_at_most(thresholds: NDArray[np.float64]) -> NDArray[np.float32]:
    """The largest float32 not above each threshold: for float32 x, ``x <= t`` is unchanged."""
    out = thresholds.astype(np.float32)
    above = out.astype(np.float64) > thresholds
    out[above] = np.nextafter(out[above], np.float32(-np.inf))
    return out


def _base_value(
    model: GradientBoostingClassifier | GradientBoostingRegressor, probe: NDArray[np.float64]
) -> float:
    """The constant the trees are added to (the model's initial raw prediction)."""
    trees = 0.0
    for tree in model.estimators_[:, 0]:
        trees += float(tree.predict(probe.astype(np.float32))[0])
    raw = (
        model.decision_function(probe)
        if isinstance(model, GradientBoostingClassifier)
        else model.predict(probe)
    )
    return float(np.ravel(raw)[0]) - float(model.learning_rate) * trees


def gradient_boosting_to_onnx(
    model: GradientBoostingClassifier | GradientBoostingRegressor, n_features: int
) -> onnx.ModelProto:
    """Build the ONNX graph of a fitted gradient-boosting model.

    Raises:
        ExportError: a multi-class classifier or an unfitted model.
    """
    if not hasattr(model, "estimators_"):
        raise ExportError("the model is not fitted")
    if model.estimators_.shape[1] != 1:
        raise ExportError("only regressors and binary classifiers are supported")
    ints: dict[str, list[int]] = {
        key: []
        for key in (
            "nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_truenodeids",
            "nodes_falsenodeids", "nodes_missing_value_tracks_true", "target_treeids",
            "target_nodeids", "target_ids",
        )
    }  # fmt: skip
    values: list[float] = []
    weights: list[float] = []
    modes: list[str] = []
    lr = float(model.learning_rate)
    for tree_id, estimator in enumerate(model.estimators_[:, 0]):
        tree = estimator.tree_
        thresholds = _float32_at_most(tree.threshold)
        missing_left = getattr(tree, "missing_go_to_left", np.zeros(tree.node_count, np.uint8))
        for node in range(tree.node_count):
            leaf = bool(tree.children_left[node] == -1)
            ints["nodes_treeids"].append(tree_id)
            ints["nodes_nodeids"].append(node)
            ints["nodes_featureids"].append(0 if leaf else int(tree.feature[node]))
            ints["nodes_truenodeids"].append(0 if leaf else int(tree.children_left[node]))
            ints["nodes_falsenodeids"].append(0 if leaf else int(tree.children_right[node]))
            ints["nodes_missing_value_tracks_true"].append(0 if leaf else int(missing_left[node]))
            values.append(0.0 if leaf else float(thresholds[node]))
            modes.append("LEAF" if leaf else "BRANCH_LEQ")
            if leaf:
                ints["target_treeids"].append(tree_id)
                ints["target_nodeids"].append(node)
                ints["target_ids"].append(0)
                weights.append(lr * float(tree.value[node].ravel()[0]))
    probe = np.zeros((1, n_features))
    ensemble = helper.make_node(
        "TreeEnsembleRegressor",
        [INPUT_NAME],
        ["raw"],
        domain="ai.onnx.ml",
        n_targets=1,
        aggregate_function="SUM",
        post_transform="NONE",
        base_values=[_base_value(model, probe)],
        nodes_values=values,
        nodes_modes=modes,
        target_weights=weights,
        **cast(dict[str, Any], ints),
    )
    nodes = [ensemble]
    last = "raw"
    if isinstance(model, GradientBoostingClassifier):
        nodes.append(helper.make_node("Sigmoid", ["raw"], ["probability"]))
        last = "probability"
    shape = helper.make_tensor("flat", TensorProto.INT64, [1], [-1])
    nodes.append(helper.make_node("Reshape", [last, "flat"], [OUTPUT_NAME]))
    graph = helper.make_graph(
        nodes,
        "gradient_boosting",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", n_features])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch"])],
        initializer=[shape],
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
