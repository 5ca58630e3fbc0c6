"""Top contributing signals of a prediction, by occlusion (works on any ONNX scorer).

A signal's contribution to a row is how much the prediction moves when all of that
signal's features are replaced by their training reference (the median). Feature names
follow tsfresh's ``{signal}__...`` contract, so the signal is the part before ``__``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict


class Contribution(BaseModel):
    model_config = ConfigDict(frozen=True)

    signal: str
    effect: float


def signal_of(feature_name: str) -> str:
    return feature_name.split("__", 1)[0]


def signal_contributions(
    predict: Callable[[NDArray[np.float32]], NDArray[np.float32]],
    features: NDArray[np.float32],
    names: Sequence[str],
    reference: NDArray[np.float32],
    top: int = 3,
) -> list[list[Contribution]]:
    """For each row, the ``top`` signals with the largest absolute effect, largest first.

    ``effect`` is ``prediction - prediction with the signal at its reference``.
    """
    signals = sorted({signal_of(name) for name in names})
    base = predict(features)
    effects = np.zeros((features.shape[0], len(signals)), dtype=np.float64)
    for column, signal in enumerate(signals):
        occluded = features.copy()
        index = [i for i, name in enumerate(names) if signal_of(name) == signal]
        occluded[:, index] = reference[index]
        effects[:, column] = base - predict(occluded)
    order = np.argsort(-np.abs(effects), axis=1)[:, :top]
    return [
        [Contribution(signal=signals[j], effect=float(effects[row, j])) for j in order[row]]
        for row in range(features.shape[0])
    ]
