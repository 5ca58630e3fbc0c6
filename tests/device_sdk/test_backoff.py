"""Reconnect delays: exponential, jittered, capped, reset after a stable session."""

from __future__ import annotations

import random

from device_sdk.backoff import Backoff


def test_delays_double_with_jitter_up_to_the_cap() -> None:
    backoff = Backoff(0.5, 8.0, rng=random.Random(7))
    nominal = [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    delays = [backoff.next_delay() for _ in nominal]
    for delay, expected in zip(delays, nominal, strict=True):
        assert expected / 2 <= delay <= expected
    assert len({round(d, 6) for d in delays[4:]}) > 1  # jittered, not synchronised
    backoff.reset()
    assert 0.25 <= backoff.next_delay() <= 0.5


def test_a_fleet_spreads_out() -> None:
    first_retries = [Backoff(1.0, 30.0).next_delay() for _ in range(200)]
    assert max(first_retries) - min(first_retries) > 0.3
