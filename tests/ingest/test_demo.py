"""The demo step: a simulated fleet through a private broker into the database, with counts."""

from __future__ import annotations

import io
import time
from contextlib import ExitStack
from dataclasses import dataclass, field

import pytest
from rich.console import Console

from backend.ingest.demo import SimulatedFleetStep
from fleetcare.embedded.mosquitto import MosquittoBroker
from tests.ingest.helpers import stored

pytestmark = pytest.mark.services


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
    facts: list[tuple[str, str]] = field(default_factory=list)

    def services(self) -> FakeServices:
        return self.stack

    def note(self, what: str, value: str) -> None:
        self.facts.append((what, value))


def test_the_demo_step_ingests_and_reports(
    ingest_db: str, mosquitto: MosquittoBroker, root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEETCARE_INGEST_METRICS_PORT", "none")
    monkeypatch.setenv("FLEETCARE_INGEST_CLIENT_ID_PREFIX", f"demo-{time.monotonic_ns()}")
    out = io.StringIO()
    step = SimulatedFleetStep(devices=3, readings_per_message=5, messages_per_s=30, every_s=0.5)
    with ExitStack() as resources:
        demo = FakeDemo(
            FakeSettings(root),
            Console(file=out, width=200),
            resources,
            FakeServices(ingest_db, mosquitto.url),
        )
        step.run(demo)
        time.sleep(2.5)
    facts = dict(demo.facts)
    assert "3 devices" in facts["simulated fleet"]
    assert int(facts["readings stored"].replace(",", "")) > 0
    assert facts["dead letters"] == "0"
    assert "readings stored" in out.getvalue()
    assert stored(ingest_db, step.spec).duplicates == 0
