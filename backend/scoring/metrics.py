"""The scoring worker's metrics in the Prometheus text format (names ``fleetcare_scoring_*``).

Built from the ingest's small metric types (``backend.ingest.metrics``), renamed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TypeVar

from backend.ingest.metrics import LATENCY_BUCKETS, SIZE_BUCKETS, Counter, Gauge, Histogram

PREFIX = "fleetcare_scoring_"
_M = TypeVar("_M", Counter, Histogram)


def _named(metric: _M, name: str) -> _M:
    metric.name = PREFIX + name
    return metric


class ScoringMetrics:
    """Every metric of one scoring worker."""

    def __init__(self) -> None:
        self.passes = _named(Counter("p", "Scoring passes completed."), "passes_total")
        self.devices_scored = _named(
            Counter("d", "Devices scored (predictions written), by model.", ["model"]),
            "devices_scored_total",
        )
        self.devices_skipped = _named(
            Counter("s", "Devices with new telemetry but no daily mean in the window.", ["model"]),
            "devices_skipped_total",
        )
        self.errors = _named(Counter("e", "Passes that failed, by kind.", ["kind"]), "errors_total")
        self.batch_seconds = _named(
            Histogram("b", "Latency of one batch: read windows, score, write.", LATENCY_BUCKETS),
            "batch_seconds",
        )
        self.batch_devices = _named(
            Histogram("n", "Devices per batch.", SIZE_BUCKETS), "batch_devices"
        )
        self.pass_seconds = _named(
            Histogram("t", "Latency of a whole pass.", LATENCY_BUCKETS), "pass_seconds"
        )
        self.last_pass_devices = 0.0
        self._gauge = Gauge("g", "Devices scored by the last pass.", lambda: self.last_pass_devices)
        self._gauge.name = PREFIX + "last_pass_devices"

    def render(self) -> str:
        lines: list[str] = []
        for metric in (
            self.passes, self.devices_scored, self.devices_skipped, self.errors,
            self.batch_seconds, self.batch_devices, self.pass_seconds, self._gauge,
        ):  # fmt: skip
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"

    def write(self, path: Path) -> None:
        """Write the exposition text to ``path`` atomically (for a node exporter's textfile)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(self.render())
        os.replace(temporary, path)
