"""How the demo's summary credits tickets with the failures that followed them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fleetcare.demo.outcome import Failure, TicketAhead, match_failures

T0 = datetime(2026, 11, 20, tzinfo=UTC)


def test_a_ticket_for_the_failing_mode_within_the_horizon_catches_it() -> None:
    failures = [Failure("cp-1", T0, "strainer_clog", "wear")]
    tickets = [
        TicketAhead("cp-1", T0 - timedelta(days=20), "strainer_clog"),  # too early
        TicketAhead("cp-1", T0 - timedelta(days=6), "strainer_clog"),
        TicketAhead("cp-1", T0 - timedelta(days=2), "strainer_clog"),
    ]
    outcome = match_failures(tickets, failures)
    assert (outcome.failures, outcome.caught, outcome.missed, outcome.random_failures) == (
        1, 1, 0, 0,
    )  # fmt: skip
    assert outcome.lead_hours == [6 * 24.0]


def test_a_ticket_for_another_mode_or_after_the_failure_does_not() -> None:
    failures = [
        Failure("cp-1", T0, "strainer_clog", "wear"),
        Failure("cp-2", T0, "seal_leak", "wear"),
    ]
    tickets = [
        TicketAhead("cp-1", T0 - timedelta(days=3), "bearing_wear"),
        TicketAhead("cp-2", T0 + timedelta(hours=1), "seal_leak"),
        TicketAhead("cp-3", T0 - timedelta(days=3), "seal_leak"),
    ]
    outcome = match_failures(tickets, failures)
    assert (outcome.caught, outcome.missed, outcome.lead_text) == (0, 2, "-")


def test_random_failures_are_counted_apart_even_after_a_ticket() -> None:
    failures = [
        Failure("cp-1", T0, "drive_fault", "random"),
        Failure("cp-1", T0 + timedelta(days=1), "strainer_clog", "wear"),
    ]
    tickets = [TicketAhead("cp-1", T0 - timedelta(days=1), "strainer_clog")]
    outcome = match_failures(tickets, failures)
    assert (outcome.failures, outcome.random_failures, outcome.caught, outcome.missed) == (
        2, 1, 1, 0,
    )  # fmt: skip
    assert outcome.lead_hours == [48.0]
