"""The demo's finish waits for what ingest writes, not for a gateway's state reports."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, cast

from backend.ingest.demo import SimulatedFleetStep
from backend.ingest.metrics import IngestMetrics


@dataclass
class _Window:
    held: int = 0


@dataclass
class _Worker:
    metrics: IngestMetrics = field(default_factory=IngestMetrics)
    window: _Window = field(default_factory=_Window)


def _publish(worker: _Worker, channel: str, every_s: float, stop: threading.Event) -> None:
    """Messages on ``channel``; a state report sits in ingest's window for 80 ms."""
    while not stop.wait(every_s):
        worker.metrics.messages_received.inc(1, channel)
        if channel == "state":
            worker.window.held += 1
            time.sleep(0.08)
            worker.window.held -= 1


def _settle_seconds(worker: _Worker, telemetry_for_s: float) -> float:
    stop_state, stop_data = threading.Event(), threading.Event()
    threads = [
        threading.Thread(target=_publish, args=(worker, "state", 0.2, stop_state)),
        threading.Thread(target=_publish, args=(worker, "telemetry", 0.05, stop_data)),
    ]
    for thread in threads:
        thread.start()
    threading.Timer(telemetry_for_s, stop_data.set).start()
    started = time.monotonic()
    try:
        SimulatedFleetStep._settle(cast(Any, worker), quiet_s=1.0, limit_s=15.0)
        return time.monotonic() - started
    finally:
        stop_state.set()
        stop_data.set()
        for thread in threads:
            thread.join()


def test_state_reports_do_not_hold_the_finish_back() -> None:
    worker = _Worker()
    elapsed = _settle_seconds(worker, telemetry_for_s=0.5)
    assert 1.4 <= elapsed < 4.0
    assert worker.metrics.messages_received.value("state") >= 5


def test_the_finish_waits_while_readings_still_arrive() -> None:
    worker = _Worker()
    elapsed = _settle_seconds(worker, telemetry_for_s=3.0)
    assert elapsed >= 3.9
    assert worker.metrics.messages_received.value("telemetry") >= 40


def test_the_finish_waits_until_the_window_is_written() -> None:
    worker = _Worker()
    worker.window.held = 5  # received, not yet written
    threading.Timer(2.5, lambda: setattr(worker.window, "held", 0)).start()
    started = time.monotonic()
    SimulatedFleetStep._settle(cast(Any, worker), quiet_s=1.0, limit_s=15.0)
    assert 2.4 <= time.monotonic() - started < 3.5
