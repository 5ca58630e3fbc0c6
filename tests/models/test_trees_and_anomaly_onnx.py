from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

pytest.importorskip("sklearn")

from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor

from models.anomaly import anomaly_to_onnx, fit_pca_anomaly
from models.errors import ExportError
from models.features.trees_onnx import gradient_boosting_to_onnx


def _session(proto: object) -> ort.InferenceSession:
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_gradient_boosting_onnx_matches_sklearn(kind: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 5))
    if kind == "classifier":
        model = GradientBoostingClassifier(n_estimators=40, max_depth=3, random_state=0)
        model.fit(x, (x[:, 0] + x[:, 1] ** 2 > 1).astype(int))
    else:
        model = GradientBoostingRegressor(n_estimators=40, random_state=0)
        model.fit(x, 3 * x[:, 0] + x[:, 2])
    session = _session(gradient_boosting_to_onnx(model, 5))
    # training values too: thresholds sit exactly between them
    fresh = np.vstack([rng.normal(size=(300, 5)), x]).astype(np.float32)
    got = session.run(None, {"features": fresh})[0]
    expected = (
        model.predict_proba(fresh.astype(np.float64))[:, 1]
        if kind == "classifier"
        else model.predict(fresh.astype(np.float64))
    )
    assert got.shape == (fresh.shape[0],)
    assert np.max(np.abs(got - expected)) < 1e-4


def test_multiclass_is_refused() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 2))
    model = GradientBoostingClassifier(n_estimators=3).fit(x, np.arange(90) % 3)
    with pytest.raises(ExportError, match="binary"):
        gradient_boosting_to_onnx(model, 2)


def test_pca_anomaly_scores_off_manifold_points_higher_and_onnx_agrees() -> None:
    rng = np.random.default_rng(3)
    latent = rng.normal(size=(500, 2))
    healthy = latent @ rng.normal(size=(2, 6)) + rng.normal(0, 0.05, size=(500, 6))
    model = fit_pca_anomaly(healthy)
    odd = healthy[:50] + rng.normal(0, 1.0, size=(50, 6))
    assert np.median(model.score(odd)) > 10 * np.median(model.score(healthy))
    got = _session(anomaly_to_onnx(model)).run(None, {"features": odd.astype(np.float32)})[0]
    assert np.allclose(got, model.score(odd), rtol=1e-3, atol=1e-3)
