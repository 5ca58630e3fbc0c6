"""Reconnect delays: exponential, jittered, capped, reset after a stable session."""

from __future__ import annotations

import logging
import random

from device_sdk.backoff import Backoff, HoldOff


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


def test_hold_off_starts_once_a_round_grows_and_resets_on_delivery() -> None:
    hold = HoldOff(1.0, 8.0)
    assert not hold.active and hold.remaining(0.0) == 0.0
    first = hold.start(100.0)
    assert first is not None and 0.5 <= first <= 1.0
    assert hold.start(100.1) is None, "answers during a hold do not extend it"
    assert abs(hold.remaining(100.0) - first) < 1e-9
    hold.delivered()  # an acknowledgement inside the hold does not reset the backoff
    assert hold.remaining(100.0 + first) == 0.0 and hold.active
    hold.end()
    second = hold.start(200.0)
    assert second is not None and 1.0 <= second <= 2.0, "the next hold doubles"
    hold.end()
    hold.delivered()
    third = hold.start(300.0)
    assert third is not None and 0.5 <= third <= 1.0, "delivery outside a hold resets it"
    assert hold.log_level == logging.WARNING
