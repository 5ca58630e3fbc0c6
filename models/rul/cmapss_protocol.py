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
from models.rul.windows import last_windows, sliding_windows


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


@dataclass(frozen=True)
class AlertTrace:
    """The risk head at every cycle of every test unit, against the known failure time.

    Attributes:
        risk: predicted probability of failing within the horizon, per (unit, cycle).
        label: 1 where the unit's true RUL at that cycle is within the horizon.
        lead_times: per test unit with a correct alert, the true RUL (cycles to failure)
            at its first correct alert (risk >= ``threshold`` while the label is 1).
        units_alerted: how many of the units that enter the horizon get such an alert.
        units_in_horizon: test units whose observed cycles reach the horizon.
    """

    risk: NDArray[np.float32]
    label: NDArray[np.int64]
    lead_times: NDArray[np.float64]
    units_alerted: int
    units_in_horizon: int


def alert_trace(
    ensemble: TrainedEnsemble, prepared: PreparedSubset, threshold: float = 0.5
) -> AlertTrace:
    """Score every cycle of every test unit: its failure is ``RUL`` cycles after the last one."""
    spec = ensemble.config.window_spec
    n_units = len(prepared.test_sequences)
    risks, true_ruls, owners = [], [], []
    for first in range(0, n_units, 20):  # every cycle of 20 units at a time bounds memory
        chunk = list(range(first, min(first + 20, n_units)))
        windows = sliding_windows(
            [prepared.test_sequences[i] for i in chunk],
            spec,
            [prepared.test_ages[i] for i in chunk] if spec.age_scale is not None else None,
            min_history=1,
        )
        _, chunk_risk, _ = predict(ensemble, windows.inputs)
        owner = np.asarray(chunk, dtype=np.int64)[windows.sequence]
        length = np.array([len(prepared.test_sequences[i]) for i in chunk])[windows.sequence]
        true_ruls.append(prepared.test_rul[owner] + (length - 1) - windows.end_index)
        risks.append(chunk_risk)
        owners.append(owner)
    risk = np.concatenate(risks)
    true_rul = np.concatenate(true_ruls)
    sequence = np.concatenate(owners)
    label = (true_rul <= ensemble.config.horizon).astype(np.int64)
    correct = (risk >= threshold) & (label == 1)
    lead_times = []
    for unit in range(n_units):
        rows = np.flatnonzero((sequence == unit) & correct)
        if rows.size:
            lead_times.append(float(true_rul[rows[0]]))
    in_horizon = int(np.unique(sequence[label == 1]).size)
    return AlertTrace(
        risk=risk,
        label=label,
        lead_times=np.asarray(lead_times, dtype=np.float64),
        units_alerted=len(lead_times),
        units_in_horizon=in_horizon,
    )
