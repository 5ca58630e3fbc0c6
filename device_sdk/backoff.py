"""Exponential backoff with jitter (the SDK's reconnects and held batches; the gateway's)."""

from __future__ import annotations

import logging
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


NO_MATCHING_SUBSCRIBERS = 0x10
"""MQTT 5 PUBACK reason: the broker took the message, but no subscription matched it."""
FIRST_FAILURE = 0x80
"""MQTT 5 PUBACK reasons from here on refuse the message."""


class HoldOff:
    """A pause in sending after a PUBACK that was not an acknowledgement (0x10 or a refusal).

    The first such answer of a round starts the hold with the next backoff delay; answers
    to batches still in flight during the hold do not extend it. The sender waits until
    :meth:`remaining` is 0 and its batches in flight are answered, reads again from the
    first unacknowledged entry, and calls :meth:`end`. A batch acknowledged outside a hold
    resets the backoff (:meth:`delivered`).
    """

    def __init__(self, minimum: float, maximum: float) -> None:
        self._backoff = Backoff(minimum, maximum)
        self._until = 0.0
        self.active = False
        """Holding: send no batches until the delay passed and the queue was read again."""

    def start(self, now: float) -> float | None:
        """Start holding; the delay, or ``None`` when already holding."""
        if self.active:
            return None
        delay = self._backoff.next_delay()
        self._until = now + delay
        self.active = True
        return delay

    def remaining(self, now: float) -> float:
        """Seconds left in the hold (0 when not holding or when it has run out)."""
        return max(0.0, self._until - now) if self.active else 0.0

    def end(self) -> None:
        """The queue was read again (or a new session will read it): send again."""
        self.active = False

    def delivered(self) -> None:
        """A batch was acknowledged: outside a hold, the next hold starts from the minimum."""
        if not self.active:
            self._backoff.reset()

    @property
    def log_level(self) -> int:
        """WARNING for the first three holds in a row, DEBUG after (no log flood)."""
        return logging.WARNING if self._backoff.attempts <= 3 else logging.DEBUG
