"""The demo's scoring: rollups refreshed, then every device with new telemetry scored by
the champion fleet models, once a simulated day (every 5 s at the demo's default speed, at
most every 2 s).

The loop runs in a child process
(``python -m fleetcare.demo.scoring_step URL REGISTRY SECONDS LOOKBACK_DAYS``);
when the demo ends, the step stops it and makes one last pass itself over what ingest wrote.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from fleetcare.cli.waiting import stop_signals_interrupt
from fleetcare.demo.child import ChildProcess
from fleetcare.demo.model_step import ModelStep

if TYPE_CHECKING:
    from backend.scoring.worker import ScoringWorker
    from fleetcare.cli.demo import DemoRun

#: Rollups refreshed and devices scored back at least this far.
MIN_LOOKBACK_DAYS = 45
#: Scoring passes come no closer than this (the care engine's pass is as often).
MIN_INTERVAL_S = 2.0


def daily_interval_s(speed: float) -> float:
    """Seconds between scoring passes: one simulated day at ``speed``, at least
    :data:`MIN_INTERVAL_S` (a faster fleet is scored less often than daily)."""
    return max(MIN_INTERVAL_S, 86_400 / speed)


def lookback_days(span_s: float) -> int:
    """Days back from now that the scoring passes cover: the whole simulated span (which
    ends now) and a day more, at least :data:`MIN_LOOKBACK_DAYS`."""
    return max(MIN_LOOKBACK_DAYS, math.ceil(span_s / 86_400) + 1)


def scoring_worker(database_url: str, registry_dir: Path, days: int) -> ScoringWorker:
    from backend.scoring.worker import ScoringWorker
    from models.registry import FileRegistry

    return ScoringWorker(database_url, FileRegistry(registry_dir), lookback_days=days)


def one_pass(worker: ScoringWorker) -> int:
    """Refresh the rollups, then score every due device; returns how many were scored."""
    from backend.storage.migrator import dialect_of

    now = datetime.now(UTC)
    with psycopg.connect(worker.database_url, autocommit=True) as conn:
        dialect_of(conn).refresh_rollups(conn, now - worker.lookback, now)
    return worker.run_once(now).scored


class ScoringStep:
    """Score the fleet every ``interval_s`` seconds with the models of ``models``."""

    title = "score the fleet"

    def __init__(
        self,
        models: ModelStep,
        interval_s: float = 5.0,
        span_s: Callable[[], float] = lambda: 0.0,
    ) -> None:
        """``span_s``: the simulated span's length, known once the fleet step has run."""
        self.models = models
        self.interval_s = interval_s
        self.span_s = span_s
        self.child: ChildProcess | None = None
        self._database_url = ""
        self._lookback_days = MIN_LOOKBACK_DAYS

    def run(self, demo: DemoRun) -> None:
        from models.fleet.scorer import FleetScorer
        from models.registry import FileRegistry

        models = self.models.models
        if models is None:
            demo.note("scoring", "off (no model: the run is too short to train one)")
            return
        registry = FileRegistry(models.registry_dir)
        champions = []
        for name in models.names:
            entry = registry.champion(name)
            assert entry is not None
            FleetScorer(entry.directory)  # refuses an unusable model before the loop starts
            champions.append(f"{name} {entry.version}")
        self._database_url = demo.services().database_url
        self._lookback_days = lookback_days(self.span_s())
        log_dir = Path(tempfile.mkdtemp(prefix="fleetcare-demo-scoring-"))
        self.child = ChildProcess(
            "scoring",
            ["-m", "fleetcare.demo.scoring_step", self._database_url,
             str(models.registry_dir), str(self.interval_s), str(self._lookback_days)],
            dict(os.environ),
            log_dir / "scoring.log",
        )  # fmt: skip
        self.child.start()
        demo.resources.callback(self.child.stop)
        demo.note("scoring", f"every {self.interval_s:g} s with {', '.join(champions)}")

    def finish(self) -> None:
        """Stop the loop, then one last pass over what ingest wrote."""
        if self.child is None or self.models.models is None:
            return
        self.child.stop()
        registry_dir = self.models.models.registry_dir
        one_pass(scoring_worker(self._database_url, registry_dir, self._lookback_days))


def _loop(database_url: str, registry_dir: Path, interval_s: float, days: int) -> int:
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    stop = threading.Event()
    worker = scoring_worker(database_url, registry_dir, days)
    try:
        with stop_signals_interrupt():  # the demo stops its children with SIGTERM
            while not stop.wait(interval_s):
                try:
                    one_pass(worker)
                except psycopg.Error as exc:
                    print(f"scoring pass failed: {exc}", flush=True)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(_loop(sys.argv[1], Path(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])))
