"""The demo's account health: ``fleetcare accounts health --continuous`` as a child process.

Each pass (one simulated day) scores the accounts whose inputs changed: the scoring worker's
new predictions move each account's fleet failure risk, so scores move as wear builds up,
and the care engine turns drops and band crossings into CSM alerts. When the demo ends, the
step stops the child and makes one last pass itself, before the care engine's last pass.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from backend.care.rule_definitions import BAND_ORDER
from fleetcare.demo.child import ChildProcess

if TYPE_CHECKING:
    from fleetcare.cli.demo import DemoRun


@dataclass(frozen=True)
class HealthCounts:
    """This run's health scores, and the newest band of each account it scored."""

    scores: int
    bands: dict[str, int]

    @property
    def text(self) -> str:
        if not self.scores:
            return "none"
        ordered = sorted(self.bands.items(), key=lambda kv: -BAND_ORDER.get(kv[0], -1))
        bands = ", ".join(f"{n} {band.replace('_', ' ')}" for band, n in ordered)
        return f"{self.scores:,} scores of {sum(self.bands.values())} accounts; now {bands}"


def health_counts(conn: psycopg.Connection[Any], baseline_id: int) -> HealthCounts:
    row = conn.execute("SELECT count(*) FROM health_scores WHERE id > %s", (baseline_id,))
    scores = int(str((row.fetchone() or (0,))[0]))
    bands = conn.execute(
        "SELECT band, count(*) FROM (SELECT DISTINCT ON (account_id) band FROM health_scores"
        " WHERE id > %s ORDER BY account_id, computed_at DESC, id DESC) latest GROUP BY band",
        (baseline_id,),
    ).fetchall()
    return HealthCounts(scores, {str(band): int(str(n)) for band, n in bands})


def alerts_by_kind(conn: psycopg.Connection[Any], baseline_id: int) -> dict[str, int]:
    rows = conn.execute(
        "SELECT kind, count(*) FROM alerts WHERE id > %s GROUP BY kind ORDER BY kind",
        (baseline_id,),
    ).fetchall()
    return {str(kind): int(str(n)) for kind, n in rows}


class HealthStep:
    """Run the health service (``fleetcare accounts health --continuous``)."""

    title = "account health"

    def __init__(self, interval_s: float = 5.0) -> None:
        self.interval_s = interval_s
        self.child: ChildProcess | None = None
        self._database_url = ""

    def run(self, demo: DemoRun) -> None:
        self._database_url = demo.services().database_url
        env = dict(os.environ)
        env["FLEETCARE_DATABASE_URL"] = self._database_url
        env["FLEETCARE_CUSTOMERS_HEALTH_INTERVAL_S"] = repr(self.interval_s)
        log_dir = Path(tempfile.mkdtemp(prefix="fleetcare-demo-health-"))
        self.child = ChildProcess(
            "health",
            ["-m", "fleetcare.cli", "accounts", "health", "--continuous"],
            env,
            log_dir / "health.log",
        )
        self.child.start()
        demo.resources.callback(self.child.stop)
        demo.note(
            "account health",
            f"fleetcare accounts health --continuous, a pass every {self.interval_s:g} s",
        )

    def finish(self) -> None:
        """Stop the child; score what the last predictions changed."""
        from backend.customers.health_service import HealthRefresher
        from backend.customers.settings import CustomersSettings
        from fleetcare.config import load_settings

        if self.child is None:
            return
        self.child.stop()
        settings = load_settings(CustomersSettings)
        HealthRefresher.from_settings(self._database_url, settings).run_once()
