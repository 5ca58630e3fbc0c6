"""Service-desk tickets: breakdowns (from the engine) and everything else customers ask.

Non-breakdown tickets (questions, billing, complaints, feature requests) arrive per
account at a rate that grows with the fleet and with dissatisfaction (low engagement
brings complaints); how fast they are resolved depends on the service tier.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from firmware_sim.config import SimConfig
from firmware_sim.engagement import Engagement
from firmware_sim.fleet import Fleet
from firmware_sim.groundtruth import GroundTruthLog
from firmware_sim.seeds import Stream, rng

_RESOLVE_H = {"basic": 48.0, "standard": 20.0, "premium": 6.0}
CATEGORIES: tuple[str, ...] = ("question", "billing", "complaint", "feature_request")


@dataclass(frozen=True)
class Ticket:
    """A service-desk ticket as it really was (true account, true failure link)."""

    ticket_id: str
    account_id: str
    device_id: str
    category: str
    opened_step: int
    responded_step: int
    resolved_step: int
    failure_mode: str
    failure_cause: str


def all_tickets(
    config: SimConfig, fleet: Fleet, engagement: Engagement, log: GroundTruthLog
) -> list[Ticket]:
    """Breakdown tickets of ``log`` plus drawn non-breakdown tickets, by opening time."""
    device_account = {d.device_id: d.account_id for d in fleet.devices}
    out = [
        Ticket(
            t.ticket_id,
            device_account[t.device_id],
            t.device_id,
            "breakdown",
            t.opened_step,
            t.responded_step,
            t.resolved_step,
            t.mode,
            t.cause,
        )
        for t in log.tickets
    ]
    g = rng(config.seed, Stream.TICKETS)
    spd = config.steps_per_day
    per_h = 3600 / config.interval_s
    n_dev = np.zeros(len(fleet.accounts))
    for d in fleet.devices:
        n_dev[fleet.account(d.account_id).index] += 1
    counter = 0
    for day in range(config.days):
        e = engagement.on(day).astype(np.float64)
        lam = 0.004 * n_dev**0.7 * (1.7 - e)
        arrivals = g.poisson(lam)
        for a in np.flatnonzero(arrivals):
            account = fleet.accounts[int(a)]
            for _ in range(int(arrivals[a])):
                p_complaint = 0.1 + 0.5 * (1.0 - float(e[a]))
                probs = np.array([0.5, 0.15, p_complaint, 0.15])
                category = CATEGORIES[int(g.choice(4, p=probs / probs.sum()))]
                opened = day * spd + int(g.integers(spd))
                response_h = float(g.lognormal(np.log(_RESOLVE_H[account.service_tier] / 4), 0.6))
                resolve_h = response_h + float(
                    g.lognormal(np.log(_RESOLVE_H[account.service_tier]), 0.8)
                )
                counter += 1
                out.append(
                    Ticket(
                        f"SD-{500_000 + counter}",
                        account.account_id,
                        "",
                        category,
                        opened,
                        opened + int(response_h * per_h) + 1,
                        opened + int(resolve_h * per_h) + 2,
                        "",
                        "",
                    )
                )
    out.sort(key=lambda t: (t.opened_step, t.ticket_id))
    return out
