"""The demo's care engine: new predictions to tickets and CSM alerts, notifications out.

``fleetcare care run`` runs as a child process (a pass every ``interval_s`` seconds: the
engine evaluates new predictions, the delivery worker sends what is due). When the demo
ends, the step stops it and makes the last passes itself, until the notifications the last
predictions queued are delivered.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from fleetcare.demo.child import ChildProcess

if TYPE_CHECKING:
    from backend.care.settings import CareSettings
    from fleetcare.cli.demo import DemoRun


def _pending(conn: psycopg.Connection[Any]) -> int:
    """Notifications for enabled webhooks neither delivered nor dead-lettered yet."""
    row = conn.execute(
        "SELECT count(*) FROM notification_outbox o JOIN webhooks w ON w.id = o.webhook_id"
        " WHERE w.enabled AND o.delivered_at IS NULL AND o.dead_lettered_at IS NULL"
    ).fetchone()
    conn.commit()
    return 0 if row is None else int(str(row[0]))


def dead_lettered(conn: psycopg.Connection[Any], webhook_url: str) -> int:
    """Notifications for ``webhook_url`` given up on."""
    row = conn.execute(
        "SELECT count(*) FROM notification_outbox o JOIN webhooks w ON w.id = o.webhook_id"
        " WHERE w.url = %s AND o.dead_lettered_at IS NOT NULL",
        (webhook_url,),
    ).fetchone()
    return 0 if row is None else int(str(row[0]))


class CareStep:
    """Run the care engine and the webhook delivery (``fleetcare care run``).

    Args:
        interval_s: wall seconds between passes.
        time_scale: simulated seconds per wall second. The engine keeps its cooldown (how
            long a closed need stays closed) in wall-clock hours; the demo's fleet lives in
            accelerated time, so the configured cooldown is read as simulated hours and
            divided by this (24 simulated hours are 5 s at a simulated day every 5 s).
    """

    title = "care engine"

    def __init__(self, interval_s: float = 2.0, time_scale: float = 1.0) -> None:
        self.interval_s = interval_s
        self.time_scale = time_scale
        self.child: ChildProcess | None = None
        self._database_url = ""

    def _settings(self) -> CareSettings:
        from backend.care.settings import CareSettings
        from fleetcare.config import load_settings

        settings = load_settings(CareSettings)
        scaled = settings.cooldown_hours / max(self.time_scale, 1.0)
        return settings.model_copy(update={"cooldown_hours": scaled})

    def run(self, demo: DemoRun) -> None:
        self._database_url = demo.services().database_url
        settings = self._settings()
        env = dict(os.environ)
        env["FLEETCARE_DATABASE_URL"] = self._database_url
        env["FLEETCARE_CARE_POLL_INTERVAL_S"] = str(self.interval_s)
        env["FLEETCARE_CARE_COOLDOWN_HOURS"] = repr(settings.cooldown_hours)
        log_dir = Path(tempfile.mkdtemp(prefix="fleetcare-demo-care-"))
        self.child = ChildProcess(
            "care", ["-m", "fleetcare.cli", "care", "run"], env, log_dir / "care.log"
        )
        self.child.start()
        demo.resources.callback(self.child.stop)
        simulated_h = settings.cooldown_hours * max(self.time_scale, 1.0)
        demo.note(
            "care engine",
            f"fleetcare care run, a pass every {self.interval_s:g} s; a closed need stays "
            f"closed {simulated_h:g} simulated hours ({settings.cooldown_hours * 3600:.1f} s)",
        )

    def finish(self, settle_s: float = 15.0) -> None:
        """Stop the child; evaluate the last predictions and deliver what they queued (for
        up to ``settle_s`` seconds)."""
        from backend.care.delivery import DeliveryWorker
        from backend.care.engine import CareEngine

        if self.child is None:
            return
        self.child.stop()
        settings = self._settings()
        engine = CareEngine(settings)
        deadline = time.monotonic() + settle_s
        with (
            psycopg.connect(self._database_url) as conn,
            DeliveryWorker(settings) as delivery,
        ):
            engine.run_once(conn)
            delivery.deliver_due(conn)
            while _pending(conn) and time.monotonic() < deadline:
                time.sleep(0.5)
                delivery.deliver_due(conn)
