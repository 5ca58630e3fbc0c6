"""Exponential backoff with jitter (the SDK's reconnects and held batches; the gateway's)."""

from __future__ import annotations

import random


class Backoff:
    """Delays that double from ``minimum`` up to ``maximum``, each drawn in ``[d/2, d]``.

    The random half ("equal jitter") spreads a fleet that lost its broker at the same moment,
    while keeping every delay at least half the nominal one.
    """

    def __init__(self, minimum: float, maximum: float, rng: random.Random | None = None) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self._attempt = 0
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    def next_delay(self) -> float:
        """The delay before the next attempt; each call doubles the nominal delay."""
        nominal = min(self.maximum, self.minimum * (2.0 ** min(self._attempt, 32)))
        self._attempt += 1
        return nominal / 2 + self._rng.uniform(0, nominal / 2)

    def reset(self) -> None:
        self._attempt = 0

    @property
    def attempts(self) -> int:
        return self._attempt
