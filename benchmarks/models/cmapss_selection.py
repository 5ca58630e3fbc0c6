"""Hyper-parameter selection for the C-MAPSS benchmark on held-out *training* units.

    .venv/bin/python -m benchmarks.models.cmapss_selection --subset FD001 \
        --candidate declared --candidate window40 [--seeds 1] [--out selection.json]

Each candidate is trained on 80 % of the training units and scored on pseudo test
units cut from the other 20 % (``models.rul.selection``); the official test set is never
read. The candidate with the lowest mean validation RMSE becomes the declared
configuration (``models.rul.cmapss_benchmark.default_config``). For a candidate with a
calibration (``TrainConfig.calibrate``) the same nets are also scored without it, so the
calibration's own effect is a paired figure.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from models.datasets.cmapss import load_subset
from models.rul.cmapss_benchmark import default_config
from models.rul.cmapss_protocol import evaluate_on_test, prepare, run_seed
from models.rul.evaluation import phm08_score, rmse
from models.rul.selection import holdout_subset
from models.rul.training import TrainConfig
from models.settings import ModelsSettings

#: The previous declared configuration (window 120, MSE, exponential decay, 3 nets).
_PREVIOUS = TrainConfig(
    window=120, width=32, ensemble=3, epochs=30, age_scale=200.0, min_history=10, threads=1
)


def candidates() -> dict[str, TrainConfig]:
    """The configurations compared; each differs from its neighbour in one or two knobs."""
    huber = replace(_PREVIOUS, loss="huber", schedule="cosine")
    calibrated = replace(_PREVIOUS, calibrate=True)
    cross_fit5 = replace(calibrated, ensemble=5, cross_fit=True)
    return {
        "previous": _PREVIOUS,
        "huber_cosine": huber,
        "huber_cosine_x5_e20": replace(huber, ensemble=5, epochs=20),
        "window40": replace(huber, window=40, ensemble=5, epochs=20),
        "window80": replace(huber, window=80, ensemble=5, epochs=20),
        "calibrated": calibrated,
        # 5 nets, early-stopping units = 5 disjoint folds: the map sees every training unit
        "cross_fit5": cross_fit5,
        # a GRU of 32 units over every 4th convolutional step, next to the pooled features
        "gru32": replace(calibrated, recurrent=32),
        "cross_fit5_gru32": replace(cross_fit5, recurrent=32),
        "declared": replace(default_config("FD001"), threads=1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--subset", default="FD001")
    parser.add_argument("--candidate", action="append", required=True, choices=list(candidates()))
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    data_dir = args.data or ModelsSettings().data_sets / "cmapss"
    prepared = prepare(holdout_subset(load_subset(data_dir, args.subset)))
    results: dict[str, dict[str, object]] = {}
    for name in args.candidate:
        config = candidates()[name]
        scores, errors, seconds, uncalibrated = [], [], [], []
        for seed in range(args.seeds):
            started = time.perf_counter()
            result = run_seed(prepared, replace(config, seed=seed))
            errors.append(result.rmse)
            scores.append(result.score)
            seconds.append(time.perf_counter() - started)
            line = (
                f"{name} seed {seed}: validation RMSE {result.rmse:.2f}, score {result.score:.0f}"
            )
            if result.ensemble.calibration is not None:
                raw = evaluate_on_test(replace(result.ensemble, calibration=None), prepared)
                uncalibrated.append(
                    (rmse(raw, prepared.test_rul), phm08_score(raw, prepared.test_rul))
                )
                line += " (same nets uncalibrated: RMSE {:.2f}, score {:.0f})".format(
                    *uncalibrated[-1]
                )
            print(f"{line}, {seconds[-1]:.0f} s", flush=True)
        results[name] = {
            "config": asdict(config),
            "rmse": errors,
            "score": scores,
            "seconds": seconds,
            "rmse_mean": float(np.mean(errors)),
            "uncalibrated_rmse": [u[0] for u in uncalibrated],
            "uncalibrated_score": [u[1] for u in uncalibrated],
        }
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
