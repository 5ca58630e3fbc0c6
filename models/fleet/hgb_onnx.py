"""scikit-learn ``HistGradientBoosting*`` trees as ONNX ``TreeEnsembleRegressor`` nodes.

Missing values follow each split's learnt direction (``missing_go_to_left`` becomes
``nodes_missing_value_tracks_true``), so a NaN feature (a day without readings) takes
the same branch in onnxruntime as in scikit-learn. Thresholds are rounded down to
float32: for a float32 input ``x <= t`` then holds exactly when it does in float64.
"""

from __future__ import annotations

from typing import Any, TypeAlias, cast

import numpy as np
from numpy.typing import NDArray
from onnx import NodeProto, helper
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from models.errors import ExportError

HistGbm: TypeAlias = HistGradientBoostingClassifier | HistGradientBoostingRegressor


def _float32_at_most(thresholds: NDArray[np.float64]) -> NDArray[np.float32]:
    out = thresholds.astype(np.float32)
    above = out.astype(np.float64) > thresholds
    out[above] = np.nextafter(out[above], np.float32(-np.inf))
    return out


def raw_score_node(model: HistGbm, input_name: str, output_name: str) -> NodeProto:
    """One node computing the model's raw score ``(batch, 1)`` (log-odds for a classifier).

    Raises:
        ExportError: the model is not fitted, is multi-class, or uses categorical splits.
    """
    predictors = getattr(model, "_predictors", None)
    if predictors is None:
        raise ExportError("the model is not fitted")
    if any(len(iteration) != 1 for iteration in predictors):
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
    modes: list[str] = []
    weights: list[float] = []
    for tree_id, (predictor,) in enumerate(predictors):
        nodes = predictor.nodes
        if nodes["is_categorical"].any():
            raise ExportError("categorical splits are not supported")
        thresholds = _float32_at_most(nodes["num_threshold"].astype(np.float64))
        for node_id, node in enumerate(nodes):
            leaf = bool(node["is_leaf"])
            ints["nodes_treeids"].append(tree_id)
            ints["nodes_nodeids"].append(node_id)
            ints["nodes_featureids"].append(0 if leaf else int(node["feature_idx"]))
            ints["nodes_truenodeids"].append(0 if leaf else int(node["left"]))
            ints["nodes_falsenodeids"].append(0 if leaf else int(node["right"]))
            ints["nodes_missing_value_tracks_true"].append(
                0 if leaf else int(node["missing_go_to_left"])
            )
            values.append(0.0 if leaf else float(thresholds[node_id]))
            modes.append("LEAF" if leaf else "BRANCH_LEQ")
            if leaf:
                ints["target_treeids"].append(tree_id)
                ints["target_nodeids"].append(node_id)
                ints["target_ids"].append(0)
                weights.append(float(node["value"]))
    baseline = float(np.ravel(getattr(model, "_baseline_prediction"))[0])  # noqa: B009
    return helper.make_node(
        "TreeEnsembleRegressor",
        [input_name],
        [output_name],
        domain="ai.onnx.ml",
        n_targets=1,
        aggregate_function="SUM",
        post_transform="NONE",
        base_values=[baseline],
        nodes_values=values,
        nodes_modes=modes,
        target_weights=weights,
        **cast(dict[str, Any], ints),
    )
