"""The hidden engagement of each account: how much the customer uses and values the product.

Engagement ``e ∈ (0, 1)`` is the logistic of an Ornstein–Uhlenbeck process whose level
drifts (some accounts warm up, others cool down) and jumps when the customer's champion
leaves. It is never observed directly: it shows in usage (sessions, feature use, hours
run) and drives the renewal outcome, together with the customer's service experience.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from firmware_sim.arraytypes import F32, F64
from firmware_sim.seeds import Stream, rng


@dataclass(frozen=True)
class Engagement:
    """Daily engagement ``[accounts, days + 1]`` (column 0 is the day before the start).

    Attributes:
        level: the account's long-run level at the start (logit scale).
        trend_per_year: drift of that level (logit per year).
        champion_loss_days: per account, the days its champion left.
    """

    values: F32
    level: F64
    trend_per_year: F64
    champion_loss_days: tuple[tuple[int, ...], ...]

    def on(self, day: int) -> F32:
        """Engagement of every account on simulated day ``day`` (``-1`` allowed)."""
        return self.values[:, day + 1]


def simulate_engagement(seed: int, n_accounts: int, days: int) -> Engagement:
    g = rng(seed, Stream.ENGAGEMENT)
    level = g.normal(0.9, 0.9, n_accounts)
    declining = g.random(n_accounts) < 0.2
    trend = np.where(declining, g.normal(-1.8, 0.6, n_accounts), g.normal(0.1, 0.5, n_accounts))
    x = level + g.normal(0.0, 0.4, n_accounts)
    values = np.empty((n_accounts, days + 1), dtype=np.float32)
    values[:, 0] = 1.0 / (1.0 + np.exp(-x))
    losses: list[list[int]] = [[] for _ in range(n_accounts)]
    jumps = np.zeros(n_accounts)
    theta, sigma = 0.06, 0.13
    for day in range(days):
        lost = g.random(n_accounts) < 0.35 / 365.0
        drop = g.normal(-1.2, 0.5, n_accounts)
        jumps = jumps * 0.995 + np.where(lost, drop, 0.0)
        for a in np.flatnonzero(lost):
            losses[int(a)].append(day)
        mu = level + trend * (day / 365.0) + jumps
        x = x + theta * (mu - x) + sigma * g.standard_normal(n_accounts)
        values[:, day + 1] = 1.0 / (1.0 + np.exp(-x))
    return Engagement(values, level, trend, tuple(tuple(v) for v in losses))
