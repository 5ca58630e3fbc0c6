"""Running the AI4I benchmark end to end and writing its JSON result."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from models.datasets.ai4i import PHYSICAL_FEATURES, RAW_FEATURES, load_ai4i, physical_features
from models.tabular.ai4i_benchmark import cross_validate, mode_confusion, recall_per_mode
from models.tabular.gbm import GbmConfig


def run_ai4i_benchmark(
    data_dir: Path, folds: int, out: Path, config: GbmConfig | None = None
) -> dict[str, dict[str, float]]:
    """Raw columns vs physical features, both with the same gradient boosting and folds."""
    config = config or GbmConfig()
    data = load_ai4i(data_dir)
    physical = physical_features(data.raw)
    results = {
        "raw": cross_validate(data.raw, data.failure, "raw", config, folds),
        "physical": cross_validate(physical, data.failure, "physical", config, folds),
    }
    names, confusion = mode_confusion(data, physical, replace(config, n_estimators=100), folds)
    payload = {
        "data_sha256": data.sha256,
        "config": config.__dict__,
        "folds": folds,
        "features": {"raw": list(RAW_FEATURES), "physical": list(PHYSICAL_FEATURES)},
        "results": {
            key: {
                "summary": r.summary(),
                "folds": [f.__dict__ for f in r.folds],
                "recall_per_mode": recall_per_mode(data, r.alert),
                "seconds": r.seconds,
            }
            for key, r in results.items()
        },
        "oof_probability": [float(p) for p in results["physical"].probability],
        "label": [int(v) for v in data.failure],
        "mode_confusion": {"labels": list(names), "matrix": confusion.tolist()},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=1), encoding="utf-8")
    return {key: r.summary() for key, r in results.items()}
