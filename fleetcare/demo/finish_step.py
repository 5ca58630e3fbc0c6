"""The end of the demo: drain the loop in order, then add its figures to the summary.

The devices answer the last configs and commands; the fleet stops (or ends its span) and
ingest writes what was delivered; scoring makes a
last pass and the health service scores the accounts it changed; the care engine evaluates
the last predictions and health scores and delivers what they queued;
then this run's predictions, tickets, alerts and webhook deliveries are counted and the
failures of the span are judged against the simulator's ground truth.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg

from fleetcare.cli.state import say
from fleetcare.demo.care_step import dead_lettered
from fleetcare.demo.ground_truth import published_span, span_failures
from fleetcare.demo.health_step import alerts_by_kind, health_counts
from fleetcare.demo.outcome import judge, loop_counts

if TYPE_CHECKING:
    from backend.ingest.demo import SimulatedFleetStep
    from fleetcare.cli.demo import DemoRun
    from fleetcare.demo.api_step import ApiStep
    from fleetcare.demo.care_step import CareStep
    from fleetcare.demo.downlink_step import DownlinkStep
    from fleetcare.demo.health_step import HealthStep
    from fleetcare.demo.outcome import BaselineStep
    from fleetcare.demo.scoring_step import ScoringStep
    from fleetcare.demo.webhook_receiver import WebhookReceiverStep


class FinishStep:
    """Drain fleet, ingest, scoring and care; note the loop's figures."""

    title = "finish"

    def __init__(
        self,
        baseline: BaselineStep,
        fleet: SimulatedFleetStep,
        scoring: ScoringStep,
        health: HealthStep,
        care: CareStep,
        receiver: WebhookReceiverStep,
        api: ApiStep,
        downlink: DownlinkStep,
    ) -> None:
        self.baseline = baseline
        self.fleet = fleet
        self.scoring = scoring
        self.health = health
        self.care = care
        self.receiver = receiver
        self.api = api
        self.downlink = downlink

    def run(self, demo: DemoRun) -> None:
        say(demo.console, "  the devices' last answers to configs and commands")
        self.downlink.finish()
        say(demo.console, "  stopping the fleet; ingest writes what was delivered")
        self.fleet.finish(demo)
        say(demo.console, "  last scoring, health and care passes, pending webhooks")
        self.scoring.finish()
        self.health.finish()
        self.care.finish()
        with psycopg.connect(demo.services().database_url) as conn:
            counts = loop_counts(conn, self.baseline.baseline)
            given_up = dead_lettered(conn, self.receiver.url)
            span = published_span(conn, self.fleet.devices, self.fleet.span_start)
            failures = [] if span is None else span_failures(self.fleet.plan, *span)
            outcome = judge(conn, self.baseline.baseline, failures)
            health = health_counts(conn, self.baseline.baseline.health_score)
            kinds = alerts_by_kind(conn, self.baseline.baseline.alert)
            self.downlink.count_alarms(conn)
        demo.note("predictions", f"{counts.predictions:,}")
        demo.note("tickets raised", f"{counts.tickets:,} ({counts.open_tickets:,} open)")
        by_kind = ", ".join(f"{kind} {n}" for kind, n in kinds.items())
        demo.note(
            "CSM alerts raised",
            f"{counts.alerts:,} ({counts.open_alerts:,} open)"
            + (f": {by_kind}" if by_kind else ""),
        )
        demo.note("health scores", health.text)
        downlink = self.downlink.outcome
        demo.note("device configs", downlink.config_text)
        demo.note("limit alarms from devices", f"{downlink.limit_alarms:,} limit_exceeded events")
        demo.note("remote self-tests", downlink.command_text)
        received = self.receiver.counts
        events = ", ".join(f"{e} {n}" for e, n in sorted(received.by_event.items()))
        demo.note(
            "webhooks delivered",
            f"{received.delivered:,} signed and verified"
            + (f" ({events})" if events else "")
            + f"; {received.bad_signature} with a bad signature; "
            f"{given_up} dead-lettered",
        )
        if span is None:
            demo.note("failures", "not judged: the fleet stored no reading")
        else:
            first, last = span
            demo.note("simulated span", f"{first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC "
                      f"({(last - first).total_seconds() / 86_400:.1f} days)")  # fmt: skip
            demo.note(
                "failures in the span",
                f"{outcome.failures} ({outcome.random_failures} random, without warning signs)",
            )
            demo.note("failures caught ahead", f"{outcome.caught}, lead time {outcome.lead_text}")
            demo.note("failures missed", f"{outcome.missed} (wear failures without a ticket)")
        demo.note("console answering", "yes" if self.api.console_answers() else "no")
