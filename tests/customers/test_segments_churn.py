"""Segments with stable names, and the churn models (simulated history and Telco churn)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pyarrow.parquet as pq
import pytest

from backend.customers.churn_features import FEATURE_NAMES, account_features, sequence_features
from backend.customers.churn_model import LinearChurnModel, cross_validate, fit_linear
from backend.customers.segments import SEGMENT_NAMES, name_clusters, segment_accounts
from backend.customers.simload import true_account_map
from backend.customers.telco import engineered_features, load_telco


@pytest.mark.services
def test_segments_are_named_by_centroid_and_stable(loaded: psycopg.Connection) -> None:
    at = datetime(2025, 12, 1, tzinfo=UTC)
    first = segment_accounts(loaded, at, seed=0)
    second = segment_accounts(loaded, at, seed=7, store=False)
    assert set(Counter(s.segment for s in first)) == set(SEGMENT_NAMES)
    same = sum(a.segment == b.segment for a, b in zip(first, second, strict=True))
    assert same >= 0.9 * len(first)
    stored = loaded.execute("SELECT count(DISTINCT segment) FROM accounts").fetchone()
    assert stored == (5,)
    medians = {
        name: np.median(
            [
                [s.features[f] for f in ("monetary", "tenure_days")]
                for s in first
                if s.segment == name
            ],
            axis=0,
        )
        for name in SEGMENT_NAMES
    }
    assert medians["high-value"][0] == max(m[0] for m in medians.values())
    assert medians["new"][1] == min(m[1] for m in medians.values())


def test_cluster_names_do_not_depend_on_cluster_order() -> None:
    centroids = np.array(
        [
            # recency, frequency, monetary, usage level, usage trend, tenure
            [0.0, 0.0, 2.0, 0.5, 0.0, 0.5],
            [0.0, 0.0, 0.0, 0.5, 0.0, -2.0],
            [2.0, -1.0, -1.0, -2.0, 0.0, 0.5],
            [0.0, 0.0, 0.0, 0.0, -2.0, 0.5],
            [0.0, 0.0, 0.0, 0.5, 1.0, 0.5],
        ]
    )
    expected = ["high-value", "new", "dormant", "at-risk", "growing"]
    for order in ([0, 1, 2, 3, 4], [4, 2, 0, 3, 1], [1, 3, 4, 0, 2]):
        names = name_clusters(centroids[order])
        assert [names[i] for i in range(5)] == [expected[j] for j in order]


def test_sequence_features_of_a_falling_series() -> None:
    falling = [(week, 7, 7.0 * (1 + week / 10)) for week in range(26)]  # more sessions long ago
    features = sequence_features(falling)
    assert features["weekly_slope"] < 0 and features["weekly_change"] < 0
    assert features["weeks_idle"] == 0
    assert sequence_features([])["weeks_idle"] == 26


@pytest.mark.services
@pytest.mark.slow
def test_churn_model_on_simulated_history(loaded: psycopg.Connection, sim_dir: Path) -> None:
    mapping = true_account_map(loaded, sim_dir)
    rows, labels = [], []
    for outcome in pq.read_table(sim_dir / "ground_truth" / "outcomes.parquet").to_pylist():
        if outcome["outcome"] == "pending" or outcome["account_id"] not in mapping:
            continue
        at = datetime.fromisoformat(outcome["renewal_date"]).replace(tzinfo=UTC) - timedelta(
            days=30
        )
        if at < datetime(2025, 5, 1, tzinfo=UTC):
            continue
        features = account_features(loaded, mapping[outcome["account_id"]], at)
        rows.append([features[n] for n in FEATURE_NAMES])
        labels.append(int(outcome["outcome"] == "churn"))
    x, y = np.asarray(rows), np.asarray(labels)
    result = cross_validate(x, y, folds=3, repeats=1)
    print(
        f"simulated churn: logistic AUC {result.mean('logistic'):.3f} ± {result.std('logistic'):.3f}"
    )
    assert result.mean("logistic") >= 0.75
    model = fit_linear(FEATURE_NAMES, x, y, version="test")
    risks = [model.risk(dict(zip(FEATURE_NAMES, r, strict=True))) for r in rows]
    assert np.mean([r for r, label in zip(risks, y, strict=True) if label]) > np.mean(
        [r for r, label in zip(risks, y, strict=True) if not label]
    )
    contributions = model.contributions(dict(zip(FEATURE_NAMES, rows[0], strict=True)))
    assert set(contributions) == set(FEATURE_NAMES)


def test_linear_model_round_trip(tmp_path: Path) -> None:
    model = LinearChurnModel(
        version="v",
        features=["a", "b"],
        means=[0.0, 1.0],
        scales=[1.0, 2.0],
        weights=[1.0, -1.0],
        intercept=0.0,
    )
    path = tmp_path / "m.json"
    model.save(path)
    again = LinearChurnModel.load(path)
    assert again.risk({"a": 1.0, "b": 1.0}) == pytest.approx(1 / (1 + np.exp(-1.0)))


@pytest.mark.slow
def test_telco_churn_cross_validated_auc(data_sets_dir: Path) -> None:
    if not (data_sets_dir / "telco_churn" / "telco_churn.csv").is_file():
        pytest.skip(f"telco_churn/telco_churn.csv not found under {data_sets_dir}")
    frame, labels = load_telco(data_sets_dir)
    features = engineered_features(frame).to_numpy(dtype=float)
    result = cross_validate(features, labels, folds=3, repeats=1)
    print(f"telco blend AUC {result.mean('blend'):.4f} ± {result.std('blend'):.4f} (3 folds)")
    assert result.mean("blend") >= 0.84
    assert result.mean("blend") >= result.mean("logistic") - 0.005


@pytest.mark.services
@pytest.mark.slow
def test_churn_model_trained_on_recorded_outcomes_feeds_health(
    loaded: psycopg.Connection, sim_dir: Path, tmp_path: Path
) -> None:
    from backend.customers.churn_training import train
    from backend.customers.health_job import recompute
    from backend.customers.health_weights import load_weights
    from backend.customers.simload import load_outcomes

    assert load_outcomes(loaded, sim_dir) > 50
    model, result = train(loaded, version="t1", folds=3)
    assert result.mean("logistic") >= 0.75 and model.metrics["examples"] > 50
    path = tmp_path / "churn.json"
    model.save(path)
    served = LinearChurnModel.load(path)
    at = datetime(2025, 11, 1, tzinfo=UTC)
    scores = recompute(loaded, load_weights(), at=at, account_ids=[1, 2, 3], churn_model=served)
    assert all(s.churn_risk is not None and 0 < s.churn_risk < 1 for s in scores)
    stored = loaded.execute(
        "SELECT count(*) FROM health_scores WHERE computed_at = %s AND churn_risk IS NOT NULL",
        (at,),
    ).fetchone()
    assert stored == (3,)
