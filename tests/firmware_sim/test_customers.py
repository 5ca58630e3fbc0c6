"""Accounts, engagement and renewal outcomes: a real signal, with noise."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from firmware_sim import SimConfig, generate
from firmware_sim.engagement import simulate_engagement
from firmware_sim.fleet import build_fleet


def test_fleet_has_the_requested_shape() -> None:
    config = SimConfig(devices=300, accounts=40, seed=2)
    fleet = build_fleet(config)
    assert len(fleet.devices) == 300 and len(fleet.accounts) == 40
    assert len({d.device_id for d in fleet.devices}) == 300
    per_account = {a.account_id: 0 for a in fleet.accounts}
    for d in fleet.devices:
        per_account[d.account_id] += 1
        assert fleet.site(d.site_id).account_id == d.account_id
    assert min(per_account.values()) >= 1
    sizes = {a.size for a in fleet.accounts}
    assert sizes == {"smb", "mid_market", "enterprise"}
    for a in fleet.accounts:
        assert a.contract_start < config.start <= a.renewal_date
        assert a.contract_value > 0 and a.term_months in (12, 24, 36)
        assert a.csm_id in {c.csm_id for c in fleet.csms}


def test_engagement_stays_in_unit_interval_and_drifts() -> None:
    engagement = simulate_engagement(seed=4, n_accounts=200, days=365)
    values = engagement.values
    assert values.min() > 0.0 and values.max() < 1.0
    change = values[:, -1] - values[:, 0]
    assert change.std() > 0.1
    decliners = engagement.trend_per_year < -1.0
    assert change[decliners].mean() < change[~decliners].mean()


@pytest.fixture(scope="module")
def renewals(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, object]]:
    out = tmp_path_factory.mktemp("sim-renewals")
    config = SimConfig(
        devices=400, accounts=400, days=200, seed=21, interval_s=900, wear_acceleration=3.0
    )
    generate(config, out)
    return pq.read_table(out / "ground_truth" / "outcomes.parquet").to_pylist()


def test_renewals_inside_the_span_have_outcomes(renewals: list[dict[str, object]]) -> None:
    decided = [r for r in renewals if r["outcome"] != "pending"]
    assert len(decided) > 80
    assert {r["outcome"] for r in decided} == {"renew", "churn", "expand"}
    for r in renewals:
        assert (r["outcome"] == "pending") == (r["renewal_date"] >= "2025-07-20")


def test_outcomes_follow_experience_and_engagement(renewals: list[dict[str, object]]) -> None:
    decided = [r for r in renewals if r["outcome"] != "pending"]
    churned = [r for r in decided if r["outcome"] == "churn" and r["reason"] == "experience"]
    kept = [r for r in decided if r["outcome"] != "churn"]
    e_churn = np.mean([r["engagement_90d"] for r in churned])
    e_kept = np.mean([r["engagement_90d"] for r in kept])
    assert e_churn < e_kept
    health = np.array([r["health"] for r in decided])
    p_churn = np.array([r["p_churn"] for r in decided])
    assert np.all(np.diff(p_churn[np.argsort(health)]) <= 1e-9)
    silent = [r for r in decided if r["reason"] in ("acquired", "budget_cut")]
    assert all(r["outcome"] == "churn" for r in silent)
