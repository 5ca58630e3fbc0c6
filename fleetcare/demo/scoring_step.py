"""The demo's scoring: rollups refreshed, then every device with new telemetry scored by
the champion fleet models, every few seconds (about one simulated day at the demo's speed).

The loop runs in a child process (``python -m fleetcare.demo.scoring_step URL REGISTRY S``);
when the demo ends, the step stops it and makes one last pass itself over what ingest wrote.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from fleetcare.demo.child import ChildProcess
from fleetcare.demo.model_step import ModelStep

if TYPE_CHECKING:
    from backend.scoring.worker import ScoringWorker
    from fleetcare.cli.demo import DemoRun

#: Rollups refreshed back this far (longer than any simulated span of the demo).
REFRESH_LOOKBACK = timedelta(days=45)


def scoring_worker(database_url: str, registry_dir: Path) -> ScoringWorker:
    from backend.scoring.worker import ScoringWorker
    from models.registry import FileRegistry

    return ScoringWorker(
        database_url, FileRegistry(registry_dir), lookback_days=REFRESH_LOOKBACK.days
    )


def one_pass(worker: ScoringWorker) -> int:
    """Refresh the rollups, then score every due device; returns how many were scored."""
    from backend.storage.migrator import dialect_of

    now = datetime.now(UTC)
    with psycopg.connect(worker.database_url, autocommit=True) as conn:
        dialect_of(conn).refresh_rollups(conn, now - REFRESH_LOOKBACK, now)
    return worker.run_once(now).scored


class ScoringStep:
    """Score the fleet every ``interval_s`` seconds with the models of ``models``."""

    title = "score the fleet"

    def __init__(self, models: ModelStep, interval_s: float = 5.0) -> None:
        self.models = models
        self.interval_s = interval_s
        self.child: ChildProcess | None = None
        self._database_url = ""

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
        log_dir = Path(tempfile.mkdtemp(prefix="fleetcare-demo-scoring-"))
        self.child = ChildProcess(
            "scoring",
            ["-m", "fleetcare.demo.scoring_step", self._database_url,
             str(models.registry_dir), str(self.interval_s)],
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
        one_pass(scoring_worker(self._database_url, self.models.models.registry_dir))


def _loop(database_url: str, registry_dir: Path, interval_s: float) -> int:
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    stop = threading.Event()
    worker = scoring_worker(database_url, registry_dir)
    try:
        while not stop.wait(interval_s):
            try:
                one_pass(worker)
            except psycopg.Error as exc:
                print(f"scoring pass failed: {exc}", flush=True)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(_loop(sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])))
