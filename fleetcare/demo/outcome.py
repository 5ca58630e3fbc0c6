"""What the demo achieved, judged against the simulator's ground truth.

A wear failure of the live span is *caught ahead* when a ticket of this run, on that device
and for that failure mode, came from a prediction whose window ended before the failure and
at most the model's horizon before it; its lead time is the simulated time from that
window's end to the failure. Every other wear failure of the span is *missed*; random
failures, which leave no trace before they happen, are counted apart. Counts are of this
run only: rows written before it (an earlier demo on the same database) are below the
baselines taken at its start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median
from typing import TYPE_CHECKING, Any

import psycopg

if TYPE_CHECKING:
    from fleetcare.cli.demo import DemoRun

#: The models' horizon (``FleetConfig.horizon_days``): a ticket earlier than this before a
#: failure is not credited with it.
HORIZON = timedelta(days=14)


@dataclass(frozen=True)
class Baseline:
    """The largest ids before this run, per table."""

    prediction: int
    ticket: int
    alert: int
    health_score: int = 0

    @classmethod
    def take(cls, conn: psycopg.Connection[Any]) -> Baseline:
        row = conn.execute(
            "SELECT (SELECT COALESCE(max(id), 0) FROM predictions),"
            " (SELECT COALESCE(max(id), 0) FROM tickets),"
            " (SELECT COALESCE(max(id), 0) FROM alerts),"
            " (SELECT COALESCE(max(id), 0) FROM health_scores)"
        ).fetchone()
        assert row is not None
        return cls(*(int(str(value)) for value in row))


@dataclass(frozen=True)
class Failure:
    """One failure of the simulator's ground truth."""

    device: str
    at: datetime
    mode: str
    cause: str


@dataclass(frozen=True)
class LoopCounts:
    """Live counts of this run's predictions, tickets and alerts."""

    predictions: int
    tickets: int
    open_tickets: int
    alerts: int
    open_alerts: int


def loop_counts(conn: psycopg.Connection[Any], base: Baseline) -> LoopCounts:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM predictions WHERE id > %(p)s),"
        " (SELECT count(*) FROM tickets WHERE id > %(t)s),"
        " (SELECT count(*) FROM tickets WHERE id > %(t)s"
        "   AND status IN ('open', 'assigned', 'in_progress')),"
        " (SELECT count(*) FROM alerts WHERE id > %(a)s),"
        " (SELECT count(*) FROM alerts WHERE id > %(a)s AND status = 'open')",
        {"p": base.prediction, "t": base.ticket, "a": base.alert},
    ).fetchone()
    assert row is not None
    return LoopCounts(*(int(str(v)) for v in row))


@dataclass(frozen=True)
class Outcome:
    failures: int
    random_failures: int
    caught: int
    lead_hours: list[float]
    missed: int

    @property
    def lead_text(self) -> str:
        if not self.lead_hours:
            return "-"
        return (
            f"median {median(self.lead_hours) / 24:.1f} d "
            f"(min {min(self.lead_hours) / 24:.1f}, max {max(self.lead_hours) / 24:.1f})"
        )


def judge(conn: psycopg.Connection[Any], base: Baseline, failures: list[Failure]) -> Outcome:
    """Match the span's failures with the tickets this run raised before them."""
    rows = conn.execute(
        "SELECT d.external_id, p.window_end, t.failure_mode FROM tickets t"
        " JOIN devices d ON d.id = t.device_id JOIN predictions p ON p.id = t.prediction_id"
        " WHERE t.id > %s",
        (base.ticket,),
    ).fetchall()
    return match_failures([TicketAhead(str(d), end, str(mode)) for d, end, mode in rows], failures)


@dataclass(frozen=True)
class TicketAhead:
    """A ticket of the run: its device, the end of the window it was predicted from, and
    the failure mode it names."""

    device: str
    window_end: datetime
    mode: str


def match_failures(tickets: list[TicketAhead], failures: list[Failure]) -> Outcome:
    """A wear failure is caught ahead when a ticket for that device **and that mode** came
    from a window that ended within :data:`HORIZON` before it; the lead time runs from the
    earliest such window. Random failures leave no trace and are counted apart, even when a
    ticket for another mode happened to precede them."""
    warned: dict[tuple[str, str], list[datetime]] = {}
    for ticket in tickets:
        warned.setdefault((ticket.device, ticket.mode), []).append(ticket.window_end)
    caught = missed = random = 0
    leads: list[float] = []
    for failure in failures:
        if failure.cause != "wear":
            random += 1
            continue
        ahead = [
            end
            for end in warned.get((failure.device, failure.mode), [])
            if failure.at - HORIZON <= end < failure.at
        ]
        if ahead:
            caught += 1
            leads.append((failure.at - min(ahead)).total_seconds() / 3600)
        else:
            missed += 1
    return Outcome(len(failures), random, caught, leads, missed)


class BaselineStep:
    """Note the largest ids before the loop starts: the summary counts what came after."""

    title = "baseline"

    def __init__(self) -> None:
        self.baseline = Baseline(0, 0, 0)

    def run(self, demo: DemoRun) -> None:
        with psycopg.connect(demo.services().database_url) as conn:
            self.baseline = Baseline.take(conn)
