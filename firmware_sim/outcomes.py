"""Renewal outcomes: renew, churn or expand, driven (with noise) by experience and engagement.

For every account whose renewal date falls inside the simulated span, a health score is
built from what the customer lived through in the year before renewal (failures and
downtime per device, how fast tickets were resolved) and from its engagement (level over
the last 90 days and its trend). Churn and expansion probabilities are logistic in that
score. Two things keep a model honest: an unobserved segment shock (competitor pressure
on some industry and region pairs) and *silent churn* (acquisition, budget cut) that no
signal predicts. Accounts renewing after the span are ``pending``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from firmware_sim.climate import region_index
from firmware_sim.config import SimConfig
from firmware_sim.engagement import Engagement
from firmware_sim.fleet import INDUSTRIES, Fleet
from firmware_sim.groundtruth import GroundTruthLog
from firmware_sim.seeds import Stream, rng
from firmware_sim.tickets import Ticket


@dataclass(frozen=True)
class Outcome:
    account_id: str
    renewal_date: str
    outcome: str
    reason: str
    health: float
    p_churn: float
    p_expand: float
    failures_per_device: float
    downtime_h_per_device: float
    mean_resolution_h: float
    engagement_90d: float
    engagement_trend: float
    expansion_value: float


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


def renewal_outcomes(
    config: SimConfig,
    fleet: Fleet,
    engagement: Engagement,
    log: GroundTruthLog,
    tickets: list[Ticket],
) -> list[Outcome]:
    g = rng(config.seed, Stream.OUTCOMES)
    spd = config.steps_per_day
    step_h = config.step_h
    industries = sorted(INDUSTRIES)
    pressured = {
        (industries[int(g.integers(len(industries)))], int(g.integers(7))) for _ in range(3)
    }
    devices_of: dict[str, list[str]] = {}
    for d in fleet.devices:
        devices_of.setdefault(d.account_id, []).append(d.device_id)
    device_account = {d.device_id: d.account_id for d in fleet.devices}
    failures: dict[str, list[tuple[int, int]]] = {}
    for f in log.failures:
        failures.setdefault(device_account[f.device_id], []).append((f.step, f.resolved_step))
    resolved: dict[str, list[tuple[int, int]]] = {}
    for t in tickets:
        resolved.setdefault(t.account_id, []).append((t.opened_step, t.resolved_step))
    out: list[Outcome] = []
    for account in fleet.accounts:
        noise = float(g.normal(0.0, 0.6))
        silent = bool(g.random() < 0.04)
        u = float(g.random())
        growth = float(g.uniform(0.1, 0.5))
        day = (account.renewal_date - config.start).days
        if day >= config.days:
            out.append(
                Outcome(
                    account.account_id,
                    account.renewal_date.isoformat(),
                    "pending",
                    "",
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                )
            )
            continue
        end = day * spd
        begin = max(0, end - 365 * spd)
        n = len(devices_of[account.account_id])
        fails = [(s, r) for s, r in failures.get(account.account_id, []) if begin <= s < end]
        downtime = sum((min(r, end) - s) * step_h for s, r in fails)
        res = [
            (r - o) * step_h for o, r in resolved.get(account.account_id, []) if begin <= r < end
        ]
        mean_res = float(np.mean(res)) if res else 12.0
        e = engagement.values[account.index, 1:]
        e90 = float(e[max(0, day - 89) : day + 1].mean())
        before = e[max(0, day - 179) : max(1, day - 89)]
        trend = e90 - float(before.mean()) if before.size else 0.0
        segment = -0.8 if (account.industry, region_index(account.region)) in pressured else 0.0
        health = (
            3.0 * (e90 - 0.5)
            + 2.0 * trend
            - 1.2 * len(fails) / n
            - 0.015 * downtime / n
            - 0.012 * (mean_res - 24.0)
            + segment
            + noise
        )
        p_churn = _sigmoid(-1.6 - 1.4 * health)
        p_expand = _sigmoid(-1.8 + 1.1 * health)
        if silent:
            outcome, reason = "churn", str(g.choice(("acquired", "budget_cut")))
        elif u < p_churn:
            outcome, reason = "churn", "experience"
        elif u < p_churn + (1 - p_churn) * p_expand:
            outcome, reason = "expand", "growth"
        else:
            outcome, reason = "renew", ""
        expansion = round(account.contract_value * growth, -2) if outcome == "expand" else 0.0
        out.append(
            Outcome(
                account.account_id,
                account.renewal_date.isoformat(),
                outcome,
                reason,
                round(health, 4),
                round(p_churn, 4),
                round(p_expand, 4),
                round(len(fails) / n, 4),
                round(downtime / n, 3),
                round(mean_res, 3),
                round(e90, 4),
                round(trend, 4),
                expansion,
            )
        )
    return out
