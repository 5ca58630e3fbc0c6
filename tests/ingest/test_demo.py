"""The demo step: the simulator's fleet through the device SDK and a private broker into the
database, with live counts and a summary that adds up."""

from __future__ import annotations

import io
import time
from contextlib import ExitStack
from dataclasses import dataclass, field

import pytest
from rich.console import Console

from backend.ingest.demo import SimulatedFleetStep
from backend.ingest.demo_fleet import SimFleetPlan
from firmware_sim.faults import FaultSpec
from fleetcare.embedded.mosquitto import MosquittoBroker
from tests.ingest.helpers import dead_letters

pytestmark = [pytest.mark.services, pytest.mark.slow]


@dataclass
class FakeSettings:
    topic_root: str


@dataclass
class FakeServices:
    database_url: str
    broker_url: str


@dataclass
class FakeDemo:
    settings: FakeSettings
    console: Console
    resources: ExitStack
    stack: FakeServices
    duration_s: float | None
    facts: list[tuple[str, str]] = field(default_factory=list)
    interrupted: bool = False

    def services(self) -> FakeServices:
        return self.stack

    def note(self, what: str, value: str) -> None:
        self.facts.append((what, value))


def number(text: str) -> int:
    return int(text.split()[0].replace(",", ""))


def test_the_demo_step_runs_the_simulated_fleet_and_the_summary_adds_up(
    ingest_db: str, mosquitto: MosquittoBroker, root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEETCARE_INGEST_METRICS_PORT", "none")
    monkeypatch.setenv("FLEETCARE_INGEST_CLIENT_ID_PREFIX", f"demo-{time.monotonic_ns()}")
    out = io.StringIO()
    plan = SimFleetPlan(
        devices=12,
        accounts=3,
        seed=7,
        speed=600,
        interval_s=60,
        faults=FaultSpec(duplicate=2, malformed=2),
        history_days=1,
    )
    step = SimulatedFleetStep(plan, every_s=0.5)
    duration_s = 11.0
    with ExitStack() as resources:
        demo = FakeDemo(
            FakeSettings(root),
            Console(file=out, width=250),
            resources,
            FakeServices(ingest_db, mosquitto.url),
            duration_s,
        )
        step.run(demo)
        time.sleep(duration_s)  # the demo's "run" step
    facts = dict(demo.facts)
    assert "12 devices of 3 accounts" in facts["simulated fleet"]
    # A day of history (and the part of the span's day before it) came first, and is not
    # counted among the span's readings.
    history = facts["fleet history"]
    assert number(history) == step.history_readings >= 12 * 1440, history
    assert "of 12 devices over the 1 day before the span" in history
    stored_text = facts["readings stored"]
    stored, sent = number(stored_text), number(stored_text.split(" of ")[1])
    assert stored == sent > 0, stored_text
    assert facts["duplicate rows"] == "0"
    assert facts["duplicates absorbed"] == "2"
    # The malformed payloads, and nothing else, were dead-lettered.
    reasons = [reason for reason, _, _ in dead_letters(ingest_db, root)]
    assert len(reasons) == 2 and set(reasons) <= {"malformed", "schema"}, reasons
    assert facts["dead letters"].startswith("2 (")
    assert "readings" in out.getvalue() and "dead letters" in out.getvalue()


def test_a_span_longer_than_ingest_accepts_in_the_past_is_stored_whole(
    ingest_db: str, mosquitto: MosquittoBroker, root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The span ends now, so its first readings are span_s old: the demo's ingest accepts
    them even when the configured ``max_past_s`` (one day here) is shorter."""
    monkeypatch.setenv("FLEETCARE_INGEST_METRICS_PORT", "none")
    monkeypatch.setenv("FLEETCARE_INGEST_CLIENT_ID_PREFIX", f"demo-{time.monotonic_ns()}")
    monkeypatch.setenv("FLEETCARE_INGEST_MAX_PAST_S", "86400")
    plan = SimFleetPlan(devices=6, accounts=2, seed=3, speed=86_400, interval_s=3600)
    step = SimulatedFleetStep(plan, every_s=None)
    duration_s = 11.0
    with ExitStack() as resources:
        demo = FakeDemo(
            FakeSettings(root),
            Console(file=io.StringIO(), width=250),
            resources,
            FakeServices(ingest_db, mosquitto.url),
            duration_s,
        )
        assert step.fleet_state() == "not started"
        step.run(demo)
        assert step.fleet_state() == "publishing a span of 3.0 simulated days"
        time.sleep(duration_s)
    assert step.fleet_state() == "done: its 3.0 simulated days published"
    assert step.span_s == 3 * 86_400  # (11 s - 8 s of start-up) at a simulated day a second
    stored_text = dict(demo.facts)["readings stored"]
    stored, sent = number(stored_text), number(stored_text.split(" of ")[1])
    assert stored == sent >= 6 * 48, stored_text
    reasons = {reason for reason, _, _ in dead_letters(ingest_db, root)}
    assert "timestamp_past" not in reasons, reasons
