"""The C-MAPSS benchmark: several seeds of the sequence model on one subset's official test set."""

from __future__ import annotations

import json
import logging
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from models.datasets.cmapss import load_subset
from models.rul.cmapss_protocol import AlertTrace, alert_trace, evaluate_on_test, prepare, run_seed
from models.rul.evaluation import phm08_score, rmse
from models.rul.training import TrainConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchmarkResult:
    subset: str
    seeds: list[int]
    rmse: list[float]
    score: list[float]
    rmse_tail: list[float]
    score_tail: list[float]
    seconds: list[float]
    predicted: list[list[float]]
    true: list[float]
    config: dict[str, object]
    data_sha256: str
    machine: str
    alerts: dict[str, object] = field(default_factory=dict)
    """First seed's risk head at every test cycle (``AlertTrace``), for the report."""
    rmse_uncalibrated: list[float] = field(default_factory=list)
    """With a calibration: the same nets' figures without it (the calibration's effect)."""
    score_uncalibrated: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        rmse, score = np.array(self.rmse), np.array(self.score)
        ddof = 1 if len(self.rmse) > 1 else 0
        return {
            "rmse_mean": float(rmse.mean()),
            "rmse_std": float(rmse.std(ddof=ddof)),
            "rmse_min": float(rmse.min()),
            "rmse_max": float(rmse.max()),
            "score_mean": float(score.mean()),
            "score_std": float(score.std(ddof=ddof)),
            "rmse_tail_mean": float(np.mean(self.rmse_tail)),
            "rmse_tail_std": float(np.std(self.rmse_tail, ddof=ddof)),
            "score_tail_mean": float(np.mean(self.score_tail)),
            "score_tail_std": float(np.std(self.score_tail, ddof=ddof)),
            "seconds_per_seed": float(np.mean(self.seconds)),
            **(
                {
                    "rmse_uncalibrated_mean": float(np.mean(self.rmse_uncalibrated)),
                    "rmse_uncalibrated_std": float(np.std(self.rmse_uncalibrated, ddof=ddof)),
                    "score_uncalibrated_mean": float(np.mean(self.score_uncalibrated)),
                }
                if self.rmse_uncalibrated
                else {}
            ),
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps({**asdict(self), "summary": self.summary()}, indent=1), encoding="utf-8"
        )


TAIL = 10
"""The second, declared figure averages ``prediction(t - j) - j`` over the last 10 windows."""


def default_config(subset: str) -> TrainConfig:
    """The declared benchmark configuration (the same for every subset).

    Window 120 with an age channel; training windows also end from the 10th cycle on,
    front-padded and masked as a short test unit (FD001: 31 cycles, FD002/FD004: 19) is.
    An ensemble of 5 nets whose early-stopping units are 5 disjoint folds of the training
    units (``cross_fit``), so the isotonic RUL calibration (``models.rul.calibration``) is
    fitted on test-like cuts (at least 31 cycles, RUL 1-150) of every training unit, each
    scored by the one net that did not train on it. Each net also reads its convolutional
    features in time order with a GRU of 32 units (``recurrent``), every 4th step up to the
    last. The target stays capped at 125.
    """
    return TrainConfig(
        window=120,
        width=32,
        ensemble=5,
        epochs=30,
        age_scale=200.0,
        min_history=10,
        threads=1,
        calibrate=True,
        cross_fit=True,
        recurrent=32,
    )


def run_benchmark(
    data_dir: Path, subset: str, seeds: list[int], config: TrainConfig | None = None
) -> BenchmarkResult:
    data = load_subset(data_dir, subset)
    prepared = prepare(data)
    config = config or default_config(subset)
    results, tails, uncalibrated = [], [], []
    trace: AlertTrace | None = None
    truth = prepared.test_rul
    for seed in seeds:
        started = time.perf_counter()
        result = run_seed(prepared, replace(config, seed=seed))
        tail = evaluate_on_test(result.ensemble, prepared, TAIL)
        tails.append((rmse(tail, truth), phm08_score(tail, truth)))
        log.info(
            "%s seed %d: RMSE %.2f score %.0f; tail-%d RMSE %.2f score %.0f (%.0f s)",
            subset, seed, result.rmse, result.score, TAIL, *tails[-1],
            time.perf_counter() - started,
        )  # fmt: skip
        if result.ensemble.calibration is not None:
            raw = evaluate_on_test(replace(result.ensemble, calibration=None), prepared)
            uncalibrated.append((rmse(raw, truth), phm08_score(raw, truth)))
            log.info("%s seed %d without calibration: RMSE %.2f score %.0f",
                     subset, seed, *uncalibrated[-1])  # fmt: skip
        results.append(result)
        if trace is None:
            trace = alert_trace(result.ensemble, prepared)
    return BenchmarkResult(
        subset=subset,
        seeds=seeds,
        rmse=[r.rmse for r in results],
        score=[r.score for r in results],
        rmse_tail=[t[0] for t in tails],
        score_tail=[t[1] for t in tails],
        seconds=[r.seconds for r in results],
        predicted=[[float(v) for v in r.predicted] for r in results],
        true=[float(v) for v in prepared.test_rul],
        config=asdict(config),
        data_sha256=data.sha256,
        machine=f"{platform.machine()}, torch {torch.__version__}, {config.threads} thread(s)",
        alerts=_alerts_json(trace, config) if trace is not None else {},
        rmse_uncalibrated=[u[0] for u in uncalibrated],
        score_uncalibrated=[u[1] for u in uncalibrated],
    )


def _alerts_json(trace: AlertTrace, config: TrainConfig) -> dict[str, object]:
    return {
        "horizon": config.horizon,
        "threshold": 0.5,
        "risk": [round(float(v), 5) for v in trace.risk],
        "label": [int(v) for v in trace.label],
        "lead_times": [float(v) for v in trace.lead_times],
        "units_alerted": trace.units_alerted,
        "units_in_horizon": trace.units_in_horizon,
    }
