"""What the demo achieved, judged against the simulator's ground truth.

A failure of the live span is *caught ahead* when a ticket of this run, on that device, came
from a prediction whose window ended before the failure and at most the model's horizon
before it; its lead time is the simulated time from that window's end to the failure. Every
other failure of the span is *missed* (random failures, which leave no trace before they
happen, are counted apart). Counts are of this run only: rows written before it (an earlier
demo on the same database) are below the baselines taken at its start.
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

    @classmethod
    def take(cls, conn: psycopg.Connection[Any]) -> Baseline:
        row = conn.execute(
            "SELECT (SELECT COALESCE(max(id), 0) FROM predictions),"
            " (SELECT COALESCE(max(id), 0) FROM tickets),"
            " (SELECT COALESCE(max(id), 0) FROM alerts)"
        ).fetchone()
        assert row is not None
        return cls(int(str(row[0])), int(str(row[1])), int(str(row[2])))


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
        "SELECT d.external_id, p.window_end FROM tickets t"
        " JOIN devices d ON d.id = t.device_id JOIN predictions p ON p.id = t.prediction_id"
        " WHERE t.id > %s",
        (base.ticket,),
    ).fetchall()
    warned: dict[str, list[datetime]] = {}
    for device, window_end in rows:
        warned.setdefault(str(device), []).append(window_end)
    caught = missed = random = 0
    leads: list[float] = []
    for failure in failures:
        ahead = [
            end
            for end in warned.get(failure.device, [])
            if failure.at - HORIZON <= end < failure.at
        ]
        if ahead:
            caught += 1
            leads.append((failure.at - min(ahead)).total_seconds() / 3600)
        elif failure.cause == "wear":
            missed += 1
        else:
            random += 1
    return Outcome(len(failures), random, caught, leads, missed)


class BaselineStep:
    """Note the largest ids before the loop starts: the summary counts what came after."""

    title = "baseline"

    def __init__(self) -> None:
        self.baseline = Baseline(0, 0, 0)

    def run(self, demo: DemoRun) -> None:
        with psycopg.connect(demo.services().database_url) as conn:
            self.baseline = Baseline.take(conn)
