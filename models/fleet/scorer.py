"""Serving a fleet model: windows of daily means in, risk, RUL, mode and reasons out.

numpy and onnxruntime only. ``FleetScorer.score`` is blocking: async callers run it in a
thread or process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict

from models.errors import ManifestError
from models.explain import Contribution, signal_contributions
from models.fleet.features import RECIPE_VERSION, feature_names, window_features
from models.serving import OnnxModel

FAMILY: Final = "fleet"


class FleetScore(BaseModel):
    model_config = ConfigDict(frozen=True)

    risk: float
    rul_hours: float
    failure_mode: str
    mode_probabilities: dict[str, float]
    alerts: tuple[str, ...]
    contributions: tuple[Contribution, ...]
    anomaly_score: float


def model_name(machine_type: str) -> str:
    return f"fleet-{machine_type}"


class FleetScorer:
    """Scores windows ``(batch, window_days, metrics)`` of daily means with one model.

    Raises:
        ManifestError: the artifact is not a fleet model, or of another feature recipe.
    """

    def __init__(self, directory: Path, threads: int = 1) -> None:
        self.model = OnnxModel(directory, threads)
        manifest = self.model.manifest
        extra = manifest.extra
        if extra.get("family") != FAMILY or manifest.window is None:
            raise ManifestError(f"{directory}: not a fleet model")
        if extra.get("recipe_version") != RECIPE_VERSION:
            raise ManifestError(
                f"{directory}: feature recipe {extra.get('recipe_version')!r}, "
                f"this code computes {RECIPE_VERSION}"
            )
        self.manifest = manifest
        self.metrics: tuple[str, ...] = tuple(extra["metrics"])
        if feature_names(self.metrics) != manifest.feature_names:
            raise ManifestError(f"{directory}: feature names differ from the recipe's")
        self.device_model: str = str(extra["device_model"])
        self.window_days: int = manifest.window.length
        self.thresholds: dict[str, float] = {
            str(k): float(v) for k, v in extra["alert_thresholds"].items()
        }
        self.reference = np.asarray(extra["reference"], dtype=np.float32)
        self.horizon_hours = float(manifest.horizon or 0.0)

    def features(self, windows: NDArray[np.float32]) -> NDArray[np.float32]:
        return window_features(windows, self.metrics)

    def run(self, features: NDArray[np.float32]) -> dict[str, NDArray[np.float32]]:
        return self.model.run(features)

    def score(
        self, windows: NDArray[np.float32], top: int = 3, explain: bool = True
    ) -> list[FleetScore]:
        """One score per window; ``top`` contributing signals by occlusion of the risk."""
        if windows.shape[0] == 0:
            return []
        features = self.features(windows)
        out = self.run(features)
        modes = self.manifest.failure_modes
        contributions: list[list[Contribution]] = [[] for _ in range(features.shape[0])]
        if explain:
            contributions = signal_contributions(
                lambda x: self.run(x)["risk"],
                features,
                self.manifest.feature_names,
                self.reference,
                top,
            )
        scores = []
        for row in range(features.shape[0]):
            probabilities = out["mode_probabilities"][row]
            scores.append(
                FleetScore(
                    risk=float(out["risk"][row]),
                    rul_hours=float(out["rul"][row]),
                    failure_mode=modes[int(np.argmax(probabilities))],
                    mode_probabilities={
                        m: float(p) for m, p in zip(modes, probabilities, strict=True)
                    },
                    alerts=tuple(
                        m
                        for m, p in zip(modes, probabilities, strict=True)
                        if m in self.thresholds and p >= self.thresholds[m]
                    ),
                    contributions=tuple(contributions[row]),
                    anomaly_score=float(out["anomaly_score"][row]),
                )
            )
        return scores
