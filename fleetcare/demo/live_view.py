"""The demo's live terminal view: the loop's counts, refreshed every second until the
duration ends or Ctrl-C."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import psycopg
from rich.live import Live
from rich.table import Table

from fleetcare.cli.waiting import wait_until_stopped
from fleetcare.demo.outcome import loop_counts

if TYPE_CHECKING:
    from backend.ingest.demo import SimulatedFleetStep
    from fleetcare.cli.demo import DemoRun
    from fleetcare.demo.outcome import BaselineStep
    from fleetcare.demo.webhook_receiver import WebhookReceiverStep


class LiveViewStep:
    """Show readings/s, what the gateway forwarded, devices online, predictions, tickets,
    alerts and webhooks live."""

    title = "run"

    def __init__(
        self,
        baseline: BaselineStep,
        fleet: SimulatedFleetStep,
        receiver: WebhookReceiverStep,
    ) -> None:
        self.baseline = baseline
        self.fleet = fleet
        self.receiver = receiver
        self._conn: psycopg.Connection[Any] | None = None
        self._started = time.monotonic()
        self._last: tuple[float, float] = (time.monotonic(), 0.0)
        self._rate = 0.0
        self._error: str | None = None

    def run(self, demo: DemoRun) -> None:
        from fleetcare.cli.state import say

        self._conn = psycopg.connect(demo.services().database_url, autocommit=True)
        self._started = time.monotonic()
        until = "Ctrl-C" if demo.duration_s is None else f"{demo.duration_s:g} s or Ctrl-C"
        try:
            with Live(
                get_renderable=self.render,
                console=demo.console,
                refresh_per_second=1,
                transient=False,
            ):
                demo.interrupted = wait_until_stopped(
                    demo.duration_s,
                    on_waiting=lambda: say(demo.console, f"  running until {until}"),
                )
            if not demo.console.is_terminal:
                # Off a terminal (a log, a pipe) the last frame ends without a line break.
                demo.console.line()
        finally:
            self._conn.close()

    def _stored(self) -> float:
        worker = self.fleet.worker
        return 0.0 if worker is None else worker.metrics.readings_written.value("telemetry")

    def render(self) -> Table:
        """The current counts (an error reading them is shown, not raised)."""
        now, stored = time.monotonic(), self._stored()
        then, before = self._last
        if now - then >= 0.9:
            self._rate = (stored - before) / (now - then)
            self._last = (now, stored)
        table = Table(title=f"fleetcare demo, {now - self._started:.0f} s", show_header=False)
        table.add_column("what")
        table.add_column("value", justify="right")
        table.add_row("fleet", self.fleet.fleet_state())
        table.add_row("readings stored", f"{stored:,.0f} ({self._rate:,.0f}/s)")
        site = self.fleet.site
        if site is not None:
            health = site.health()
            table.add_row(
                "via the gateway", "waiting for its state" if health is None else health.text()
            )
        try:
            assert self._conn is not None
            row = self._conn.execute(
                "SELECT count(*) FILTER (WHERE online), count(*) FROM devices"
                " WHERE external_id = ANY(%s)",
                (self.fleet.devices,),
            ).fetchone()
            counts = loop_counts(self._conn, self.baseline.baseline)
        except (psycopg.Error, AssertionError) as exc:
            table.add_row("database", f"unavailable: {exc}")
            return table
        online, total = (0, 0) if row is None else (int(str(row[0])), int(str(row[1])))
        table.add_row("devices online", f"{online} of {total}")
        table.add_row("predictions", f"{counts.predictions:,}")
        table.add_row("tickets open / raised", f"{counts.open_tickets:,} / {counts.tickets:,}")
        table.add_row("CSM alerts open / raised", f"{counts.open_alerts:,} / {counts.alerts:,}")
        table.add_row("webhooks delivered", f"{self.receiver.counts.delivered:,}")
        return table
