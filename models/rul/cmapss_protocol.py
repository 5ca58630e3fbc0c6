"""The standard C-MAPSS protocol: train on run-to-failure units, one prediction per test unit.

Target: piece-wise linear RUL capped at ``rul_cap``. Each test unit is scored once, at its
last cycle, against ``RUL_FD00X.txt`` (the true RUL, not capped).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.datasets.cmapss import (
    INFORMATIVE_SENSORS,
    SETTING_NAMES,
    CmapssSubset,
    Trajectory,
)
from models.manifest import Normalisation
from models.rul.evaluation import phm08_score, rmse
from models.rul.normalise import fit_normalisation, normalise
from models.rul.training import SequenceData, TrainConfig, TrainedEnsemble, predict, train_ensemble
from models.rul.windows import last_windows


@dataclass(frozen=True)
class PreparedSubset:
    normalisation: Normalisation
    train: SequenceData
    test_sequences: list[NDArray[np.float64]]
    test_ages: list[NDArray[np.float64]]
    test_rul: NDArray[np.float64]
    sensors: tuple[str, ...]


@dataclass(frozen=True)
class SeedResult:
    seed: int
    rmse: float
    score: float
    predicted: NDArray[np.float64]
    true: NDArray[np.float64]
    seconds: float
    ensemble: TrainedEnsemble


def _normalised(
    spec: Normalisation, unit: Trajectory, sensors: tuple[str, ...]
) -> NDArray[np.float64]:
    return normalise(spec, unit.settings, unit.select(sensors))


def prepare(subset: CmapssSubset, sensors: tuple[str, ...] = INFORMATIVE_SENSORS) -> PreparedSubset:
    """Fit the per-condition normalisation on the training units and apply it everywhere."""
    spec = fit_normalisation(
        [u.settings for u in subset.train], [u.select(sensors) for u in subset.train], SETTING_NAMES
    )
    train = SequenceData(
        sequences=[_normalised(spec, u, sensors) for u in subset.train],
        rul=[np.arange(len(u) - 1, -1, -1, dtype=np.float64) for u in subset.train],
        ages=[u.cycles for u in subset.train],
    )
    return PreparedSubset(
        normalisation=spec,
        train=train,
        test_sequences=[_normalised(spec, u, sensors) for u in subset.test],
        test_ages=[u.cycles for u in subset.test],
        test_rul=subset.test_rul,
        sensors=sensors,
    )


def evaluate_on_test(
    ensemble: TrainedEnsemble, prepared: PreparedSubset, tail: int = 1
) -> NDArray[np.float64]:
    """Predicted RUL at each test unit's last cycle.

    With ``tail > 1`` the prediction is the mean of ``prediction(t - j) - j`` over the
    windows ending at the last ``tail`` cycles (only data up to the last cycle is used).
    """
    spec = ensemble.config.window_spec
    totals = np.zeros(len(prepared.test_sequences))
    counts = np.zeros(len(prepared.test_sequences))
    for j in range(tail):
        keep = [
            i
            for i, s in enumerate(prepared.test_sequences)
            if len(s) - j >= min(len(s), spec.length)
        ]
        if not keep:
            break
        inputs = last_windows(
            [prepared.test_sequences[i][: len(prepared.test_sequences[i]) - j] for i in keep],
            spec,
            [prepared.test_ages[i][: len(prepared.test_ages[i]) - j] for i in keep]
            if spec.age_scale
            else None,
        )
        rul, _, _ = predict(ensemble, inputs)
        totals[keep] += rul.astype(np.float64) - j
        counts[keep] += 1
    out: NDArray[np.float64] = totals / counts
    return out


def run_seed(prepared: PreparedSubset, config: TrainConfig, tail: int = 1) -> SeedResult:
    """Train one seed's ensemble and score it on the official test set."""
    started = time.perf_counter()
    data = prepared.train
    if config.age_scale is None:
        data = SequenceData(sequences=data.sequences, rul=data.rul, modes=data.modes)
    ensemble = train_ensemble(data, config)
    predicted = evaluate_on_test(ensemble, prepared, tail)
    return SeedResult(
        seed=config.seed,
        rmse=rmse(predicted, prepared.test_rul),
        score=phm08_score(predicted, prepared.test_rul),
        predicted=predicted,
        true=prepared.test_rul,
        seconds=time.perf_counter() - started,
        ensemble=ensemble,
    )
