"""Training the fleet model of one machine type on generated history.

One boosted classifier per wear mode ("fails within the horizon"), one regressor for the
hours to the next wear failure, an anomaly score fitted on healthy windows. Alert
thresholds are chosen per mode on out-of-fold predictions (devices split in ``folds``
groups; each group scored by classifiers fitted on the others): the highest recall at a
precision of at least ``target_precision``. Then every model is fitted on all devices.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from models.anomaly import fit_pca_anomaly
from models.fleet.alerts import ModeAlertQuality, ScoredDays, alert_quality
from models.fleet.daily import DailyMeans, read_daily_means
from models.fleet.dataset import Samples, build_samples
from models.fleet.features import feature_names
from models.fleet.graph import AnomalyParts
from models.fleet.labels import Outcomes, read_outcomes

log = logging.getLogger(__name__)

#: A wear mode needs at least this many failures in training to get a classifier.
MIN_FAILURES = 4
THRESHOLD_GRID = tuple(round(t, 2) for t in np.arange(0.15, 0.96, 0.05))


@dataclass(frozen=True)
class FleetConfig:
    horizon_days: float = 14.0
    window_days: int = 28
    rul_cap_days: float = 60.0
    first_day: int = 7
    max_iter: int = 150
    learning_rate: float = 0.08
    max_leaf_nodes: int = 15
    #: L2 penalty on the classifiers' leaf values. A wear mode's positives can be a few in
    #: 10,000 device-days; without it, leaves of negatives whose probability is already near
    #: 0 have near-zero hessians, their Newton steps blow up, and boosting ends up ranking
    #: negatives above the positives (16 failures of a rare mode: every training positive
    #: scored 0.0, healthy days 1.0).
    l2_regularization: float = 1.0
    gap_share: float = 0.1
    target_precision: float = 0.85
    folds: int = 3
    seed: int = 0
    threads: int = 1


@dataclass(frozen=True)
class TrainedFleetModel:
    machine_type: str
    metrics: tuple[str, ...]
    modes: tuple[str, ...]
    feature_names: tuple[str, ...]
    classifiers: list[HistGradientBoostingClassifier | None]
    regressor: HistGradientBoostingRegressor
    anomaly: AnomalyParts
    reference: NDArray[np.float32]
    thresholds: dict[str, float]
    holdout: list[ModeAlertQuality]
    config: FleetConfig
    seconds: float
    training_rows: int
    failures: dict[str, int] = field(default_factory=dict)

    def predict(self, features: NDArray[np.float32]) -> dict[str, NDArray[np.float64]]:
        """scikit-learn's predictions (the reference the ONNX graph is checked against)."""
        p = np.zeros((features.shape[0], len(self.modes)))
        for k, model in enumerate(self.classifiers):
            if model is not None:
                p[:, k] = model.predict_proba(features)[:, 1]
        rul = np.clip(self.regressor.predict(features), 0.0, self.config.rul_cap_days * 24.0)
        return {"mode_probabilities": p, "risk": 1.0 - np.prod(1.0 - p, axis=1), "rul": rul}


def fleet_classifier(config: FleetConfig) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(
        max_iter=config.max_iter,
        learning_rate=config.learning_rate,
        max_leaf_nodes=config.max_leaf_nodes,
        l2_regularization=config.l2_regularization,
        early_stopping=False,
        random_state=config.seed,
    )


def _fit_classifiers(
    samples: Samples, rows: NDArray[np.bool_], modes: tuple[str, ...], trainable: set[str],
    config: FleetConfig,
) -> list[HistGradientBoostingClassifier | None]:  # fmt: skip
    out: list[HistGradientBoostingClassifier | None] = []
    for k, mode in enumerate(modes):
        target = samples.mode_target[:, k]
        use = rows & (target >= 0)
        if mode not in trainable or not (target[use] == 1).any():
            out.append(None)
            continue
        out.append(fleet_classifier(config).fit(samples.features[use], target[use]))
    return out


def _probabilities(
    classifiers: list[HistGradientBoostingClassifier | None], features: NDArray[np.float32]
) -> NDArray[np.float32]:
    p = np.zeros((features.shape[0], len(classifiers)), dtype=np.float32)
    for k, model in enumerate(classifiers):
        if model is not None:
            p[:, k] = model.predict_proba(features)[:, 1]
    return p


def choose_thresholds(
    scored: ScoredDays, outcomes: Outcomes, config: FleetConfig, trainable: set[str]
) -> tuple[dict[str, float], list[ModeAlertQuality]]:
    """Per mode: the threshold with the highest recall at precision >= the target.

    When no threshold reaches the target precision, the one with the best F1.
    """
    chosen: dict[str, float] = {}
    for mode in outcomes.modes:
        if mode not in trainable:
            continue
        best: tuple[float, float, float] | None = None  # (reaches target, score, threshold)
        for threshold in THRESHOLD_GRID:
            (quality,) = [
                q
                for q in alert_quality(
                    scored, outcomes, {mode: threshold}, config.horizon_days, config.first_day
                )
                if q.mode == mode
            ]
            precision, recall = quality.precision or 0.0, quality.recall or 0.0
            reaches = precision >= config.target_precision
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            key = (float(reaches), recall if reaches else f1, -threshold)
            if best is None or key > best:
                best = key
        assert best is not None
        chosen[mode] = float(-best[2])
    return chosen, alert_quality(scored, outcomes, chosen, config.horizon_days, config.first_day)


def _anomaly(samples: Samples, rul_cap_days: float, seed: int) -> AnomalyParts:
    healthy = (samples.mode_target <= 0).all(axis=1) & ~(samples.rul_days < rul_cap_days)
    rows = np.flatnonzero(healthy)
    if rows.size > 20_000:
        rows = np.random.default_rng(seed).choice(rows, 20_000, replace=False)
    x = samples.features[rows].astype(np.float64)
    fill = np.nanmedian(samples.features, axis=0).astype(np.float64)
    fill = np.where(np.isfinite(fill), fill, 0.0)
    x = np.where(np.isfinite(x), x, fill)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    pca = fit_pca_anomaly((x - mean) / scale)
    n = x.shape[1]
    projector = (np.eye(n) - pca.components.T @ pca.components) / np.sqrt(pca.scale)
    return AnomalyParts(fill=fill, mean=mean, scale=scale, projector=projector)


def load_history(history: Path, machine_type: str) -> tuple[DailyMeans, Outcomes]:
    from firmware_sim.machines import machine_spec

    daily = read_daily_means(history, machine_type)
    modes = machine_spec(machine_type).wear_mode_names
    return daily, read_outcomes(history / "ground_truth", daily, modes)


def samples_of(
    daily: DailyMeans, outcomes: Outcomes, config: FleetConfig, *, gaps: bool = False
) -> Samples:
    """The device-day samples of a history, framed as ``config`` says (window, horizon, RUL
    cap, first day); ``gaps``: blank runs of days in some windows, as training does."""
    return build_samples(
        daily,
        outcomes,
        config.window_days,
        config.horizon_days,
        config.rul_cap_days,
        config.first_day,
        gap_share=config.gap_share if gaps else 0.0,
        seed=config.seed,
    )


def train_fleet_model(
    daily: DailyMeans, outcomes: Outcomes, config: FleetConfig
) -> TrainedFleetModel:
    """Train on every device of ``daily`` (one thread: OpenMP spinning on a shared machine
    costs far more than it gains)."""
    with threadpool_limits(limits=config.threads):
        return _train(daily, outcomes, config)


def _train(daily: DailyMeans, outcomes: Outcomes, config: FleetConfig) -> TrainedFleetModel:
    started = time.perf_counter()
    samples = samples_of(daily, outcomes, config, gaps=True)
    failures = {m: sum(1 for f in outcomes.failures if f[2] == m) for m in outcomes.modes}
    trainable = {m for m, n in failures.items() if n >= MIN_FAILURES}
    kind = daily.machine_type
    log.info(
        "%s: %d device-days, modes with enough failures to learn: %s; %d out-of-fold "
        "rounds for the thresholds, then the final models",
        kind, samples.device.size, ", ".join(sorted(trainable)) or "none", config.folds,
    )  # fmt: skip
    probability = np.zeros((samples.device.size, len(outcomes.modes)), dtype=np.float32)
    for fold in range(config.folds):
        held = samples.device % config.folds == fold
        first = _fit_classifiers(samples, ~held, outcomes.modes, trainable, config)
        probability[held] = _probabilities(first, samples.features[held])
        log.info(
            "%s: out-of-fold round %d/%d done (%.0f s)",
            kind, fold + 1, config.folds, time.perf_counter() - started,
        )  # fmt: skip
    scored = ScoredDays(samples.device, samples.day, probability)
    thresholds, holdout = choose_thresholds(scored, outcomes, config, trainable)
    log.info("%s: thresholds %s", kind, thresholds)
    everything = np.ones(samples.device.size, dtype=bool)
    classifiers = _fit_classifiers(samples, everything, outcomes.modes, trainable, config)
    thresholds = {
        m: t for m, t in thresholds.items() if classifiers[outcomes.modes.index(m)] is not None
    }
    known = np.isfinite(samples.rul_days)
    regressor = HistGradientBoostingRegressor(
        max_iter=config.max_iter,
        learning_rate=config.learning_rate,
        max_leaf_nodes=config.max_leaf_nodes,
        early_stopping=False,
        random_state=config.seed,
    ).fit(samples.features[known], samples.rul_days[known] * 24.0)
    log.info("%s: final models fitted (%.0f s)", kind, time.perf_counter() - started)
    reference = np.nanmedian(samples.features, axis=0)
    return TrainedFleetModel(
        machine_type=daily.machine_type,
        metrics=daily.metrics,
        modes=outcomes.modes,
        feature_names=feature_names(daily.metrics),
        classifiers=classifiers,
        regressor=regressor,
        anomaly=_anomaly(samples, config.rul_cap_days, config.seed),
        reference=np.where(np.isfinite(reference), reference, 0.0).astype(np.float32),
        thresholds=thresholds,
        holdout=holdout,
        config=config,
        seconds=time.perf_counter() - started,
        training_rows=int(samples.device.size),
        failures=failures,
    )


def config_dict(config: FleetConfig) -> dict[str, object]:
    return asdict(config)
