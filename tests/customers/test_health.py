"""Health scores on the simulated history: ranking of churners, stored explanations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score

from backend.customers.errors import WeightsError
from backend.customers.health_job import changed_accounts, recompute
from backend.customers.health_measures import measures_from_inputs
from backend.customers.health_score import combine, score_account
from backend.customers.health_weights import load_weights
from backend.customers.simload import true_account_map

SIM_START = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.mark.services
@pytest.mark.slow
def test_health_ranks_churners_below_renewals(loaded: psycopg.Connection, sim_dir: Path) -> None:
    conn = loaded
    weights = load_weights()
    mapping = true_account_map(conn, sim_dir)
    labels, scores = [], []
    for outcome in pq.read_table(sim_dir / "ground_truth" / "outcomes.parquet").to_pylist():
        if outcome["outcome"] == "pending" or outcome["account_id"] not in mapping:
            continue
        at = datetime.fromisoformat(outcome["renewal_date"]).replace(tzinfo=UTC) - timedelta(
            days=30
        )
        if at - SIM_START < timedelta(days=120):
            continue  # too little history before the score
        health = score_account(conn, mapping[outcome["account_id"]], at, weights)
        labels.append(outcome["outcome"] == "churn")
        scores.append(-health.score)
    auc = roc_auc_score(labels, scores)
    print(f"health vs churn: ROC AUC {auc:.3f} over {len(labels)} renewals ({sum(labels)} churned)")
    assert len(labels) >= 40 and auc >= 0.80

    stored = recompute(conn, weights, at=SIM_START + timedelta(days=300))
    assert (
        len(stored)
        == conn.execute("SELECT count(*) FROM accounts WHERE status <> 'erased'").fetchone()[0]
    )
    # any stored score is explained by its own inputs and weights
    for inputs, components, score, version in conn.execute(
        "SELECT inputs, components, score, weights_version FROM health_scores LIMIT 20"
    ).fetchall():
        again, _ = combine(measures_from_inputs(inputs), load_weights())
        assert abs(again - score) < 0.01 and version == weights.version
        assert set(components) == {"measures", "reasons", "weights"}
    # nothing changed since: nothing to recompute; a new ticket: only that account
    later = datetime.now(UTC)
    assert changed_accounts(conn, later) == []
    account = mapping["acct-00010"]
    conn.execute(
        "INSERT INTO service_tickets (source_id, account_id, org_ref, category, opened_at) "
        "VALUES ('T-new', %s, 'x', 'complaint', clock_timestamp())",
        (account,),
    )
    assert changed_accounts(conn, later) == [account]


def test_offline_is_unknown_not_zero_usage() -> None:
    weights = load_weights()
    base = {
        "devices": 2,
        "mean_failure_risk": None,
        "devices_with_predictions": 0,
        "running_device_days_90d": 120,
        "running_device_days_prior_90d": 100,
        "sessions_90d": 300.0,
        "sessions_prior_90d": 250.0,
        "feature_uses_90d": 40.0,
        "feature_uses_prior_90d": 30.0,
        "tickets_180d": 2,
        "complaints_180d": 0,
        "breakdowns_365d": 1,
        "breakdown_hours_365d": 20.0,
        "mean_resolution_h_365d": 30.0,
        "days_to_renewal": 200,
        "nps": None,
    }
    online = measures_from_inputs(base)
    offline = measures_from_inputs(
        {**base, "running_device_days_90d": 0, "sessions_90d": 0.0, "feature_uses_90d": 0.0}
    )
    assert online["adoption"] is not None and online["adoption"] > 0.3
    assert offline["adoption"] is None and offline["usage_trend"] is None
    score, components = combine(offline, weights)
    assert components["adoption"].weight == 0 and components["adoption"].points == 0
    known = [c for c in components.values() if c.measure is not None]
    assert abs(sum(c.weight for c in known) - 1.0) < 1e-3
    assert score == pytest.approx(sum(c.points for c in known), abs=0.05)
    assert score > 60  # an offline month does not read as a customer who stopped using it


def test_weights_from_yaml_and_invalid_weights(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("version: v-test\nweights: {uptime: 1, adoption: 3}\n")
    weights = load_weights(path)
    assert weights.version == "v-test"
    score, components = combine({"uptime": 1.0, "adoption": 0.5}, weights)
    assert score == pytest.approx(62.5) and components["adoption"].weight == pytest.approx(0.75)
    path.write_text("version: v\nweights: {happiness: 1}\n")
    with pytest.raises(WeightsError, match="unknown measures"):
        load_weights(path)
