"""A monotone map from the network's RUL to the expected true, uncapped RUL.

The network is trained on a target capped at ``rul_cap``: for a healthy unit it cannot
say "more than the cap", and it says less when unsure, while the true RUL it is scored
against is not capped. The calibration is an isotonic (non-decreasing) regression of the
true RUL on the predicted one, fitted on units the networks did not train on: each
ensemble member's own early-stopping units, cut as the test units are (at least
``min_history`` cycles observed, true RUL after the cut between 1 and ``max_rul``), each
scored by that member only. The fit is a piece-wise linear function (flat beyond its
end knots); it runs inside the exported graph (``CalibrationLayer``), after the
ensemble's mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from sklearn.isotonic import IsotonicRegression
from torch import nn

from models.manifest import WindowSpec
from models.rul.windows import last_windows


@dataclass(frozen=True)
class RulCalibration:
    """A non-decreasing piece-wise linear map, constant below the first and above the last knot.

    Attributes:
        knots: strictly increasing predicted RUL values (time units).
        values: the calibrated RUL at each knot, non-decreasing.
        rows: how many held-out cuts the map was fitted on.
    """

    knots: tuple[float, ...]
    values: tuple[float, ...]
    rows: int = 0

    def __post_init__(self) -> None:
        knots, values = np.asarray(self.knots), np.asarray(self.values)
        if knots.size < 1 or knots.shape != values.shape:
            raise ValueError("a calibration needs as many values as knots, at least one")
        if np.any(np.diff(knots) <= 0) or np.any(np.diff(values) < 0):
            raise ValueError("knots must increase strictly and values must not decrease")

    def apply(self, rul: ArrayLike) -> NDArray[np.float64]:
        """The calibrated RUL (numpy; the same function as ``CalibrationLayer``)."""
        out: NDArray[np.float64] = np.interp(
            np.asarray(rul, dtype=np.float64), self.knots, self.values
        )
        return out


class CalibrationLayer(nn.Module):
    """``RulCalibration.apply`` in torch, built from clamps, products and a sum (ONNX-exportable).

    ``f(x) = v_0 + sum_i slope_i * (clamp(x, k_i, k_{i+1}) - k_i)``.
    """

    low: torch.Tensor
    high: torch.Tensor
    slope: torch.Tensor
    first: torch.Tensor

    def __init__(self, calibration: RulCalibration) -> None:
        super().__init__()
        knots = torch.tensor(calibration.knots, dtype=torch.float32)
        values = torch.tensor(calibration.values, dtype=torch.float32)
        self.register_buffer("low", knots[:-1].clone())
        self.register_buffer("high", knots[1:].clone())
        self.register_buffer("slope", (values[1:] - values[:-1]) / (knots[1:] - knots[:-1]))
        self.register_buffer("first", values[:1].clone())
        self.constant = len(calibration.knots) == 1

    def forward(self, rul: torch.Tensor) -> torch.Tensor:
        low, high, slope, first = self.low, self.high, self.slope, self.first
        if self.constant:
            return first.expand_as(rul)
        segment = torch.minimum(torch.maximum(rul.unsqueeze(1), low), high) - low
        return first + (segment * slope).sum(dim=1)


def fit_isotonic(predicted: ArrayLike, true: ArrayLike, step: float = 2.5) -> RulCalibration:
    """Isotonic regression of ``true`` on ``predicted``, read off on a grid of ``step``.

    The knots are every ``step`` time units from the smallest prediction to the largest
    (and one beyond); reading the isotonic fit on a grid bounds the map's slope (the raw
    fit can jump by cycles between two predictions a thousandth apart), so float32
    rounding in the graph cannot move the output by more than a few times its own size.
    """
    x = np.asarray(predicted, dtype=np.float64)
    y = np.asarray(true, dtype=np.float64)
    if x.size == 0 or x.shape != y.shape:
        raise ValueError("calibration needs as many true values as predictions, at least one")
    if step <= 0:
        raise ValueError("the knot step must be positive")
    model = IsotonicRegression(out_of_bounds="clip").fit(x, y)
    knots = np.arange(np.floor(x.min()), x.max() + step, step)
    values = np.maximum.accumulate(np.asarray(model.predict(knots), dtype=np.float64))
    return RulCalibration(
        knots=tuple(float(v) for v in knots),
        values=tuple(float(v) for v in values),
        rows=int(x.size),
    )


@dataclass(frozen=True)
class Cuts:
    """Histories cut from run-to-failure sequences, with the true RUL after each cut."""

    inputs: NDArray[np.float32]
    rul: NDArray[np.float64]


def cut_windows(
    sequences: Sequence[NDArray[np.float64]],
    rul: Sequence[NDArray[np.float64]],
    spec: WindowSpec,
    ages: Sequence[NDArray[np.float64]] | None,
    min_history: int,
    max_rul: float,
) -> Cuts:
    """The last window of every history ``sequence[: e + 1]`` whose true RUL ``rul[e]`` is in
    ``[1, max_rul]`` with ``e + 1 >= min_history``: every cut a test unit could be.
    """
    inputs, targets = [], []
    for index, (values, remaining) in enumerate(zip(sequences, rul, strict=True)):
        ends = [e for e in range(min_history - 1, len(values)) if 1.0 <= remaining[e] <= max_rul]
        if not ends:
            continue
        histories = [values[: e + 1] for e in ends]
        age = ages[index] if ages is not None else None
        inputs.append(
            last_windows(histories, spec, [age[: e + 1] for e in ends] if age is not None else None)
        )
        targets.append(remaining[ends])
    if not inputs:
        return Cuts(
            inputs=np.zeros((0, spec.length, 0), dtype=np.float32),
            rul=np.zeros(0, dtype=np.float64),
        )
    return Cuts(
        inputs=np.concatenate(inputs, axis=0),
        rul=np.concatenate(targets).astype(np.float64),
    )
